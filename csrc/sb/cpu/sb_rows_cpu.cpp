// The row-block ops on the CPU (variables across ranks, engine/rows.py): a rank's rows of J
// in CSR form times f(x) of every variable gathered from the ranks, fused with the step's
// per-element update (rows_math.h) as run_csr_ballistic fuses it, so a rank's rows evolve
// exactly as those rows of a single-process sb_run_csr run: the same sums in the same
// order (bSB, fused as csr_row_block), exact +-1 terms for dSB (kept as an incremental field
// when the caller passes one).

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../common/parallel.h"
#include "../rows_checks.h"
#include "../rows_math.h"
#include "csr_spmm.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

// Rows of one partial energy sum: fixed, so the sums (and energies) do not depend on the
// thread count.
constexpr int64_t kEnergyRows = 64;

// The eight +-1 of each byte of packed bits, so a byte's terms are one vector multiply-add
// instead of eight selects (v * +-1 is exact: the same sums as the select).
// With a zero plane, keep holds 0 where a sign is 0, else 1.
template <typename scalar_t>
struct ByteSigns {
  scalar_t signs[256][8];
  scalar_t keep[256][8];

  static const ByteSigns& get() {
    static const ByteSigns table = [] {
      ByteSigns t{};
      for (int byte = 0; byte < 256; ++byte) {
        for (int e = 0; e < 8; ++e) {
          t.signs[byte][e] = ((byte >> e) & 1) ? scalar_t(1) : scalar_t(-1);
          t.keep[byte][e] = ((byte >> e) & 1) ? scalar_t(0) : scalar_t(1);
        }
      }
      return t;
    }();
    return table;
  }
};

// acc = (J @ f)[i, :] for f given as int8 signs or packed bits: every term is +-v or 0,
// exact, added in the non-zeros' order.
template <typename scalar_t>
void signed_row_product(const CsrView& J, const scalar_t* values, const at::Tensor& gathered,
                        int64_t agents, int64_t i, scalar_t* __restrict__ acc) {
  std::fill(acc, acc + agents, scalar_t(0));
  if (gathered.scalar_type() == at::kChar) {
    const int8_t* signs = gathered.data_ptr<int8_t>();
    for (int64_t k = J.crow[i]; k < J.crow[i + 1]; ++k) {
      const scalar_t v = values[k];
      const int8_t* __restrict__ s = signs + J.col[k] * agents;
      for (int64_t a = 0; a < agents; ++a) acc[a] += v * static_cast<scalar_t>(s[a]);
    }
    return;
  }
  const int64_t width = packed_width(agents);
  const int64_t* words = gathered.data_ptr<int64_t>();
  const int64_t stride = gathered.size(1);
  const bool masked = stride != width;  // a zero plane follows the sign bits
  const auto& table = ByteSigns<scalar_t>::get();
  for (int64_t k = J.crow[i]; k < J.crow[i + 1]; ++k) {
    const scalar_t v = values[k];
    const int64_t* row = words + J.col[k] * stride;
    for (int64_t w = 0; w < width; ++w) {
      const uint64_t bits = static_cast<uint64_t>(row[w]);
      const uint64_t zeros = masked ? static_cast<uint64_t>(row[width + w]) : 0;
      const int64_t len = std::min<int64_t>(64, agents - 64 * w);
      scalar_t* __restrict__ out = acc + 64 * w;
      int64_t b = 0;
      for (; b + 8 <= len; b += 8) {  // a byte of bits at a time: one vector of +-1
        const scalar_t* __restrict__ s = table.signs[(bits >> b) & 255];
        if (masked) {
          // (v * +-1) * 0 is a zero like v * 0: adding either leaves the sum as it is.
          const scalar_t* __restrict__ keep = table.keep[(zeros >> b) & 255];
          for (int64_t e = 0; e < 8; ++e) out[b + e] += v * s[e] * keep[e];
        } else {
          for (int64_t e = 0; e < 8; ++e) out[b + e] += v * s[e];
        }
      }
      for (; b < len; ++b) {
        out[b] += v * (masked ? masked_value<scalar_t>(row + w, width, b)
                              : packed_value<scalar_t>(row + w, b));
      }
    }
  }
}

template <typename scalar_t>
void row_product(const CsrView& J, const scalar_t* values, const at::Tensor& gathered,
                 int64_t agents, int64_t i, scalar_t* acc) {
  if (gathered.scalar_type() == at::kChar || gathered.scalar_type() == at::kLong) {
    signed_row_product(J, values, gathered, agents, i, acc);
  } else {
    csr_row_product(J, values, static_cast<const scalar_t*>(gathered.data_ptr<scalar_t>()),
                    agents, i, acc);
  }
}

// A step whose changed signs exceed 1 / kWholeStepFlipShare of all the gathered signs takes
// the whole product: each correction is a scalar add at a found bit, the product eight adds
// at a time, and the crossover sits near 5% changed (bench/sb/bench_rows_field.py).
constexpr int64_t kWholeStepFlipShare = 16;

// The last word's bits that are agents (the rest is padding, never read as agents).
inline uint64_t agent_bits(int64_t agents, int64_t w) {
  const int64_t len = std::min<int64_t>(64, agents - 64 * w);
  return len == 64 ? ~uint64_t(0) : (uint64_t(1) << len) - 1;
}

// Whether a finish should correct the field rather than take the whole product: few signs
// changed between previous and gathered (one sequential pass over both).
inline bool few_changes(const at::Tensor& gathered, const at::Tensor& previous, int64_t agents) {
  const int64_t width = packed_width(agents), variables = gathered.size(0);
  const int64_t* now = gathered.data_ptr<int64_t>();
  const int64_t* before = previous.data_ptr<int64_t>();
  int64_t changes = 0;
  for (int64_t r = 0; r < variables; ++r) {
    for (int64_t w = 0; w < width; ++w) {
      changes += __builtin_popcountll(
          static_cast<uint64_t>(now[r * width + w] ^ before[r * width + w]) &
          agent_bits(agents, w));
    }
  }
  return changes * kWholeStepFlipShare <= variables * agents;
}

// field[i, :] += 2 v s for each term of row i whose packed sign s changed since previous:
// dSB's incremental field (flips are few once the run settles), as the one-process kernels
// keep theirs; exact when the row's sums are (rows_math.h). Packed rows without a zero plane.
template <typename scalar_t>
void flipped_row_update(const CsrView& J, const scalar_t* values, const int64_t* now,
                        const int64_t* before, int64_t agents, int64_t i,
                        scalar_t* __restrict__ field) {
  const int64_t width = packed_width(agents);
  for (int64_t k = J.crow[i]; k < J.crow[i + 1]; ++k) {
    for (int64_t w = 0; w < width; ++w) {
      const int64_t at = J.col[k] * width + w;
      uint64_t changed = static_cast<uint64_t>(now[at] ^ before[at]) & agent_bits(agents, w);
      if (changed == 0) continue;
      const scalar_t twice = scalar_t(2) * values[k];
      const uint64_t bits = static_cast<uint64_t>(now[at]);
      for (; changed != 0; changed &= changed - 1) {
        const int b = __builtin_ctzll(changed);
        field[64 * w + b] += ((bits >> b) & 1) ? twice : -twice;
      }
    }
  }
}

void sb_rows_step_cpu(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                      const at::Tensor& gathered, at::Tensor& position, at::Tensor& momentum,
                      at::Tensor& start_momentum, double momentum_coef, double position_coef,
                      double quadratic_coef, double heat_coef, bool finish, bool begin,
                      const c10::optional<at::Tensor>& field,
                      const c10::optional<at::Tensor>& previous) {
  const bool heated = heat_coef != 0.0;
  check_rows_step_args(crow, col, values, gathered, position, momentum, start_momentum, heated);
  check_rows_field_args(crow, col, values, gathered, position, momentum, start_momentum, heated,
                        field, previous);
  const int64_t rows = position.size(0), agents = position.size(1);
  if (finish) check_csr_structure(crow, col, gathered.size(0), gathered_range(gathered));
  if (position.numel() == 0 || (!finish && !begin)) return;
  const CsrView J{crow.data_ptr<int64_t>(), col.data_ptr<int64_t>(), rows};
  // The whole product, kept in field, equals the corrected one: the choice is speed only.
  const bool incremental =
      finish && previous.has_value() && few_changes(gathered, *previous, agents);
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_rows_step_cpu", [&] {
    const scalar_t* vals = values.data_ptr<scalar_t>();
    scalar_t* x = position.data_ptr<scalar_t>();
    scalar_t* m = momentum.data_ptr<scalar_t>();
    scalar_t* m0 = heated ? start_momentum.data_ptr<scalar_t>() : nullptr;
    scalar_t* kept = field.has_value() ? field->data_ptr<scalar_t>() : nullptr;
    const int64_t* now = incremental ? gathered.data_ptr<int64_t>() : nullptr;
    const int64_t* before = incremental ? previous->data_ptr<int64_t>() : nullptr;
    const scalar_t q = static_cast<scalar_t>(quadratic_coef);
    const scalar_t heat = static_cast<scalar_t>(heat_coef);
    const scalar_t mc = static_cast<scalar_t>(momentum_coef);
    const scalar_t pc = static_cast<scalar_t>(position_coef);
    const int64_t nnz_per_row = rows ? J.crow[rows] / rows : 0;
    const int64_t grain = common::work_grain((finish ? nnz_per_row + 4 : 4) * agents);
    at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
      std::vector<scalar_t> own(kept ? 0 : agents);
      for (int64_t i = r0; i < r1; ++i) {
        const int64_t row = i * agents;
        scalar_t* acc = kept ? kept + row : own.data();
        if (finish && incremental) {
          flipped_row_update(J, vals, now, before, agents, i, acc);
        } else if (finish) {
          row_product(J, vals, gathered, agents, i, acc);
        }
        for (int64_t a = 0; a < agents; ++a) {
          scalar_t xe = x[row + a], me = m[row + a];
          scalar_t m0e = heated ? m0[row + a] : scalar_t(0);
          if (finish) rows_finish(xe, me, m0e, acc[a], q, heat, heated);
          if (begin) rows_begin(xe, me, m0e, mc, pc, heated);
          x[row + a] = xe;
          m[row + a] = me;
          if (heated) m0[row + a] = m0e;
        }
      }
    });
  });
}

void sb_rows_pack_cpu(const at::Tensor& position, at::Tensor& packed, bool spins) {
  check_rows_pack_args(position, packed);
  const int64_t rows = position.size(0), agents = position.size(1);
  const int64_t width = packed_width(agents);
  if (width == 0) return;  // no agents: no words, not even the header's
  int64_t* out = packed.data_ptr<int64_t>();
  std::fill(out + rows * width, out + (rows + 1) * width, int64_t(0));
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_rows_pack_cpu", [&] {
    const scalar_t* x = position.data_ptr<scalar_t>();
    const int64_t zeros = at::parallel_reduce(
        0, rows, common::work_grain(agents), int64_t(0),
        [&](int64_t r0, int64_t r1, int64_t found) {
          for (int64_t i = r0; i < r1; ++i) {
            for (int64_t w = 0; w < width; ++w) {
              uint64_t bits = 0;
              const int64_t len = std::min<int64_t>(64, agents - 64 * w);
              const scalar_t* __restrict__ row = x + i * agents + 64 * w;
              for (int64_t b = 0; b < len; ++b) {
                bits |= static_cast<uint64_t>(packed_bit(row[b], spins)) << b;
                found += !spins && sign_needs_int8(row[b]);
              }
              out[i * width + w] = static_cast<int64_t>(bits);
            }
          }
          return found;
        },
        [](int64_t a, int64_t b) { return a + b; });
    out[rows * width] = zeros;
  });
}

void sb_rows_energy_cpu(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                        const at::Tensor& gathered, const at::Tensor& position,
                        at::Tensor& energies) {
  check_rows_energy_args(crow, col, values, gathered, position, energies);
  const int64_t rows = position.size(0), agents = position.size(1);
  check_csr_structure(crow, col, gathered.size(0), gathered_range(gathered));
  if (agents == 0) return;
  const CsrView J{crow.data_ptr<int64_t>(), col.data_ptr<int64_t>(), rows};
  const int64_t chunks = (rows + kEnergyRows - 1) / kEnergyRows;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_rows_energy_cpu", [&] {
    const scalar_t* vals = values.data_ptr<scalar_t>();
    const scalar_t* x = position.data_ptr<scalar_t>();
    std::vector<scalar_t> partial(chunks * agents, scalar_t(0));
    const int64_t nnz_per_chunk = rows ? J.crow[rows] / rows * kEnergyRows : 0;
    at::parallel_for(0, chunks, common::work_grain((nnz_per_chunk + kEnergyRows) * agents),
                     [&](int64_t c0, int64_t c1) {
      std::vector<scalar_t> acc(agents);
      for (int64_t c = c0; c < c1; ++c) {
        scalar_t* sum = partial.data() + c * agents;
        for (int64_t i = c * kEnergyRows; i < std::min(rows, (c + 1) * kEnergyRows); ++i) {
          signed_row_product(J, vals, gathered, agents, i, acc.data());
          for (int64_t a = 0; a < agents; ++a) sum[a] += spin_of(x[i * agents + a]) * acc[a];
        }
      }
    });
    scalar_t* e = energies.data_ptr<scalar_t>();
    for (int64_t a = 0; a < agents; ++a) {
      scalar_t total = 0;
      for (int64_t c = 0; c < chunks; ++c) total += partial[c * agents + a];
      e[a] = total;
    }
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) {
  m.impl("sb_rows_step", &sb_rows_step_cpu);
  m.impl("sb_rows_pack", &sb_rows_pack_cpu);
  m.impl("sb_rows_energy", &sb_rows_energy_cpu);
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
