// sb_run_batched on the GPU: sb_run on each active problem of a batch of problems of one
// size, J (B, n, n), states (B, n, agents). Problems with at most small_max_n() variables
// run in ONE persistent launch for the whole batch (sb_small.cuh: a flat grid of (problem,
// agent tile) blocks, each one exactly a block of sb_run's launch on its problem alone), so
// thousands of small problems cost one launch and fill the GPU. Larger problems, or a batch
// whose blocks do not fit, run one after another on sb_run's own paths (sb_run_dense.cuh).
// Either way each problem's states are those of sb_run on it alone, and inactive problems
// are never written.

#include <torch/library.h>

#include "../checks.h"
#include "sb_run_dense.cuh"
#include "sb_small.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

// The large-problem fallback: sb_run's paths per active problem. They decide on the host
// which problems run and pass each one's q as a kernel argument or to ATen's GEMM, so
// active and quadratic_coef come to the host here, in one small copy (2 x B doubles). The
// synchronisation it costs is small beside a call on problems above the persistent size
// (a GEMM or an n x n pass per step), and the batched launch, which reads both arrays on the
// device, never needs it.
template <typename scalar_t>
void run_each_problem(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                      const at::Tensor& active, const at::Tensor& quadratic_coef,
                      int64_t start_step, int64_t num_steps, double time_step,
                      double pressure_slope, double heat_coef, bool discrete) {
  const at::Tensor host = at::stack({active.to(at::kDouble), quadratic_coef}).cpu();
  const auto flags = host.accessor<double, 2>();
  for (int64_t b = 0; b < position.size(0); ++b) {
    if (flags[0][b] == 0.0) continue;
    at::Tensor x = position.select(0, b);  // contiguous: a slice of a contiguous batch
    at::Tensor m = momentum.select(0, b);
    run_dense_problem<scalar_t>(J.select(0, b), x, m, start_step, num_steps, time_step,
                                pressure_slope, flags[1][b], heat_coef, discrete);
  }
}

void sb_run_batched_cuda(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                         const at::Tensor& active, int64_t start_step, int64_t num_steps,
                         double time_step, double pressure_slope, const at::Tensor& quadratic_coef,
                         double heat_coef, bool discrete) {
  check_batched_run_args(J, position, momentum, active, quadratic_coef);
  check_steps(start_step, num_steps);
  const at::cuda::CUDAGuard guard(position.device());
  if (position.numel() == 0 || num_steps == 0) return;
  if (discrete) check_finite_for_dsb(J, "J");
  // The kernel indexes both arrays by problem.
  const at::Tensor act = active.contiguous();
  const at::Tensor qs = quadratic_coef.contiguous();
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_batched_cuda", [&] {
    if (small_run_dense_batched<scalar_t>(J, position, momentum, act, qs, start_step, num_steps,
                                          time_step, pressure_slope, heat_coef, discrete)) {
      return;
    }
    run_each_problem<scalar_t>(J, position, momentum, act, qs, start_step, num_steps, time_step,
                               pressure_slope, heat_coef, discrete);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_run_batched", &sb_run_batched_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
