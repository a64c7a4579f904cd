// sb_run_int8 on the CPU: dSB on an integer coupling J = scale * K, K int8 (Max-Cut and
// K2000 have weights +-1, G-set small integers). Signs are int8 and the local field
// K @ sign(x) is int32, so the field is exact, its recompute is an int8 GEMM (VNNI, about
// 4x an fp32 GEMM here) and its incremental corrections never drift.

#include <torch/library.h>

#include <utility>

#include "../checks.h"
#include "sb_discrete.h"
#include "sb_small_dense.h"

namespace sb_native {
namespace {

// Fraction of sign flips in one step above which the int8 GEMM recompute beats
// column-by-column corrections (bench/bench_crossover.py measures it).
constexpr double kInt8FlipCrossover = 0.005;

struct Int8Field {
  const at::Tensor& K;  // contiguous int8 (variables, variables)
  int64_t agents;
  int64_t max_flips;

  void recompute(const at::Tensor& signs, at::Tensor field) { at::_int_mm_out(field, K, signs); }

  void apply(const cpu::FlipChunks<int32_t>& chunks, int64_t flips, int32_t* field) {
    cpu::apply_dense_flips(K.data_ptr<int8_t>(), K.size(0), agents, chunks, flips, field);
  }

  int64_t max_incremental_flips() const { return max_flips; }
};

void sb_run_int8_cpu(const at::Tensor& K, double scale, at::Tensor& position,
                     at::Tensor& momentum, int64_t start_step, int64_t num_steps,
                     double time_step, double pressure_slope, double quadratic_coef,
                     double heat_coef) {
  check_state(position, momentum);
  check_int8_coupling(K, position);
  check_steps(start_step, num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  const at::Tensor Kc = K.contiguous();
  Int8Field field{Kc, position.size(1),
                  cpu::max_incremental_flips(kInt8FlipCrossover, position.numel())};
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
      const double q = quadratic_coef * scale;
      if (heat_coef != 0.0) {
        cpu::run_small_dense_discrete<scalar_t, true>(J, JT, position, momentum, num_steps, q,
                                                      heat_coef, cpu::kSmallFlipCrossover, coefs);
      } else {
        cpu::run_small_dense_discrete<scalar_t, false>(J, JT, position, momentum, num_steps, q,
                                                       heat_coef, cpu::kSmallFlipCrossover, coefs);
      }
      return;
    }
    cpu::run_discrete_variant<scalar_t, int8_t, int32_t>(
        position, momentum, num_steps, quadratic_coef * scale, heat_coef, at::kChar, at::kInt,
        coefs, field);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run_int8", &sb_run_int8_cpu); }

}  // namespace sb_native
