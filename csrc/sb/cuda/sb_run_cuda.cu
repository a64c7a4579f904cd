// sb_run on the GPU: num_steps steps of the SB schedule in one call, on the paths of
// sb_run_dense.cuh (a persistent launch for problems of at most kSmallMaxN variables, the
// incremental dSB kernel or the GEMM path above).

#include <torch/library.h>

#include "../checks.h"
#include "sb_run_dense.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

void sb_run_cuda(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                 int64_t start_step, int64_t num_steps, double time_step, double pressure_slope,
                 double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_dense_coupling(J, position, momentum);
  check_steps(start_step, num_steps);
  const at::cuda::CUDAGuard guard(position.device());
  if (position.numel() == 0 || num_steps == 0) return;
  if (discrete) check_finite_for_dsb(J, "J");
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_cuda", [&] {
    run_dense_problem<scalar_t>(J, position, momentum, start_step, num_steps, time_step,
                                pressure_slope, quadratic_coef, heat_coef, discrete);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_run", &sb_run_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
