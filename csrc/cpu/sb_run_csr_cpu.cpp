// sb_run_csr on the CPU: the SB schedule with the coupling matrix in CSR form. The
// product m += q * J @ f(x) is a row-parallel SpMM: each row gathers the f(x) rows of
// its non-zeros (contiguous over agents), so memory stays O(nnz + variables * agents).

#include <torch/library.h>

#include <utility>
#include <vector>

#include "../checks.h"
#include "sb_loop.h"

namespace sb_native {
namespace {

// Rows per parallel chunk; a row costs about nnz_per_row * agents multiply-adds.
constexpr int64_t kRowGrain = 16;

template <typename scalar_t>
void csr_couple(const int64_t* crow, const int64_t* col, const scalar_t* values, const scalar_t* fx,
                scalar_t* m, int64_t rows, int64_t agents, scalar_t q) {
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> acc(agents);
    for (int64_t i = begin; i < end; ++i) {
      std::fill(acc.begin(), acc.end(), scalar_t(0));
      for (int64_t k = crow[i]; k < crow[i + 1]; ++k) {
        const scalar_t v = values[k];
        const scalar_t* f = fx + col[k] * agents;
        for (int64_t a = 0; a < agents; ++a) acc[a] += v * f[a];
      }
      scalar_t* mi = m + i * agents;
      for (int64_t a = 0; a < agents; ++a) mi[a] = mi[a] + q * acc[a];
    }
  });
}

void sb_run_csr_cpu(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                    at::Tensor& position, at::Tensor& momentum, int64_t start_step,
                    int64_t num_steps, double time_step, double pressure_slope,
                    double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_csr_coupling(crow, col, values, position);
  TORCH_CHECK_VALUE(start_step >= 0, "start_step must be non-negative, got ", start_step);
  TORCH_CHECK_VALUE(num_steps >= 0, "num_steps must be non-negative, got ", num_steps);
  const int64_t rows = position.size(0);
  const int64_t agents = position.size(1);
  if (position.numel() == 0 || num_steps == 0) return;
  const int64_t nnz = col.numel();
  const int64_t* crow_p = crow.data_ptr<int64_t>();
  const int64_t* col_p = col.data_ptr<int64_t>();
  TORCH_CHECK_VALUE(crow_p[0] == 0 && crow_p[rows] == nnz,
                    "crow_indices must start at 0 and end at nnz (", nnz, ")");
  for (int64_t i = 0; i < rows; ++i) {
    TORCH_CHECK_VALUE(crow_p[i] <= crow_p[i + 1], "crow_indices must be non-decreasing");
  }
  for (int64_t k = 0; k < nnz; ++k) {
    TORCH_CHECK_VALUE(col_p[k] >= 0 && col_p[k] < rows, "col_indices[", k, "] = ", col_p[k],
                      " is out of range for ", rows, " variables");
  }
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_csr_cpu", [&] {
    const scalar_t* vals = values.data_ptr<scalar_t>();
    const scalar_t q = static_cast<scalar_t>(quadratic_coef);
    cpu::run_variant<scalar_t>(
        position, momentum, num_steps, heat_coef, discrete,
        [&](int64_t k) {
          return std::make_pair(
              momentum_coefficient(time_step, start_step + k, pressure_slope), time_step);
        },
        [&](const at::Tensor& fx) {
          csr_couple<scalar_t>(crow_p, col_p, vals, fx.data_ptr<scalar_t>(),
                               momentum.data_ptr<scalar_t>(), rows, agents, q);
        });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run_csr", &sb_run_csr_cpu); }

}  // namespace sb_native
