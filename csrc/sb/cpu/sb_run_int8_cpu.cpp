// sb_run_int8 on the CPU: dSB on an integer coupling J = scale * K, K int8 (Max-Cut and
// K2000 have weights +-1, G-set small integers). Signs are int8 and the local field
// K @ sign(x) is int32, so the field is exact: each call starts from an int8 GEMM (VNNI,
// faster than an fp32 GEMM: bench/RESULTS.md), then every agent corrects its own field flip
// by flip (sb_discrete.h), which never drifts.

#include <torch/library.h>

#include <utility>
#include <vector>

#include "../checks.h"
#include "sb_discrete.h"
#include "sb_small_dense.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

void sb_run_int8_cpu(const at::Tensor& K, double scale, at::Tensor& position,
                     at::Tensor& momentum, int64_t start_step, int64_t num_steps,
                     double time_step, double pressure_slope, double quadratic_coef,
                     double heat_coef) {
  check_state(position, momentum);
  check_int8_coupling(K, scale, position, momentum);
  check_steps(start_step, num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  const at::Tensor Kc = K.contiguous();
  auto coefs = [&](int64_t k) {
    return std::make_pair(momentum_coefficient(time_step, start_step + k, pressure_slope),
                          time_step);
  };
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_int8_cpu", [&] {
    if (position.size(0) <= cpu::kSmallDenseMaxVariables) {
      // Small problems: the agent-block kernel on K in the state's float type, exact for
      // int8 weights at this size, so the state is the one the int32 field gives.
      const at::Tensor J = Kc.to(position.scalar_type());
      const at::Tensor JT = J.t().contiguous();
      const std::vector<cpu::SmallProblem<scalar_t>> problems{cpu::small_problem<scalar_t>(
          J.data_ptr<scalar_t>(), JT.data_ptr<scalar_t>(), position.size(0),
          position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(), quadratic_coef * scale)};
      cpu::run_small_dense<scalar_t>(problems, position.size(0), position.size(1), num_steps,
                                     heat_coef, true, coefs);
      return;
    }
    const cpu::DenseAgentField<int8_t, int32_t> field(Kc);
    cpu::run_discrete_variant<scalar_t, int8_t, int32_t>(
        position, momentum, num_steps, quadratic_coef * scale, heat_coef, at::kChar, at::kInt,
        coefs, [&](const at::Tensor& signs, at::Tensor& f) { at::_int_mm_out(f, Kc, signs); },
        field);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run_int8", &sb_run_int8_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
