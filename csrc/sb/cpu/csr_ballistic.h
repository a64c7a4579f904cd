#pragma once
// bSB with a CSR coupling, one fused pass per step. Row i's product reads the positions of
// its neighbours, and row i's own update only reads and writes row i, so with the positions
// double-buffered (the product reads x_k, the update writes x_{k+1}) a step is a single
// row-parallel pass: gather the product of row i, then finish step k and begin step k + 1
// on that row while it is in L1. One parallel region and one sweep of the state per step,
// instead of an SpMM and an elementwise pass.
//
// Per element, the operations of sb_loop.h in its order: m += q * (J @ x)_i (the SpMM's
// accumulator, summed in the non-zeros' order), walls, m += heat * m0; then for the next
// step m0 = m and kick-drift.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "../../common/parallel.h"
#include "../math.h"
#include "csr_spmm.h"
#include "sb_loop.h"

namespace sb_native {
namespace sb {
namespace cpu {

// Row i of step k: finish it with its product acc, then begin step k + 1 (unless last).
template <typename scalar_t, bool kHeated, bool kLast>
inline void finish_row(const scalar_t* __restrict__ x, scalar_t* __restrict__ next,
                       scalar_t* __restrict__ m, scalar_t* __restrict__ m0,
                       const scalar_t* __restrict__ acc, int64_t agents, scalar_t q,
                       scalar_t heat, scalar_t momentum_coef, scalar_t position_coef) {
  for (int64_t a = 0; a < agents; ++a) {
    scalar_t xe = x[a], me = m[a] + q * acc[a];
    inelastic_walls(xe, me);
    if (kHeated) me = me + heat * m0[a];
    if (!kLast) {
      if (kHeated) m0[a] = me;
      kick_drift(xe, me, momentum_coef, position_coef);
    }
    next[a] = xe;
    m[a] = me;
  }
}

template <typename scalar_t, bool kHeated>
void run_csr_ballistic(const CsrView& J, const scalar_t* values, at::Tensor& position,
                       at::Tensor& momentum,
                       const std::vector<std::pair<scalar_t, scalar_t>>& cs, scalar_t q,
                       scalar_t heat) {
  const int64_t n = position.size(0), agents = position.size(1), numel = position.numel();
  const auto num_steps = static_cast<int64_t>(cs.size());
  at::Tensor spare = at::empty_like(position);
  at::Tensor start = kHeated ? at::empty_like(momentum) : at::Tensor();
  scalar_t* x = position.data_ptr<scalar_t>();
  scalar_t* next = spare.data_ptr<scalar_t>();
  scalar_t* m = momentum.data_ptr<scalar_t>();
  scalar_t* m0 = kHeated ? start.data_ptr<scalar_t>() : nullptr;

  // The first half of step 0 (m0 = m, kick-drift): the per-step loop's own pass.
  pre_coupling<scalar_t, false, kHeated>(SBState<scalar_t>{x, m, nullptr, m0, numel}, false,
                                         heat, cs[0].first, cs[0].second);
  const int64_t nnz_per_row = n ? J.crow[n] / n : 0;
  const int64_t grain = common::work_grain((nnz_per_row + 4) * agents);
  for (int64_t k = 0; k < num_steps; ++k) {
    const bool last = k + 1 == num_steps;
    const scalar_t mc = last ? scalar_t(0) : cs[k + 1].first;
    const scalar_t pc = last ? scalar_t(0) : cs[k + 1].second;
    at::parallel_for(0, n, grain, [&](int64_t r0, int64_t r1) {
      std::vector<scalar_t> acc(agents);
      for (int64_t i = r0; i < r1; ++i) {
        csr_row_product(J, values, static_cast<const scalar_t*>(x), agents, i, acc.data());
        const int64_t row = i * agents;
        scalar_t* row_m0 = kHeated ? m0 + row : nullptr;
        if (last) {
          finish_row<scalar_t, kHeated, true>(x + row, next + row, m + row, row_m0, acc.data(),
                                              agents, q, heat, mc, pc);
        } else {
          finish_row<scalar_t, kHeated, false>(x + row, next + row, m + row, row_m0,
                                               acc.data(), agents, q, heat, mc, pc);
        }
      }
    });
    std::swap(x, next);
  }
  // x holds the final positions; after an odd number of swaps that is the spare buffer.
  if (x != position.data_ptr<scalar_t>()) position.copy_(spare);
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
