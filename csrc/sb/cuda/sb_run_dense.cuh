#pragma once
// sb_run's paths for one problem with a dense coupling, shared by sb_run and by
// sb_run_batched's problems that the batched persistent launch does not take. Problems with
// at most kSmallMaxN variables run the whole call in one persistent launch (sb_small.cuh:
// one block per agent tile, incremental local field for dSB). Larger dSB problems run the
// call in one launch too, with an incremental field corrected per flip from a GEMM at the
// call's start (exact on integer weights) (sb_incremental.cuh). Larger bSB problems take the
// GEMM path: each step is ATen's GEMM (cuBLAS) F = J @ x plus one fused elementwise kernel
// (sb_loop.cuh). Every way the schedule's coefficients are computed in double with the
// shared code of csrc/sb/math.h, and nothing is read back.

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

#include "../math.h"
#include "sb_incremental.cuh"
#include "sb_loop.cuh"
#include "sb_small.cuh"

namespace sb_native {
namespace sb {
namespace cuda {

// num_steps steps of the schedule on the (n, agents) state, contiguous, with the (n, n)
// coupling J (any strides), on J's device, which the caller has made current.
template <typename scalar_t>
void run_dense_problem(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                       int64_t start_step, int64_t num_steps, double time_step,
                       double pressure_slope, double quadratic_coef, double heat_coef,
                       bool discrete) {
  if (small_run_dense<scalar_t>(J, position, momentum, start_step, num_steps, time_step,
                                pressure_slope, quadratic_coef, heat_coef, discrete)) {
    return;
  }
  if (discrete && incremental_dsb_field()) {
    const at::Tensor columns = J.t().contiguous();  // columns[j * n + i] = J[i, j]
    run_incremental<scalar_t, scalar_t, scalar_t>(
        columns, [&](const at::Tensor& signs) { return at::mm(J, signs); }, position, momentum,
        start_step, num_steps, time_step, pressure_slope, quadratic_coef, heat_coef);
    return;
  }
  run_dense<scalar_t>(
      J, position, momentum, num_steps, quadratic_coef, heat_coef, discrete, [&](int64_t k) {
        return std::make_pair(momentum_coefficient(time_step, start_step + k, pressure_slope),
                              time_step);
      });
}

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
