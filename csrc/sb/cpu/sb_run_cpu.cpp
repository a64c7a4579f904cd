// sb_run on the CPU: num_steps steps of the SB schedule in one call with a dense coupling.
// bSB: J @ x through ATen's GEMM, accumulated straight into the momentum (beta = 1).
// dSB: the incremental local field of sb_discrete.h, agent by agent, from one GEMM per
// call. Small problems (both variants) run agent block by agent block
// with a register-blocked product instead (sb_small_dense.h).

#include <torch/library.h>

#include <utility>
#include <vector>

#include "../checks.h"
#include "sb_discrete.h"
#include "sb_loop.h"
#include "sb_small_dense.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

void sb_run_cpu(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                int64_t start_step, int64_t num_steps, double time_step, double pressure_slope,
                double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_dense_coupling(J, position);
  check_steps(start_step, num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  auto coefs = [&](int64_t k) {
    return std::make_pair(momentum_coefficient(time_step, start_step + k, pressure_slope),
                          time_step);
  };
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_cpu", [&] {
    if (discrete && position.size(0) <= cpu::kSmallDenseMaxVariables) {
      const at::Tensor Jc = J.contiguous();
      const at::Tensor JT = J.t().contiguous();
      if (heat_coef != 0.0) {
        cpu::run_small_dense_discrete<scalar_t, true>(Jc, JT, position, momentum, num_steps,
                                                      quadratic_coef, heat_coef,
                                                      cpu::kSmallFlipCrossover, coefs);
      } else {
        cpu::run_small_dense_discrete<scalar_t, false>(Jc, JT, position, momentum, num_steps,
                                                       quadratic_coef, heat_coef,
                                                       cpu::kSmallFlipCrossover, coefs);
      }
    } else if (discrete) {
      const at::Tensor Jc = J.contiguous();
      const cpu::DenseAgentField<scalar_t, scalar_t> field(Jc);
      cpu::run_discrete_variant<scalar_t, scalar_t, scalar_t>(
          position, momentum, num_steps, quadratic_coef, heat_coef, position.scalar_type(),
          position.scalar_type(), coefs,
          [&](const at::Tensor& signs, at::Tensor& f) { at::mm_out(f, Jc, signs); }, field);
    } else if (position.size(0) <= cpu::kSmallDenseMaxVariables) {
      const at::Tensor Jc = J.contiguous();
      if (heat_coef != 0.0) {
        cpu::run_small_dense_ballistic<scalar_t, true>(Jc, position, momentum, num_steps,
                                                       quadratic_coef, heat_coef, coefs);
      } else {
        cpu::run_small_dense_ballistic<scalar_t, false>(Jc, position, momentum, num_steps,
                                                        quadratic_coef, heat_coef, coefs);
      }
    } else {
      cpu::run_variant<scalar_t>(
          position, momentum, num_steps, heat_coef, false, coefs,
          [&](const at::Tensor& fx) { momentum.addmm_(J, fx, 1.0, quadratic_coef); });
    }
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run", &sb_run_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
