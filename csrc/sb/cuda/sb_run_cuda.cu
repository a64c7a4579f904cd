// sb_run on the GPU: num_steps steps of the SB schedule in one call. Problems with at most
// kSmallMaxN variables run the whole call in one persistent launch (sb_small.cuh: one
// block per agent tile, incremental local field for dSB). Larger dSB problems run the call
// in one launch too, with an incremental field corrected per flip from a GEMM at the call's
// start (exact on integer weights) (sb_incremental.cuh). Larger bSB problems take the GEMM
// path: each step is ATen's GEMM (cuBLAS) F = J @ x plus one fused elementwise kernel
// (sb_loop.cuh). Every way the schedule's coefficients are computed in double with the shared
// code of csrc/sb/math.h, and nothing is read back.

#include <torch/library.h>

#include <utility>

#include "../checks.h"
#include "sb_incremental.cuh"
#include "sb_loop.cuh"
#include "sb_small.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

void sb_run_cuda(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                 int64_t start_step, int64_t num_steps, double time_step, double pressure_slope,
                 double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_dense_coupling(J, position);
  check_steps(start_step, num_steps);
  const at::cuda::CUDAGuard guard(position.device());
  if (position.numel() == 0 || num_steps == 0) return;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_cuda", [&] {
    if (cuda::small_run_dense<scalar_t>(J, position, momentum, start_step, num_steps, time_step,
                                        pressure_slope, quadratic_coef, heat_coef, discrete)) {
      return;
    }
    if (discrete && cuda::incremental_dsb_field()) {
      const at::Tensor columns = J.t().contiguous();  // columns[j * n + i] = J[i, j]
      cuda::run_incremental<scalar_t, scalar_t, scalar_t>(
          columns, [&](const at::Tensor& signs) { return at::mm(J, signs); }, position,
          momentum, start_step, num_steps, time_step, pressure_slope, quadratic_coef,
          heat_coef);
      return;
    }
    cuda::run_dense<scalar_t>(
        J, position, momentum, num_steps, quadratic_coef, heat_coef, discrete, [&](int64_t k) {
          return std::make_pair(
              momentum_coefficient(time_step, start_step + k, pressure_slope), time_step);
        });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_run", &sb_run_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
