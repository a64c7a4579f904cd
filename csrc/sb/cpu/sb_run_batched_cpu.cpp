// sb_run_batched on the CPU. Problems up to the small size run as (problem, agent block)
// tiles of the small dense kernel, all in one parallel loop: thousands of small problems
// keep every core busy where one problem alone has a handful of tiles. Larger problems run
// one after another on sb_run's paths. Either way a problem's states are those of sb_run.

#include <torch/library.h>

#include <vector>

#include "../../common/parallel.h"
#include "../checks.h"
#include "sb_dense.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

void sb_run_batched_cpu(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                        const at::Tensor& active, int64_t start_step, int64_t num_steps,
                        double time_step, double pressure_slope,
                        const at::Tensor& quadratic_coef, double heat_coef, bool discrete) {
  check_batched_run_args(J, position, momentum, active, quadratic_coef);
  check_steps(start_step, num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  const int64_t batch = position.size(0), n = position.size(1), agents = position.size(2);
  const at::Tensor Jc = J.contiguous();
  const at::Tensor act = active.contiguous();
  const at::Tensor qs = quadratic_coef.contiguous();
  const bool* runs = act.data_ptr<bool>();
  const double* q = qs.data_ptr<double>();
  const CallCoefs coefs{start_step, time_step, pressure_slope};
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_batched_cpu", [&] {
    if (n > kSmallDenseMaxVariables) {
      for (int64_t b = 0; b < batch; ++b) {
        if (!runs[b]) continue;
        at::Tensor x = position.select(0, b), m = momentum.select(0, b);
        run_dense<scalar_t>(Jc.select(0, b), x, m, num_steps, q[b], heat_coef, discrete, coefs);
      }
      return;
    }
    const scalar_t* Jp = Jc.data_ptr<scalar_t>();
    scalar_t* xp = position.data_ptr<scalar_t>();
    scalar_t* mp = momentum.data_ptr<scalar_t>();
    // Each problem's set-up (its columns for dSB, the finiteness of J) reads its coupling
    // once: in parallel over the problems, as the tiles then read them.
    std::vector<SmallProblem<scalar_t>> all(batch);
    std::vector<at::Tensor> copies(batch);  // the columns of a problem whose J is asymmetric
    at::parallel_for(0, batch, common::work_grain(n * n), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        if (!runs[b]) continue;
        const scalar_t* columns =
            discrete ? small_columns<scalar_t>(Jc.select(0, b), copies[b]) : nullptr;
        all[b] = small_problem<scalar_t>(Jp + b * n * n, columns, n, xp + b * n * agents,
                                         mp + b * n * agents, q[b]);
      }
    });
    std::vector<SmallProblem<scalar_t>> problems;
    for (int64_t b = 0; b < batch; ++b) {
      if (runs[b]) problems.push_back(all[b]);
    }
    run_small_dense<scalar_t>(problems, n, agents, num_steps, heat_coef, discrete, coefs);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run_batched", &sb_run_batched_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
