#pragma once
// Row-parallel CSR x dense products for the (variables, agents) SB layout: each output row
// gathers the rows of its non-zeros' columns, which are contiguous over agents.

#include <ATen/Parallel.h>

#include "../../common/parallel.h"
#include "fused_product.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sb_native {
namespace sb {
namespace cpu {

struct CsrView {
  const int64_t* crow;
  const int64_t* col;
  int64_t rows;
};

// How many non-zeros ahead the row product prefetches its gathers. The gathered rows are
// scattered over the whole input, so each is an L2/L3 miss that the hardware prefetcher
// cannot predict; asking for it a few non-zeros early hides that latency (G22, 128 agents:
// bench/RESULTS.md). Prefetching only changes timing, never results.
constexpr int64_t kGatherLookahead = 8;

inline void prefetch_span(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 0, 3);
}

// acc[0:width] = (J @ in)[i, a0:a0 + width], with width a compile-time kWidth (the
// accumulators stay in vector registers across the row) or, for the tail, width at run
// time. Each element sums its non-zeros in their order, each term fused (fused_product.h),
// so the result does not depend on the blocking.
template <typename scalar_t, int64_t kWidth>
SBN_FUSED_PRODUCT inline void csr_row_block(const CsrView& J, const scalar_t* values, const scalar_t* in,
                          int64_t agents, int64_t i, int64_t a0, int64_t width,
                          scalar_t* acc) {
  constexpr int64_t kLocal = kWidth > 0 ? kWidth : 1;
  alignas(64) scalar_t local[kLocal];
  scalar_t* sum = kWidth > 0 ? local : acc;
  const int64_t w = kWidth > 0 ? kWidth : width;
  for (int64_t a = 0; a < w; ++a) sum[a] = scalar_t(0);
  const int64_t end = J.crow[i + 1], total = J.crow[J.rows];
  for (int64_t k = J.crow[i]; k < end; ++k) {
    if (k + kGatherLookahead < total) {
      prefetch_span(in + J.col[k + kGatherLookahead] * agents + a0, w * sizeof(scalar_t));
    }
    const scalar_t v = values[k];
    const scalar_t* f = in + J.col[k] * agents + a0;
    for (int64_t a = 0; a < w; ++a) sum[a] += v * f[a];
  }
  if (kWidth > 0) std::copy(local, local + kWidth, acc);
}

// acc = (J @ in)[i, :]: row i's non-zeros gather their rows of in, summed in the
// non-zeros' order, in blocks of 512 bytes of agents.
template <typename scalar_t>
inline void csr_row_product(const CsrView& J, const scalar_t* values, const scalar_t* in,
                            int64_t agents, int64_t i, scalar_t* acc) {
  constexpr int64_t kBlock = 512 / sizeof(scalar_t);
  int64_t a0 = 0;
  for (; a0 + kBlock <= agents; a0 += kBlock) {
    csr_row_block<scalar_t, kBlock>(J, values, in, agents, i, a0, kBlock, acc + a0);
  }
  if (a0 < agents) csr_row_block<scalar_t, 0>(J, values, in, agents, i, a0, agents - a0, acc + a0);
}

// out = J @ in, row-parallel.
template <typename scalar_t>
void csr_spmm(const CsrView& J, const scalar_t* values, const scalar_t* in, scalar_t* out,
              int64_t agents) {
  const int64_t nnz_per_row = J.rows ? J.crow[J.rows] / J.rows : 0;
  const int64_t grain = common::work_grain((nnz_per_row + 1) * agents);
  at::parallel_for(0, J.rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) csr_row_product(J, values, in, agents, i, out + i * agents);
  });
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
