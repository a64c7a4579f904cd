#pragma once
// dSB with an incremental local field, agent by agent. dSB couples through F = J @ sign(x);
// after the first steps only a few signs flip per step (K2000 and G22: bench/RESULTS.md,
// flip crossover), so F is kept and corrected by one column of J per flip
// (F[:, a] += J[:, i] * delta) instead of being recomputed with a full product.
//
// Agents never interact, so each thread takes whole agents and runs every step of the call
// on one agent before the next: one parallel region per call instead of two per step. An
// agent's state (x, m, m0, its signs and its field) is gathered into contiguous buffers,
// a few tens of KB that stay in L1/L2 for the whole call, so the update pass is a
// vectorised sweep and a flip's correction is a contiguous axpy of one column of J (a CSR
// row for a sparse coupling).
//
// Every call starts from an exact field, a product of J with all agents' signs at once
// (GEMM, int8 GEMM or SpMM), and calls end at every sampling point, so any rounding drift
// (non-integer weights) is bounded by one sampling period; with integer weights the
// incremental field is exact. The corrections of a step are applied in ascending spin
// order once the whole agent has been updated (the pass reads the previous step's field).
//
// The signs and the field have their own types: scalar_t for a float coupling, int8 signs
// and an int32 field for an integer coupling J = scale * K. The momentum then receives
// (q * scale) * F.
//
// A step, as in simulated-bifurcation 2.0.0: m0 = m; kick-drift; F = J @ sign(x);
// m += q * F; walls; m += heat * m0. Step k's second half is fused with step k + 1's first
// half, and the sign comparison that finds the flips rides along in the same pass.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include "../../common/parallel.h"
#include "../math.h"
#include "sb_schedule.h"

namespace sb_native {
namespace sb {
namespace cpu {

// The flip fraction above which the small dense kernel (sb_small_dense.h) recomputes a
// block's field instead of correcting it: the kernel's measured default, or
// SB_NATIVE_FLIP_CROSSOVER (a fraction) for bench/bench_crossover.py, which sweeps it.
inline int64_t max_incremental_flips(double default_fraction, int64_t numel) {
  const char* value = std::getenv("SB_NATIVE_FLIP_CROSSOVER");
  const double fraction = value != nullptr ? std::atof(value) : default_fraction;
  return static_cast<int64_t>(fraction * static_cast<double>(numel));
}

// Variables updated per vectorised block before its signs are compared with the old ones.
constexpr int64_t kSignBlock = 64;
// Agents gathered together: their columns of the (variables, agents) state are read and
// written a cache line at a time.
constexpr int64_t kAgentGroup = 16;

// One block of the fused pass. Restrict parameters: the int8 sign stores could otherwise
// alias anything (char aliasing) and keep the compiler from vectorising the loop.
template <typename scalar_t, typename sign_t, typename field_t, bool kHeated, bool kFinish,
          bool kStart>
inline void update_block(scalar_t* __restrict__ x, scalar_t* __restrict__ m,
                         scalar_t* __restrict__ m0, const field_t* __restrict__ field,
                         sign_t* __restrict__ fresh, int64_t len, scalar_t q, scalar_t heat,
                         scalar_t momentum_coef, scalar_t position_coef) {
  for (int64_t e = 0; e < len; ++e) {
    scalar_t xe = x[e];
    scalar_t me = m[e];
    if (kFinish) {
      me = me + q * static_cast<scalar_t>(field[e]);
      inelastic_walls(xe, me);
      if (kHeated) me = me + heat * m0[e];
    }
    if (kStart) {
      if (kHeated) m0[e] = me;
      kick_drift(xe, me, momentum_coef, position_coef);
      fresh[e] = static_cast<sign_t>(sign_of(xe));
    }
    x[e] = xe;
    m[e] = me;
  }
}

// One agent's state, contiguous over its variables.
template <typename scalar_t, typename sign_t, typename field_t>
struct AgentState {
  std::vector<scalar_t> x, m, m0;
  std::vector<sign_t> s;   // sign(x) that f currently corresponds to
  std::vector<field_t> f;  // F = J @ s (in units of the coupling's scale)

  AgentState(int64_t n, bool heated) : x(n), m(n), m0(heated ? n : 0), s(n), f(n) {}
};

template <typename field_t>
struct Flip {
  int64_t spin;
  field_t delta;  // new sign - old sign: +-1 or +-2
};

// One sweep of an agent's variables: kFinish applies the previous step's second half,
// kStart begins the next step and collects its sign flips in ascending spin order. A block
// is updated branch-free (vectorised), its changed signs become a bit mask (a vector
// compare), and only the set bits are visited.
template <typename scalar_t, typename sign_t, typename field_t, bool kHeated, bool kFinish,
          bool kStart>
void agent_pass(AgentState<scalar_t, sign_t, field_t>& a, int64_t n, scalar_t q,
                scalar_t heat, scalar_t momentum_coef, scalar_t position_coef,
                std::vector<Flip<field_t>>& flips) {
  static_assert(kSignBlock == 64, "one bit of a uint64_t per variable of a block");
  flips.clear();
  for (int64_t b0 = 0; b0 < n; b0 += kSignBlock) {
    const int64_t len = std::min(kSignBlock, n - b0);
    sign_t fresh[kSignBlock];
    update_block<scalar_t, sign_t, field_t, kHeated, kFinish, kStart>(
        a.x.data() + b0, a.m.data() + b0, kHeated ? a.m0.data() + b0 : nullptr,
        a.f.data() + b0, fresh, len, q, heat, momentum_coef, position_coef);
    if (!kStart) continue;
    sign_t* __restrict__ old = a.s.data() + b0;
    uint64_t changed = 0;
    for (int64_t e = 0; e < len; ++e) changed |= static_cast<uint64_t>(fresh[e] != old[e]) << e;
    while (changed != 0) {
      const int e = __builtin_ctzll(changed);
      changed &= changed - 1;
      flips.push_back({b0 + e, static_cast<field_t>(fresh[e]) - static_cast<field_t>(old[e])});
      old[e] = fresh[e];
    }
  }
}

// Every step of the call for one agent. field.apply(spin, delta, f) adds delta * J[:, spin]
// to the agent's field f. Flips are few (see the top of the file), and a correction costs
// one contiguous pass over a column, 1 / n of the agent's own product, so the field is
// never recomputed within a call.
template <typename scalar_t, typename sign_t, typename field_t, bool kHeated, typename Field>
void run_agent(AgentState<scalar_t, sign_t, field_t>& a, int64_t n,
               const std::vector<std::pair<scalar_t, scalar_t>>& cs, scalar_t q, scalar_t heat,
               const Field& field, std::vector<Flip<field_t>>& flips) {
  const auto steps = static_cast<int64_t>(cs.size());
  for (int64_t k = 0; k < steps; ++k) {
    const scalar_t mc = cs[k].first, pc = cs[k].second;
    if (k == 0) {
      agent_pass<scalar_t, sign_t, field_t, kHeated, false, true>(a, n, q, heat, mc, pc, flips);
    } else {
      agent_pass<scalar_t, sign_t, field_t, kHeated, true, true>(a, n, q, heat, mc, pc, flips);
    }
    for (const auto& flip : flips) field.apply(flip.spin, flip.delta, a.f.data());
  }
  agent_pass<scalar_t, sign_t, field_t, kHeated, true, false>(a, n, q, heat, scalar_t(0),
                                                             scalar_t(0), flips);
}

template <typename scalar_t, typename sign_t>
void store_signs(const scalar_t* __restrict__ x, sign_t* __restrict__ s, int64_t len) {
  for (int64_t i = 0; i < len; ++i) s[i] = static_cast<sign_t>(sign_of(x[i]));
}

// Copies the columns of `width` consecutive agents of a (variables, agents) tensor into
// their agents' contiguous buffers (kToColumns) or back, 64 variables at a time, so each
// cache line of the tensor is read (written) once while it sits in L1.
template <bool kToColumns, typename T, typename Column>
void transpose_group(T* matrix, int64_t stride, int64_t n, int64_t width, Column column) {
  constexpr int64_t kRows = 64;
  for (int64_t i0 = 0; i0 < n; i0 += kRows) {
    const int64_t i1 = std::min(n, i0 + kRows);
    for (int64_t a = 0; a < width; ++a) {
      T* __restrict__ c = column(a);
      T* __restrict__ t = matrix + a;
      for (int64_t i = i0; i < i1; ++i) {
        if (kToColumns) c[i] = t[i * stride];
        else t[i * stride] = c[i];
      }
    }
  }
}

// Runs num_steps dSB steps of the (variables, agents) state. initial(signs, field) computes
// the field of all agents at once, (variables, agents) tensors of sign_dtype and
// field_dtype; q is the coefficient of F in the momentum update (the coupling's scale
// folded in).
template <typename scalar_t, typename sign_t, typename field_t, typename Coefs,
          typename Initial, typename Field>
void run_discrete_variant(at::Tensor& position, at::Tensor& momentum, int64_t num_steps,
                          double q, double heat, at::ScalarType sign_dtype,
                          at::ScalarType field_dtype, Coefs coefs, Initial initial,
                          const Field& field) {
  const int64_t n = position.size(0), agents = position.size(1), numel = position.numel();
  scalar_t* xp = position.data_ptr<scalar_t>();
  scalar_t* mp = momentum.data_ptr<scalar_t>();
  at::Tensor signs = at::empty(position.sizes(), position.options().dtype(sign_dtype));
  at::Tensor fields = at::empty(position.sizes(), position.options().dtype(field_dtype));
  sign_t* sp = signs.data_ptr<sign_t>();
  at::parallel_for(0, numel, at::internal::GRAIN_SIZE, [&](int64_t b, int64_t e) {
    store_signs(xp + b, sp + b, e - b);
  });
  initial(signs, fields);
  field_t* fp = fields.data_ptr<field_t>();
  const auto cs = step_coefficients<scalar_t>(num_steps, coefs);
  const scalar_t qs = static_cast<scalar_t>(q), hs = static_cast<scalar_t>(heat);
  const bool heated = heat != 0.0;

  const int64_t grain = common::work_grain(n * num_steps);
  at::parallel_for(0, agents, grain, [&](int64_t begin, int64_t end) {
    std::vector<AgentState<scalar_t, sign_t, field_t>> group(
        std::min(kAgentGroup, end - begin), AgentState<scalar_t, sign_t, field_t>(n, heated));
    std::vector<Flip<field_t>> flips;
    flips.reserve(n);
    for (int64_t a0 = begin; a0 < end; a0 += kAgentGroup) {
      const int64_t width = std::min(kAgentGroup, end - a0);
      auto x_of = [&](int64_t a) { return group[a].x.data(); };
      auto m_of = [&](int64_t a) { return group[a].m.data(); };
      transpose_group<true>(xp + a0, agents, n, width, x_of);
      transpose_group<true>(mp + a0, agents, n, width, m_of);
      transpose_group<true>(fp + a0, agents, n, width, [&](int64_t a) { return group[a].f.data(); });
      for (int64_t a = 0; a < width; ++a) {
        auto& agent = group[a];
        store_signs(agent.x.data(), agent.s.data(), n);
        if (heated) run_agent<scalar_t, sign_t, field_t, true>(agent, n, cs, qs, hs, field, flips);
        else run_agent<scalar_t, sign_t, field_t, false>(agent, n, cs, qs, hs, field, flips);
      }
      transpose_group<false>(xp + a0, agents, n, width, x_of);
      transpose_group<false>(mp + a0, agents, n, width, m_of);
    }
  });
}

// True when the count values at p are all finite (x - x is 0 exactly then; an integer AND of
// the comparisons vectorises). A flip corrects the field by a column of J, and a column
// holding inf or NaN would poison it for good (inf - inf), where the reference's product of
// the new signs is again +-inf; so with such a coupling the callers take a fresh product
// every step instead, as the reference does (one pass over J per call, beside a product).
template <typename T>
bool all_finite(const T* p, int64_t count) {
  return at::parallel_reduce(
      0, count, at::internal::GRAIN_SIZE, true,
      [&](int64_t b, int64_t e, bool ok) {
        int finite = 1;
        for (int64_t i = b; i < e; ++i) finite &= p[i] - p[i] == T(0);
        return ok && finite != 0;
      },
      [](bool a, bool b) { return a && b; });
}

// True when the dense row-major n x n matrix equals its transpose, compared tile by tile
// (64 x 64, cache-resident). Tile rows are paired first with last so both threads get
// the same share of the upper triangle.
template <typename T>
bool is_symmetric(const T* J, int64_t n) {
  constexpr int64_t kTile = 64;
  const int64_t tiles = (n + kTile - 1) / kTile;
  std::atomic<bool> symmetric{true};
  auto tile_row = [&](int64_t t) {
    const int64_t i0 = t * kTile, i1 = std::min(n, i0 + kTile);
    for (int64_t j0 = i0; j0 < n && symmetric.load(std::memory_order_relaxed); j0 += kTile) {
      const int64_t j1 = std::min(n, j0 + kTile);
      bool same = true;
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = std::max(j0, i + 1); j < j1; ++j) same &= J[i * n + j] == J[j * n + i];
      }
      if (!same) symmetric.store(false, std::memory_order_relaxed);
    }
  };
  const int64_t grain = common::work_grain(2 * kTile * n);
  at::parallel_for(0, (tiles + 1) / 2, grain, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      tile_row(p);
      if (tiles - 1 - p != p) tile_row(tiles - 1 - p);
    }
  });
  return symmetric.load();
}

// A dense coupling's part of the agent-by-agent field: the columns of J (coupling_t: float,
// double or int8) contiguous, i.e. J's rows when J is symmetric, as the SB couplings are,
// else a transposed copy made once per call.
template <typename coupling_t, typename field_t>
struct DenseAgentField {
  at::Tensor transposed;  // holds the columns when J is not symmetric
  const coupling_t* columns;  // columns + i * n = J[:, i]
  int64_t n;

  explicit DenseAgentField(const at::Tensor& J)
      : columns(J.data_ptr<coupling_t>()), n(J.size(0)) {
    if (!is_symmetric(columns, n)) {
      transposed = J.t().contiguous();
      columns = transposed.data_ptr<coupling_t>();
    }
  }

  // delta is +-1 or +-2, so f + column * delta is an add or subtract of the column (or of
  // twice it), the same value without a vector multiply.
  void apply(int64_t spin, field_t delta, field_t* __restrict__ f) const {
    const coupling_t* __restrict__ column = columns + spin * n;
    if (delta == field_t(1)) add_column<false, false>(column, f);
    else if (delta == field_t(-1)) add_column<true, false>(column, f);
    else if (delta == field_t(2)) add_column<false, true>(column, f);
    else add_column<true, true>(column, f);
  }

  template <bool kSubtract, bool kTwice>
  void add_column(const coupling_t* __restrict__ column, field_t* __restrict__ f) const {
    for (int64_t r = 0; r < n; ++r) {
      field_t c = static_cast<field_t>(column[r]);
      if (kTwice) c = c + c;
      f[r] = kSubtract ? f[r] - c : f[r] + c;
    }
  }
};

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
