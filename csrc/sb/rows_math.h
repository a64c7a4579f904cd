#pragma once
// Per-element math of the row-block ops (sb_rows_step, sb_rows_pack, sb_rows_energy), shared
// by the CPU and CUDA kernels. A rank of a variables-across-ranks run (engine/rows.py) owns a
// block of rows of J and of the state; each step it receives f(x) of every variable from
// the other ranks in one of three forms, a "gathered" buffer with one row per variable:
//   floating: the positions themselves (bSB, f(x) = x);
//   int8    : sign(x) in {-1, 0, 1} (dSB, the rare step where some x is exactly 0);
//   int64   : one bit per agent, 64 agents per word (dSB signs or sampled spins): 1 for
//             x > 0 (signs) or x >= 0 (spins), so a dSB step sends 1 bit per spin and agent;
//             twice the words per row on a step where some sign is 0: the sign bits, then a
//             zero plane (1 where x == 0), 2 bits per spin for that step only.

#include <cstdint>

#include "../common/host_device.h"
#include "math.h"

namespace sb_native {
namespace sb {

// Words per variable of a packed buffer for agents agents.
SBN_HD int64_t packed_width(int64_t agents) { return (agents + 63) / 64; }

// The +-1 of agent a in a packed row.
template <typename T>
SBN_HD T packed_value(const int64_t* row, int64_t a) {
  return ((row[a >> 6] >> (a & 63)) & 1) ? T(1) : T(-1);
}

// The sign of agent a in a packed row with a zero plane `words` words on: +-1, or 0.
template <typename T>
SBN_HD T masked_value(const int64_t* row, int64_t words, int64_t a) {
  return ((row[words + (a >> 6)] >> (a & 63)) & 1) ? T(0) : packed_value<T>(row, a);
}

// The bit a row of positions packs for x: sign(x) > 0 for a dSB step, the sampled spin
// (x >= 0) for energies.
template <typename T>
SBN_HD bool packed_bit(T x, bool spins) {
  return spins ? x >= T(0) : x > T(0);
}

// True where sign(x) is neither +1 nor -1 (x == 0 or NaN): one bit cannot carry it, and the
// ranks then exchange int8 signs for that step instead.
template <typename T>
SBN_HD bool sign_needs_int8(T x) {
  return !(x > T(0)) && !(x < T(0));
}

// The second half of a step on one element, in the order of every SB kernel (sb_loop.h,
// csr_ballistic.h): m += q * (J @ f(x)), walls, heating with the step's starting momentum.
template <typename T>
SBN_HD void rows_finish(T& x, T& m, T m0, T acc, T q, T heat, bool heated) {
  m = m + q * acc;
  inelastic_walls(x, m);
  if (heated) m = m + heat * m0;
}

// The first half of the next step: keep the starting momentum for heating, then kick-drift.
template <typename T>
SBN_HD void rows_begin(T& x, T& m, T& m0, T momentum_coef, T position_coef, bool heated) {
  if (heated) m0 = m;
  kick_drift(x, m, momentum_coef, position_coef);
}

}  // namespace sb
}  // namespace sb_native
