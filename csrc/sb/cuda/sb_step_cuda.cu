// sb_step on the GPU: one step with explicit coefficients, dense coupling through ATen's
// GEMM (cuBLAS) between the fused elementwise kernels of sb_loop.cuh.

#include <torch/library.h>

#include <utility>

#include "../checks.h"
#include "sb_loop.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

void sb_step_cuda(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                  double momentum_coef, double position_coef, double quadratic_coef,
                  double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_dense_coupling(J, position, momentum);
  const at::cuda::CUDAGuard guard(position.device());
  if (position.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_step_cuda", [&] {
    cuda::run_dense<scalar_t>(J, position, momentum, 1, quadratic_coef, heat_coef, discrete,
                              [&](int64_t) { return std::make_pair(momentum_coef, position_coef); });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_step", &sb_step_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
