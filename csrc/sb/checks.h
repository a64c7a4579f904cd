#pragma once
// Argument checks run by every kernel entry before any pointer is touched. Each message
// names the argument; TORCH_CHECK_VALUE / TORCH_CHECK_TYPE surface as ValueError / TypeError.

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "../common/checks.h"

namespace sb_native {
namespace sb {

inline void check_state(const at::Tensor& position, const at::Tensor& momentum) {
  TORCH_CHECK_VALUE(position.dim() == 2, "position must be 2-D (variables, agents), got ",
                    position.dim(), " dimensions");
  common::check_float_tensor(position, "position");
  TORCH_CHECK_VALUE(momentum.sizes() == position.sizes(), "momentum must have the shape of position ",
                    position.sizes(), ", got ", momentum.sizes());
  TORCH_CHECK_TYPE(momentum.scalar_type() == position.scalar_type(),
                   "momentum must have the dtype of position (", position.scalar_type(), "), got ",
                   momentum.scalar_type());
  TORCH_CHECK_VALUE(momentum.device() == position.device(),
                    "momentum must be on the device of position");
  TORCH_CHECK_VALUE(position.is_contiguous(), "position must be contiguous");
  TORCH_CHECK_VALUE(momentum.is_contiguous(), "momentum must be contiguous");
  common::check_apart(position, momentum, "position", "momentum");
}

// t (named name), which the op reads, shares no memory with the state it writes.
inline void check_apart_from_state(const at::Tensor& t, const char* name,
                                   const at::Tensor& position, const at::Tensor& momentum) {
  common::check_apart(position, t, "position", name);
  common::check_apart(momentum, t, "momentum", name);
}

// t (named name) has position's shape, dtype and device and is contiguous; state names
// position in the messages.
inline void check_like_state(const at::Tensor& t, const at::Tensor& position, const char* name,
                             const char* state = "position") {
  TORCH_CHECK_VALUE(t.sizes() == position.sizes(), name, " must have the shape of ", state, " ",
                    position.sizes(), ", got ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == position.scalar_type(), name, " must have the dtype of ",
                   state, " (", position.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == position.device(), name, " must be on the device of ", state);
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

inline void check_dense_coupling(const at::Tensor& J, const at::Tensor& position,
                                 const at::Tensor& momentum) {
  TORCH_CHECK_VALUE(J.layout() == at::kStrided, "J must be a dense (strided) tensor");
  TORCH_CHECK_VALUE(J.dim() == 2 && J.size(0) == J.size(1), "J must be a square matrix, got shape ",
                    J.sizes());
  TORCH_CHECK_VALUE(J.size(0) == position.size(0), "J has ", J.size(0),
                    " rows but position has ", position.size(0), " variables");
  TORCH_CHECK_TYPE(J.scalar_type() == position.scalar_type(), "J must have the dtype of position (",
                   position.scalar_type(), "), got ", J.scalar_type());
  TORCH_CHECK_VALUE(J.device() == position.device(), "J must be on the device of position");
  check_apart_from_state(J, "J", position, momentum);
}

// state names the (variables, agents) tensor the coupling multiplies in the messages.
inline void check_csr_coupling(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                               const at::Tensor& position, const char* state = "position") {
  const int64_t n = position.size(0);
  TORCH_CHECK_TYPE(crow.scalar_type() == at::kLong && col.scalar_type() == at::kLong,
                   "crow_indices and col_indices must be int64");
  TORCH_CHECK_VALUE(crow.dim() == 1 && crow.numel() == n + 1, "crow_indices must be 1-D of length ",
                    n + 1, " (variables + 1), got shape ", crow.sizes());
  TORCH_CHECK_VALUE(col.dim() == 1 && values.dim() == 1 && col.numel() == values.numel(),
                    "col_indices and values must be 1-D of the same length");
  TORCH_CHECK_TYPE(values.scalar_type() == position.scalar_type(), "values must have the dtype of ",
                   state, " (", position.scalar_type(), "), got ", values.scalar_type());
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{crow, "crow_indices"},
                                {col, "col_indices"}, {values, "values"}}) {
    TORCH_CHECK_VALUE(t.device() == position.device(), name, " must be on the device of ", state);
    TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
  }
}

// The CSR tensors, which the op reads, share no memory with written (named name).
inline void check_csr_apart(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                            const at::Tensor& written, const char* name) {
  common::check_apart(written, crow, name, "crow_indices");
  common::check_apart(written, col, name, "col_indices");
  common::check_apart(written, values, name, "values");
}

// The structure of a CSR matrix whose columns index `columns` rows of what it multiplies
// (columns_are names them in the message, e.g. "6 variables"): crow_indices starts at 0,
// ends at nnz and never decreases, and every column is in range. On a GPU one reduction and
// one read-back decide; the messages come from a host copy only on failure.
inline void check_csr_structure(const at::Tensor& crow, const at::Tensor& col, int64_t columns,
                                const std::string& columns_are) {
  const int64_t rows = crow.numel() - 1, nnz = col.numel();
  if (!crow.device().is_cpu()) {
    at::Tensor bad = crow.select(0, 0).ne(0).logical_or(crow.select(0, rows).ne(nnz));
    if (rows > 0) bad = bad.logical_or(crow.slice(0, 1).lt(crow.slice(0, 0, rows)).any());
    if (nnz > 0) bad = bad.logical_or(col.lt(0).logical_or(col.ge(columns)).any());
    if (!bad.item<bool>()) return;
  }
  const at::Tensor crow_h = crow.cpu();
  const at::Tensor col_h = col.cpu();
  const int64_t* c = crow_h.data_ptr<int64_t>();
  const int64_t* j = col_h.data_ptr<int64_t>();
  TORCH_CHECK_VALUE(c[0] == 0 && c[rows] == nnz, "crow_indices must start at 0 and end at nnz (",
                    nnz, ")");
  for (int64_t i = 0; i < rows; ++i) {
    TORCH_CHECK_VALUE(c[i] <= c[i + 1], "crow_indices must be non-decreasing");
  }
  for (int64_t k = 0; k < nnz; ++k) {
    TORCH_CHECK_VALUE(j[k] >= 0 && j[k] < columns, "col_indices[", k, "] = ", j[k],
                      " is out of range for ", columns_are);
  }
}

// The step indices start_step .. start_step + num_steps - 1 are int64 in every kernel.
// The CUDA dSB kernels keep J @ sign(x) by flips (F += J[:, i] * delta), which turns an
// infinite weight into inf - inf = NaN where the reference's full product keeps +-inf; the CPU
// kernels recompute the field instead (sb_discrete.h). On the GPU a coupling that is not
// finite is refused: one reduction and one read-back per call, amortised over its steps.
inline void check_finite_for_dsb(const at::Tensor& values, const char* name) {
  TORCH_CHECK_VALUE(values.numel() == 0 || at::isfinite(values).all().item<bool>(), name,
                    " must be finite for dSB on CUDA (its incremental local field would turn an "
                    "infinite weight into NaN); run on the CPU or pass finite weights");
}

inline void check_steps(int64_t start_step, int64_t num_steps) {
  TORCH_CHECK_VALUE(start_step >= 0, "start_step must be non-negative, got ", start_step);
  TORCH_CHECK_VALUE(num_steps >= 0, "num_steps must be non-negative, got ", num_steps);
  TORCH_CHECK_VALUE(num_steps <= std::numeric_limits<int64_t>::max() - start_step,
                    "start_step + num_steps must fit int64, got start_step ", start_step,
                    " and num_steps ", num_steps);
}

// K (int8) and its scale: a finite scale, since J = scale * K is never formed (the momentum
// receives (q * scale) * (K @ s)), so a non-finite one would not spread through J's zeros as
// it does through the reference's product.
inline void check_int8_coupling(const at::Tensor& K, double scale, const at::Tensor& position,
                                const at::Tensor& momentum) {
  TORCH_CHECK_TYPE(K.scalar_type() == at::kChar, "K must be int8, got ", K.scalar_type());
  TORCH_CHECK_VALUE(std::isfinite(scale), "scale must be finite, got ", scale);
  TORCH_CHECK_VALUE(K.dim() == 2 && K.size(0) == K.size(1), "K must be a square matrix, got shape ",
                    K.sizes());
  TORCH_CHECK_VALUE(K.size(0) == position.size(0), "K has ", K.size(0),
                    " rows but position has ", position.size(0), " variables");
  TORCH_CHECK_VALUE(K.device() == position.device(), "K must be on the device of position");
  check_apart_from_state(K, "K", position, momentum);
}

// sb_run_batched's arguments: states (B, n, agents), J (B, n, n), active (B,) bool and
// quadratic_coef (B,) float64, all on the device of position; position and momentum apart.
inline void check_batched_run_args(const at::Tensor& J, const at::Tensor& position,
                                   const at::Tensor& momentum, const at::Tensor& active,
                                   const at::Tensor& quadratic_coef) {
  TORCH_CHECK_VALUE(position.dim() == 3, "position must be 3-D (problems, variables, agents), got ",
                    position.dim(), " dimensions");
  common::check_float_tensor(position, "position");
  check_like_state(momentum, position, "momentum");
  TORCH_CHECK_VALUE(position.is_contiguous(), "position must be contiguous");
  common::check_apart(position, momentum, "position", "momentum");
  const int64_t problems = position.size(0), n = position.size(1);
  TORCH_CHECK_VALUE(J.layout() == at::kStrided, "J must be a dense (strided) tensor");
  TORCH_CHECK_VALUE(J.dim() == 3 && J.size(0) == problems && J.size(1) == n && J.size(2) == n,
                    "J must have shape (problems, variables, variables) = (", problems, ", ", n,
                    ", ", n, "), got ", J.sizes());
  TORCH_CHECK_TYPE(J.scalar_type() == position.scalar_type(), "J must have the dtype of position (",
                   position.scalar_type(), "), got ", J.scalar_type());
  TORCH_CHECK_VALUE(J.device() == position.device(), "J must be on the device of position");
  TORCH_CHECK_VALUE(active.dim() == 1 && active.size(0) == problems,
                    "active must have shape (problems,) = (", problems, ",), got ", active.sizes());
  TORCH_CHECK_TYPE(active.scalar_type() == at::kBool, "active must be bool, got ",
                   active.scalar_type());
  TORCH_CHECK_VALUE(active.device() == position.device(), "active must be on the device of position");
  TORCH_CHECK_VALUE(quadratic_coef.dim() == 1 && quadratic_coef.size(0) == problems,
                    "quadratic_coef must have shape (problems,) = (", problems, ",), got ",
                    quadratic_coef.sizes());
  TORCH_CHECK_TYPE(quadratic_coef.scalar_type() == at::kDouble,
                   "quadratic_coef must be float64, got ", quadratic_coef.scalar_type());
  TORCH_CHECK_VALUE(quadratic_coef.device() == position.device(),
                    "quadratic_coef must be on the device of position");
  check_apart_from_state(J, "J", position, momentum);
  check_apart_from_state(active, "active", position, momentum);
  check_apart_from_state(quadratic_coef, "quadratic_coef", position, momentum);
}

// sb_sample's arguments: the stop-window state next to position (variables, agents), the
// written tensors apart from each other and from what the op reads. threshold - 1 must fit
// stability's int16: the reference compares an int16 tensor with it, which wraps larger ones.
inline void check_sample_args(const at::Tensor& position, const at::Tensor& field,
                              const at::Tensor& energies, const at::Tensor& stability,
                              const at::Tensor& bifurcated, const at::Tensor& final_spins,
                              int64_t threshold) {
  TORCH_CHECK_VALUE(position.dim() == 2, "position must be 2-D (variables, agents), got ",
                    position.dim(), " dimensions");
  common::check_float_tensor(position, "position");
  TORCH_CHECK_VALUE(position.is_contiguous(), "position must be contiguous");
  check_like_state(field, position, "field");
  check_like_state(final_spins, position, "final_spins");
  const int64_t agents = position.size(1);
  TORCH_CHECK_VALUE(energies.dim() == 1 && energies.size(0) == agents,
                    "energies must have shape (agents,) = (", agents, ",), got ", energies.sizes());
  TORCH_CHECK_TYPE(energies.scalar_type() == position.scalar_type(),
                   "energies must have the dtype of position (", position.scalar_type(), "), got ",
                   energies.scalar_type());
  TORCH_CHECK_VALUE(stability.dim() == 1 && stability.size(0) == agents,
                    "stability must have shape (agents,) = (", agents, ",), got ",
                    stability.sizes());
  TORCH_CHECK_TYPE(stability.scalar_type() == at::kShort, "stability must be int16, got ",
                   stability.scalar_type());
  TORCH_CHECK_VALUE(bifurcated.dim() == 1 && bifurcated.size(0) == agents,
                    "bifurcated must have shape (agents,) = (", agents, ",), got ",
                    bifurcated.sizes());
  TORCH_CHECK_TYPE(bifurcated.scalar_type() == at::kBool, "bifurcated must be bool, got ",
                   bifurcated.scalar_type());
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{energies, "energies"},
                                {stability, "stability"}, {bifurcated, "bifurcated"}}) {
    TORCH_CHECK_VALUE(t.device() == position.device(), name, " must be on the device of position");
    TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
  }
  TORCH_CHECK_VALUE(threshold > 0 && threshold <= 32768,
                    "threshold must be in [1, 32768] (stability is int16), got ", threshold);
  const std::pair<const at::Tensor&, const char*> written[] = {
      {energies, "energies"}, {stability, "stability"}, {bifurcated, "bifurcated"},
      {final_spins, "final_spins"}};
  for (size_t w = 0; w < 4; ++w) {
    common::check_apart(written[w].first, position, written[w].second, "position");
    common::check_apart(written[w].first, field, written[w].second, "field");
    for (size_t o = w + 1; o < 4; ++o) {
      common::check_apart(written[w].first, written[o].first, written[w].second,
                          written[o].second);
    }
  }
}

// sb_polish's arguments: spins and field (variables, agents), apart in memory, spins all +-1,
// and a well-formed CSR coupling of the variables (checked before any pointer is followed).
inline void check_polish_args(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                              const at::Tensor& spins, const at::Tensor& field, int64_t max_sweeps) {
  TORCH_CHECK_VALUE(spins.dim() == 2, "spins must be 2-D (variables, agents), got ", spins.dim(),
                    " dimensions");
  common::check_float_tensor(spins, "spins");
  TORCH_CHECK_VALUE(spins.is_contiguous(), "spins must be contiguous");
  check_like_state(field, spins, "field", "spins");
  common::check_apart(spins, field, "spins", "field");
  TORCH_CHECK_VALUE(max_sweeps >= 0, "max_sweeps must be non-negative, got ", max_sweeps);
  const int64_t n = spins.size(0);
  check_csr_coupling(crow, col, values, spins, "spins");
  check_csr_apart(crow, col, values, spins, "spins");
  check_csr_apart(crow, col, values, field, "field");
  check_csr_structure(crow, col, n, std::to_string(n) + " variables");
  if (spins.numel() > 0) {
    TORCH_CHECK_VALUE(spins.abs().ne(1).any().item<bool>() == false, "spins must all be -1 or 1");
  }
}

}  // namespace sb
}  // namespace sb_native
