#pragma once
// Argument checks of the row-block ops, run before any pointer is touched (names as in the
// schemas, csrc/sb/ops.cpp). The block's CSR structure, its columns against the gathered
// buffer's rows, is checks.h's check_csr_structure (gathered_range names that range).

#include <ATen/ATen.h>

#include <string>

#include "checks.h"
#include "rows_math.h"

namespace sb_native {
namespace sb {

// What the block's columns index, as check_csr_structure's messages name it.
inline std::string gathered_range(const at::Tensor& gathered) {
  return c10::str("gathered's ", gathered.size(0), " rows");
}

// The gathered buffer of f(x) for a state of `agents` columns: 2-D, contiguous, on the
// device of position; floating of position's dtype, int8, or int64 packed words.
inline void check_gathered(const at::Tensor& gathered, const at::Tensor& position) {
  const int64_t agents = position.size(1);
  TORCH_CHECK_VALUE(gathered.dim() == 2, "gathered must be 2-D (gathered rows, width), got ",
                    gathered.dim(), " dimensions");
  TORCH_CHECK_VALUE(gathered.device() == position.device(),
                    "gathered must be on the device of position");
  TORCH_CHECK_VALUE(gathered.is_contiguous(), "gathered must be contiguous");
  const auto type = gathered.scalar_type();
  if (type == at::kLong) {
    const int64_t words = packed_width(agents);
    TORCH_CHECK_VALUE(gathered.size(1) == words || gathered.size(1) == 2 * words,
                      "gathered (int64, packed) must have ", words, " words per row for ", agents,
                      " agents (", 2 * words, " with a zero plane), got ", gathered.size(1));
  } else {
    TORCH_CHECK_TYPE(type == at::kChar || type == position.scalar_type(),
                     "gathered must be int64 (packed bits), int8 (signs) or the dtype of "
                     "position (", position.scalar_type(), "), got ", type);
    TORCH_CHECK_VALUE(gathered.size(1) == agents, "gathered must have ", agents,
                      " columns (the agents of position), got ", gathered.size(1));
  }
}

// A tensor sb_rows_step writes besides position and momentum (start_momentum, field): shaped
// like position, apart from the state, the gathered f(x) and the block.
inline void check_rows_output(const at::Tensor& t, const char* name, const at::Tensor& crow,
                              const at::Tensor& col, const at::Tensor& values,
                              const at::Tensor& gathered, const at::Tensor& position,
                              const at::Tensor& momentum) {
  check_like_state(t, position, name);
  common::check_apart(t, position, name, "position");
  common::check_apart(t, momentum, name, "momentum");
  common::check_apart(t, gathered, name, "gathered");
  check_csr_apart(crow, col, values, t, name);
}

// sb_rows_step: the block, the gathered f(x), and the state (position, momentum and, when
// heated, start_momentum of one shape and dtype; unheated steps never touch start_momentum),
// none of the outputs overlapping another tensor.
inline void check_rows_step_args(const at::Tensor& crow, const at::Tensor& col,
                                 const at::Tensor& values, const at::Tensor& gathered,
                                 const at::Tensor& position, const at::Tensor& momentum,
                                 const at::Tensor& start_momentum, bool heated) {
  check_state(position, momentum);  // position and momentum apart
  check_csr_coupling(crow, col, values, position);  // a row per row of position
  check_gathered(gathered, position);
  check_apart_from_state(gathered, "gathered", position, momentum);
  check_csr_apart(crow, col, values, position, "position");
  check_csr_apart(crow, col, values, momentum, "momentum");
  if (heated) {
    check_rows_output(start_momentum, "start_momentum", crow, col, values, gathered, position,
                      momentum);
  }
}

// sb_rows_step's field (rows, agents) like position, apart from every other tensor, and
// previous, only with a field, packed signs without a zero plane of gathered's shape.
inline void check_rows_field_args(const at::Tensor& crow, const at::Tensor& col,
                                  const at::Tensor& values, const at::Tensor& gathered,
                                  const at::Tensor& position, const at::Tensor& momentum,
                                  const at::Tensor& start_momentum, bool heated,
                                  const c10::optional<at::Tensor>& field,
                                  const c10::optional<at::Tensor>& previous) {
  if (field.has_value()) {
    check_rows_output(*field, "field", crow, col, values, gathered, position, momentum);
    if (heated) common::check_apart(*field, start_momentum, "field", "start_momentum");
  }
  if (!previous.has_value()) return;
  TORCH_CHECK_VALUE(field.has_value(), "previous needs a field (the product it was taken for)");
  TORCH_CHECK_VALUE(gathered.scalar_type() == at::kLong &&
                        gathered.size(1) == packed_width(position.size(1)),
                    "previous needs gathered as packed signs without a zero plane");
  TORCH_CHECK_TYPE(previous->scalar_type() == at::kLong, "previous must be int64, got ",
                   previous->scalar_type());
  TORCH_CHECK_VALUE(previous->sizes() == gathered.sizes(), "previous must have the shape of "
                    "gathered ", gathered.sizes(), ", got ", previous->sizes());
  TORCH_CHECK_VALUE(previous->device() == position.device() && previous->is_contiguous(),
                    "previous must be contiguous and on the device of position");
  common::check_apart(*previous, *field, "previous", "field");
  common::check_apart(*previous, position, "previous", "position");
  common::check_apart(*previous, momentum, "previous", "momentum");
  if (heated) common::check_apart(*previous, start_momentum, "previous", "start_momentum");
}

// sb_rows_pack: position (rows, agents) into packed (rows + 1, words) int64.
inline void check_rows_pack_args(const at::Tensor& position, const at::Tensor& packed) {
  TORCH_CHECK_VALUE(position.dim() == 2, "position must be 2-D (rows, agents), got ",
                    position.dim(), " dimensions");
  common::check_float_tensor(position, "position");
  TORCH_CHECK_VALUE(position.is_contiguous(), "position must be contiguous");
  TORCH_CHECK_TYPE(packed.scalar_type() == at::kLong, "packed must be int64, got ",
                   packed.scalar_type());
  const int64_t words = packed_width(position.size(1));
  TORCH_CHECK_VALUE(packed.dim() == 2 && packed.size(0) == position.size(0) + 1 &&
                        packed.size(1) == words,
                    "packed must have shape (rows + 1, words) = (", position.size(0) + 1, ", ",
                    words, "), got ", packed.sizes());
  TORCH_CHECK_VALUE(packed.device() == position.device(), "packed must be on the device of position");
  TORCH_CHECK_VALUE(packed.is_contiguous(), "packed must be contiguous");
  common::check_apart(packed, position, "packed", "position");
}

// sb_rows_energy: the block, packed spins of every variable, position and energies (agents,).
inline void check_rows_energy_args(const at::Tensor& crow, const at::Tensor& col,
                                   const at::Tensor& values, const at::Tensor& gathered,
                                   const at::Tensor& position, const at::Tensor& energies) {
  TORCH_CHECK_VALUE(position.dim() == 2, "position must be 2-D (rows, agents), got ",
                    position.dim(), " dimensions");
  common::check_float_tensor(position, "position");
  TORCH_CHECK_VALUE(position.is_contiguous(), "position must be contiguous");
  check_csr_coupling(crow, col, values, position);  // a row per row of position
  check_gathered(gathered, position);
  TORCH_CHECK_TYPE(gathered.scalar_type() == at::kLong,
                   "gathered must hold packed spins (int64), got ", gathered.scalar_type());
  TORCH_CHECK_VALUE(gathered.size(1) == packed_width(position.size(1)),
                    "gathered must hold packed spins without a zero plane (spins are never 0)");
  const int64_t agents = position.size(1);
  TORCH_CHECK_VALUE(energies.dim() == 1 && energies.size(0) == agents,
                    "energies must have shape (agents,) = (", agents, ",), got ", energies.sizes());
  TORCH_CHECK_TYPE(energies.scalar_type() == position.scalar_type(),
                   "energies must have the dtype of position (", position.scalar_type(), "), got ",
                   energies.scalar_type());
  TORCH_CHECK_VALUE(energies.device() == position.device() && energies.is_contiguous(),
                    "energies must be contiguous and on the device of position");
  common::check_apart(energies, position, "energies", "position");
  common::check_apart(energies, gathered, "energies", "gathered");
  check_csr_apart(crow, col, values, energies, "energies");
}

}  // namespace sb
}  // namespace sb_native
