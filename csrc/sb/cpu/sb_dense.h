#pragma once
// One call of sb_run's dense paths on one problem (arguments already checked), shared by
// sb_run and sb_run_batched (whose problems above the small size run one after another).
// bSB: J @ x through ATen's GEMM, accumulated straight into the momentum (beta = 1).
// dSB: the incremental local field of sb_discrete.h, agent by agent, from one GEMM per
// call (or bSB's GEMM per step when J holds inf or NaN). Small problems (both variants) run
// agent block by agent block with a register-blocked product instead (sb_small_dense.h).

#include <ATen/ATen.h>

#include <utility>
#include <vector>

#include "../math.h"
#include "sb_discrete.h"
#include "sb_loop.h"
#include "sb_small_dense.h"

namespace sb_native {
namespace sb {
namespace cpu {

// The {momentum_coef, position_coef} of step k of a call that starts at start_step.
struct CallCoefs {
  int64_t start_step;
  double time_step, pressure_slope;
  std::pair<double, double> operator()(int64_t k) const {
    return {momentum_coefficient(time_step, start_step + k, pressure_slope), time_step};
  }
};

template <typename scalar_t>
void run_dense(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
               int64_t num_steps, double quadratic_coef, double heat_coef, bool discrete,
               CallCoefs coefs) {
  const at::Tensor Jc = J.contiguous();
  const int64_t n = position.size(0);
  if (n <= kSmallDenseMaxVariables) {
    at::Tensor copy;
    const std::vector<SmallProblem<scalar_t>> problems{small_problem<scalar_t>(
        Jc.data_ptr<scalar_t>(), discrete ? small_columns<scalar_t>(Jc, copy) : nullptr, n,
        position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(), quadratic_coef)};
    run_small_dense<scalar_t>(problems, n, position.size(1), num_steps, heat_coef, discrete,
                              coefs);
  } else if (discrete && all_finite(Jc.data_ptr<scalar_t>(), n * n)) {
    const DenseAgentField<scalar_t, scalar_t> field(Jc);
    run_discrete_variant<scalar_t, scalar_t, scalar_t>(
        position, momentum, num_steps, quadratic_coef, heat_coef, position.scalar_type(),
        position.scalar_type(), coefs,
        [&](const at::Tensor& signs, at::Tensor& f) { at::mm_out(f, Jc, signs); }, field);
  } else {  // bSB, or dSB with inf or NaN in J (all_finite): a GEMM per step
    run_variant<scalar_t>(
        position, momentum, num_steps, heat_coef, discrete, coefs,
        [&](const at::Tensor& fx) { momentum.addmm_(J, fx, 1.0, quadratic_coef); });
  }
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
