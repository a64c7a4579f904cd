// qimad_fidelity on the CPU: the row-normalised fidelity matrix W of the swarm, so the
// communication term of every agent is one GEMM (W @ theta) instead of the reference's
// O(N^2) scalar Python loop.

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "../qimad_checks.h"
#include "../qimad_math.h"

namespace sb_native {
namespace {

at::Tensor qimad_fidelity_cpu(const at::Tensor& alpha, const at::Tensor& beta,
                              const at::Tensor& mask, double k, double eps) {
  check_fidelity_args(alpha, beta, mask);
  const int64_t n = alpha.size(0);
  at::Tensor W = at::empty({n, n}, alpha.options());
  if (n == 0) return W;
  AT_DISPATCH_FLOATING_TYPES(alpha.scalar_type(), "qimad_fidelity_cpu", [&] {
    const scalar_t* a = alpha.data_ptr<scalar_t>();
    const scalar_t* b = beta.data_ptr<scalar_t>();
    const bool* edge = mask.data_ptr<bool>();
    scalar_t* w = W.data_ptr<scalar_t>();
    const auto kk = static_cast<scalar_t>(k);
    const auto e = static_cast<scalar_t>(eps);
    // Rows are independent; a row costs n transcendental evaluations.
    const int64_t grain = std::max<int64_t>(1, 2048 / n);
    at::parallel_for(0, n, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        scalar_t* row = w + i * n;
        // Summed in j order like the reference's sum(raw_w); eps keeps an isolated agent at 0.
        scalar_t sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          row[j] = edge[i * n + j] ? qimad::fidelity(a[i], b[i], a[j], b[j], kk) : scalar_t(0);
          sum += row[j];
        }
        const scalar_t denom = sum + e;
        for (int64_t j = 0; j < n; ++j) row[j] = row[j] / denom;
      }
    });
  });
  return W;
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("qimad_fidelity", &qimad_fidelity_cpu); }

}  // namespace sb_native
