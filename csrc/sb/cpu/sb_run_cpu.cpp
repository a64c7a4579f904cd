// sb_run on the CPU: num_steps steps of the SB schedule in one call with a dense coupling
// (the paths are in sb_dense.h).

#include <torch/library.h>

#include "../checks.h"
#include "sb_dense.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

void sb_run_cpu(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                int64_t start_step, int64_t num_steps, double time_step, double pressure_slope,
                double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_dense_coupling(J, position, momentum);
  check_steps(start_step, num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_cpu", [&] {
    run_dense<scalar_t>(J, position, momentum, num_steps, quadratic_coef, heat_coef, discrete,
                        CallCoefs{start_step, time_step, pressure_slope});
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run", &sb_run_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
