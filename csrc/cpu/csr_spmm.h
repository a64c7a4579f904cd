#pragma once
// Row-parallel CSR x dense products for the (variables, agents) SB layout: each output row
// gathers the rows of its non-zeros' columns, which are contiguous over agents.

#include <ATen/Parallel.h>

#include "parallel.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sb_native {
namespace cpu {

struct CsrView {
  const int64_t* crow;
  const int64_t* col;
  int64_t rows;
};

// acc = (J @ in)[i, :]: row i's non-zeros gather their rows of in, summed in the
// non-zeros' order.
template <typename scalar_t>
inline void csr_row_product(const CsrView& J, const scalar_t* values, const scalar_t* in,
                            int64_t agents, int64_t i, scalar_t* acc) {
  std::fill(acc, acc + agents, scalar_t(0));
  for (int64_t k = J.crow[i]; k < J.crow[i + 1]; ++k) {
    const scalar_t v = values[k];
    const scalar_t* f = in + J.col[k] * agents;
    for (int64_t a = 0; a < agents; ++a) acc[a] += v * f[a];
  }
}

// out = J @ in, row-parallel.
template <typename scalar_t>
void csr_spmm(const CsrView& J, const scalar_t* values, const scalar_t* in, scalar_t* out,
              int64_t agents) {
  const int64_t nnz_per_row = J.rows ? J.crow[J.rows] / J.rows : 0;
  at::parallel_for(0, J.rows, work_grain((nnz_per_row + 1) * agents), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) csr_row_product(J, values, in, agents, i, out + i * agents);
  });
}

}  // namespace cpu
}  // namespace sb_native
