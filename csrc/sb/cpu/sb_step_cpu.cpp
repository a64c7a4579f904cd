// sb_step on the CPU: one step with explicit coefficients, dense coupling through ATen's GEMM.

#include <torch/library.h>

#include <utility>

#include "../checks.h"
#include "sb_loop.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

void sb_step_cpu(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                 double momentum_coef, double position_coef, double quadratic_coef,
                 double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_dense_coupling(J, position, momentum);
  if (position.numel() == 0) return;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_step_cpu", [&] {
    cpu::run_variant<scalar_t>(
        position, momentum, 1, heat_coef, discrete,
        [&](int64_t) { return std::make_pair(momentum_coef, position_coef); },
        [&](const at::Tensor& fx) { momentum.addmm_(J, fx, 1.0, quadratic_coef); });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_step", &sb_step_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
