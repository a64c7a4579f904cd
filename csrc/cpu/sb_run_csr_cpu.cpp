// sb_run_csr on the CPU: the SB schedule with the coupling matrix in CSR form, memory
// O(nnz + variables * agents). bSB: a row-parallel SpMM accumulated into the momentum.
// dSB: the incremental local field of sb_discrete.h; a flip of spin i touches only the
// non-zeros of row i (the coupling is symmetric), so it costs the degree of i.

#include <torch/library.h>

#include <utility>
#include <vector>

#include "../checks.h"
#include "csr_spmm.h"
#include "sb_discrete.h"
#include "sb_loop.h"

namespace sb_native {
namespace {

// Fraction of sign flips in one step above which a full SpMM beats scattered corrections.
constexpr double kCsrFlipCrossover = 0.25;

template <typename scalar_t>
struct CsrField {
  cpu::CsrView J;
  const scalar_t* values;
  int64_t agents;
  int64_t max_flips;

  void recompute(const at::Tensor& signs, at::Tensor field) {
    cpu::csr_spmm<scalar_t>(J, values, signs.data_ptr<scalar_t>(), field.data_ptr<scalar_t>(),
                            agents, scalar_t(1), false);
  }

  // F[j, a] += J[j, i] * delta over the non-zeros of row i (= column i, J symmetric). Each
  // thread owns a block of agents, so the scattered writes never collide.
  void apply(const cpu::FlipChunks<scalar_t>& chunks, int64_t flips,
             scalar_t* field) {
    const int64_t nnz_per_row = J.rows ? J.crow[J.rows] / J.rows : 0;
    const int64_t threads = at::get_num_threads();
    // One block of agents per thread, or a single inline block when there is little work.
    const int64_t block = flips * (nnz_per_row + 1) < at::internal::GRAIN_SIZE
                              ? agents
                              : (agents + threads - 1) / threads;
    at::parallel_for(0, agents, block, [&](int64_t begin, int64_t end) {
      for (const auto& chunk : chunks) {
        for (const auto& flip : chunk) {
          if (flip.agent < begin || flip.agent >= end) continue;
          for (int64_t k = J.crow[flip.spin]; k < J.crow[flip.spin + 1]; ++k) {
            field[J.col[k] * agents + flip.agent] += values[k] * flip.delta;
          }
        }
      }
    });
  }

  int64_t max_incremental_flips() const { return max_flips; }
};

void check_csr_structure(const int64_t* crow, const int64_t* col, int64_t rows, int64_t nnz) {
  TORCH_CHECK_VALUE(crow[0] == 0 && crow[rows] == nnz,
                    "crow_indices must start at 0 and end at nnz (", nnz, ")");
  for (int64_t i = 0; i < rows; ++i) {
    TORCH_CHECK_VALUE(crow[i] <= crow[i + 1], "crow_indices must be non-decreasing");
  }
  for (int64_t k = 0; k < nnz; ++k) {
    TORCH_CHECK_VALUE(col[k] >= 0 && col[k] < rows, "col_indices[", k, "] = ", col[k],
                      " is out of range for ", rows, " variables");
  }
}

void sb_run_csr_cpu(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                    at::Tensor& position, at::Tensor& momentum, int64_t start_step,
                    int64_t num_steps, double time_step, double pressure_slope,
                    double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_csr_coupling(crow, col, values, position);
  check_steps(start_step, num_steps);
  if (position.numel() == 0 || num_steps == 0) return;
  const int64_t rows = position.size(0);
  const int64_t agents = position.size(1);
  const cpu::CsrView J{crow.data_ptr<int64_t>(), col.data_ptr<int64_t>(), rows};
  check_csr_structure(J.crow, J.col, rows, col.numel());
  auto coefs = [&](int64_t k) {
    return std::make_pair(momentum_coefficient(time_step, start_step + k, pressure_slope),
                          time_step);
  };
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_csr_cpu", [&] {
    const scalar_t* vals = values.data_ptr<scalar_t>();
    if (discrete) {
      CsrField<scalar_t> field{
          J, vals, agents,
          cpu::max_incremental_flips(kCsrFlipCrossover, position.numel())};
      cpu::run_discrete_variant<scalar_t, scalar_t, scalar_t>(
          position, momentum, num_steps, quadratic_coef, heat_coef, position.scalar_type(),
          position.scalar_type(), coefs, field);
    } else {
      const scalar_t q = static_cast<scalar_t>(quadratic_coef);
      cpu::run_variant<scalar_t>(position, momentum, num_steps, heat_coef, false, coefs,
                                 [&](const at::Tensor& fx) {
                                   cpu::csr_spmm<scalar_t>(J, vals, fx.data_ptr<scalar_t>(),
                                                           momentum.data_ptr<scalar_t>(),
                                                           agents, q, true);
                                 });
    }
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_run_csr", &sb_run_csr_cpu); }

}  // namespace sb_native
