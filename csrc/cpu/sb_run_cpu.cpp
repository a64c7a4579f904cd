// sb_run on the CPU: num_steps steps of the SB schedule in one call, dense coupling
// through ATen's GEMM (J @ f(x) accumulated straight into the momentum, beta = 1).

#include <torch/library.h>

#include <utility>

#include "../checks.h"
#include "sb_loop.h"

namespace sb_native {
namespace {

void sb_run_cpu(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                int64_t start_step, int64_t num_steps, double time_step, double pressure_slope,
                double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_dense_coupling(J, position);
  TORCH_CHECK_VALUE(start_step >= 0, "start_step must be non-negative, got ", start_step);
  TORCH_CHECK_VALUE(num_steps >= 0, "num_steps must be non-negative, got ", num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_cpu", [&] {
    cpu::run_variant<scalar_t>(
        position, momentum, num_steps, heat_coef, discrete,
        [&](int64_t k) {
          return std::make_pair(
              momentum_coefficient(time_step, start_step + k, pressure_slope), time_step);
        },
        [&](const at::Tensor& fx) { momentum.addmm_(J, fx, 1.0, quadratic_coef); });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run", &sb_run_cpu); }

}  // namespace sb_native
