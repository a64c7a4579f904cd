// sb_run_csr on the CPU: the SB schedule with the coupling matrix in CSR form, memory
// O(nnz + variables * agents). bSB: one fused row-parallel pass per step (csr_ballistic.h).
// dSB: the incremental local field of sb_discrete.h, agent by agent from one SpMM per call;
// a flip of spin i touches only the non-zeros of column i, so it costs the degree of i (with
// inf or NaN among the values, an SpMM per step instead).

#include <torch/library.h>

#include <utility>
#include <vector>

#include "../checks.h"
#include "csr_spmm.h"
#include "csr_ballistic.h"
#include "sb_discrete.h"
#include "sb_schedule.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

// The CSR coupling's part of the agent-by-agent field. A flip of spin i corrects the field
// along column i of J, i.e. row i of J^T, built once per call by a counting sort (O(nnz)):
// the couplings SB builds are symmetric, but the op does not rely on it.
template <typename scalar_t>
struct CsrAgentField {
  std::vector<int64_t> t_crow, t_col;  // J^T in CSR form
  std::vector<scalar_t> t_values;

  CsrAgentField(const cpu::CsrView& J, const scalar_t* values)
      : t_crow(J.rows + 1, 0), t_col(J.crow[J.rows]), t_values(J.crow[J.rows]) {
    for (int64_t k = 0; k < J.crow[J.rows]; ++k) ++t_crow[J.col[k] + 1];
    for (int64_t i = 0; i < J.rows; ++i) t_crow[i + 1] += t_crow[i];
    std::vector<int64_t> next(t_crow.begin(), t_crow.end() - 1);
    for (int64_t r = 0; r < J.rows; ++r) {  // ascending rows: each J^T row ends up sorted
      for (int64_t k = J.crow[r]; k < J.crow[r + 1]; ++k) {
        const int64_t at = next[J.col[k]]++;
        t_col[at] = r;
        t_values[at] = values[k];
      }
    }
  }

  void apply(int64_t spin, scalar_t delta, scalar_t* __restrict__ f) const {
    for (int64_t k = t_crow[spin]; k < t_crow[spin + 1]; ++k) {
      f[t_col[k]] = f[t_col[k]] + t_values[k] * delta;
    }
  }
};

// dSB with inf or NaN among the values, which no incremental field can carry
// (all_finite, sb_discrete.h): every step takes a fresh product, m += q * (J @ sign(x)) in the
// reference's rounding (the product, then q times it, then the sum), around sb_loop.h's
// per-element passes.
template <typename scalar_t, typename Coefs>
void run_csr_discrete_recomputed(const cpu::CsrView& J, const scalar_t* values,
                                 at::Tensor& position, at::Tensor& momentum, int64_t num_steps,
                                 double quadratic_coef, double heat_coef, Coefs coefs) {
  const int64_t agents = position.size(1), numel = position.numel();
  at::Tensor product = at::empty_like(position);
  scalar_t* f = product.data_ptr<scalar_t>();
  scalar_t* m = momentum.data_ptr<scalar_t>();
  const scalar_t q = static_cast<scalar_t>(quadratic_coef);
  cpu::run_variant<scalar_t>(
      position, momentum, num_steps, heat_coef, true, coefs, [&](const at::Tensor& signs) {
        cpu::csr_spmm<scalar_t>(J, values, signs.data_ptr<scalar_t>(), f, agents);
        at::parallel_for(0, numel, cpu::kElementGrain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) m[i] = m[i] + q * f[i];
        });
      });
}

void sb_run_csr_cpu(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                    at::Tensor& position, at::Tensor& momentum, int64_t start_step,
                    int64_t num_steps, double time_step, double pressure_slope,
                    double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_csr_coupling(crow, col, values, position);
  check_csr_apart(crow, col, values, position, "position");
  check_csr_apart(crow, col, values, momentum, "momentum");
  check_steps(start_step, num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  const int64_t rows = position.size(0);
  const int64_t agents = position.size(1);
  const cpu::CsrView J{crow.data_ptr<int64_t>(), col.data_ptr<int64_t>(), rows};
  check_csr_structure(crow, col, rows, c10::str(rows, " variables"));
  auto coefs = [&](int64_t k) {
    return std::make_pair(momentum_coefficient(time_step, start_step + k, pressure_slope),
                          time_step);
  };
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_csr_cpu", [&] {
    const scalar_t* vals = values.data_ptr<scalar_t>();
    if (discrete && !cpu::all_finite(vals, values.numel())) {
      run_csr_discrete_recomputed<scalar_t>(J, vals, position, momentum, num_steps,
                                            quadratic_coef, heat_coef, coefs);
    } else if (discrete) {
      const CsrAgentField<scalar_t> field(J, vals);
      cpu::run_discrete_variant<scalar_t, scalar_t, scalar_t>(
          position, momentum, num_steps, quadratic_coef, heat_coef, position.scalar_type(),
          position.scalar_type(), coefs,
          [&](const at::Tensor& signs, at::Tensor& f) {
            cpu::csr_spmm<scalar_t>(J, vals, signs.data_ptr<scalar_t>(), f.data_ptr<scalar_t>(),
                                    agents);
          },
          field);
    } else {
      const auto cs = cpu::step_coefficients<scalar_t>(num_steps, coefs);
      const scalar_t q = static_cast<scalar_t>(quadratic_coef);
      const scalar_t heat = static_cast<scalar_t>(heat_coef);
      if (heat_coef != 0.0) {
        cpu::run_csr_ballistic<scalar_t, true>(J, vals, position, momentum, cs, q, heat);
      } else {
        cpu::run_csr_ballistic<scalar_t, false>(J, vals, position, momentum, cs, q, heat);
      }
    }
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run_csr", &sb_run_csr_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
