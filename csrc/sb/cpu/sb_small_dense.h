#pragma once
// bSB on a small dense coupling, agent block by agent block. Agents never interact, so each
// thread takes whole blocks of agents and runs every step of the call on them with no
// synchronisation at all: one parallel region per call instead of two per step, and a
// product J @ x of a few dozen agents that stays in L1/L2. At these sizes (n up to a few
// hundred) a BLAS call per step is dominated by its fixed costs and thread hand-offs; the
// register-blocked product of small_product.h runs at the arithmetic peak instead.
//
// Arithmetic: F = sum_j J[i, j] x[j] summed in j order, each term fused into the sum
// (fused_product.h), then m += q * F and the shared per-element math of csrc/sb/math.h in the
// order of sb_loop.h. Only the product's summation order differs from the BLAS path.
//
// A call runs one or more problems of the same size and agent count (sb_run: one,
// sb_run_batched: a batch): the parallel loop runs over (problem, agent block) tiles, and a
// tile's arithmetic does not depend on the other problems, so each problem of a batch gets
// exactly the states its own call gives.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "../math.h"
#include "sb_discrete.h"
#include "sb_schedule.h"
#include "small_product.h"

namespace sb_native {
namespace sb {
namespace cpu {

// Largest n for this path: J (n^2 scalars) stays in L2 and an agent block's state in L1/L2;
// above it ATen's GEMM is at the machine's peak and its blocking wins
// (bench/bench_sb.py, dense100 vs dense500).
constexpr int64_t kSmallDenseMaxVariables = 256;
// dSB: fraction of a block's signs flipping in one step above which the block product
// recomputes the field instead of column corrections (bench/bench_crossover.py).
constexpr double kSmallFlipCrossover = 0.05;

// One agent block's state, copied out of the (n, agents) tensors into (n, kB) buffers padded
// with zero agents (a zero agent stays zero: no momentum, no field, sign 0), and back.
template <typename scalar_t, int64_t kB>
struct AgentBlock {
  int64_t n, agents, a0 = 0, width = 0;
  std::vector<scalar_t> x, m;

  AgentBlock(int64_t n_, int64_t agents_) : n(n_), agents(agents_), x(n_ * kB), m(n_ * kB) {}

  void load(const scalar_t* xp, const scalar_t* mp, int64_t block) {
    a0 = block * kB;
    width = std::min(kB, agents - a0);
    std::fill(x.begin(), x.end(), scalar_t(0));
    std::fill(m.begin(), m.end(), scalar_t(0));
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(&x[i * kB], xp + i * agents + a0, width * sizeof(scalar_t));
      std::memcpy(&m[i * kB], mp + i * agents + a0, width * sizeof(scalar_t));
    }
  }

  void store(scalar_t* xp, scalar_t* mp) const {
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(xp + i * agents + a0, &x[i * kB], width * sizeof(scalar_t));
      std::memcpy(mp + i * agents + a0, &m[i * kB], width * sizeof(scalar_t));
    }
  }
};

// The second half of a block's last step: m += q F, walls, heating.
template <typename scalar_t, bool kHeated>
inline void finish_block(scalar_t* __restrict__ x, scalar_t* __restrict__ m,
                         const scalar_t* __restrict__ m0, const scalar_t* __restrict__ f,
                         int64_t len, scalar_t q, scalar_t heat) {
  for (int64_t e = 0; e < len; ++e) {
    scalar_t xe = x[e], me = m[e] + q * f[e];
    inelastic_walls(xe, me);
    if (kHeated) me = me + heat * m0[e];
    x[e] = xe;
    m[e] = me;
  }
}

// One problem of a call: its coupling J (n, n), contiguous, and for dSB its columns as rows
// (small_columns); its (n, agents) position and momentum; the coefficient q of J @ f(x) in
// the momentum update; for dSB whether the field may be corrected per flip (J finite:
// all_finite, sb_discrete.h) or must be recomputed every step.
template <typename scalar_t>
struct SmallProblem {
  const scalar_t* J;
  const scalar_t* JT;
  scalar_t* x;
  scalar_t* m;
  scalar_t q;
  bool incremental;
};

// J's columns as contiguous rows, for dSB's flip corrections: J itself when it is
// symmetric, as every coupling the engine runs is (J^T = J), else a transposed copy held in
// `copy` (a direct op call may pass any J). J is a contiguous (n, n) tensor. The test reads J
// once and stops at the first mismatch, where a copy per call read and wrote every coupling
// of a batch (bench/RESULTS.md, issue 21).
template <typename scalar_t>
const scalar_t* small_columns(const at::Tensor& J, at::Tensor& copy) {
  const scalar_t* rows = J.data_ptr<scalar_t>();
  if (is_symmetric(rows, J.size(0))) return rows;
  copy = J.t().contiguous();
  return copy.data_ptr<scalar_t>();
}

// The problem of one (n, n) coupling J; JT holds J's columns for dSB (small_columns), null
// for bSB.
template <typename scalar_t>
SmallProblem<scalar_t> small_problem(const scalar_t* J, const scalar_t* JT, int64_t n,
                                     scalar_t* x, scalar_t* m, double q) {
  return {J, JT, x, m, static_cast<scalar_t>(q), JT != nullptr && all_finite(J, n * n)};
}

// Runs block(problem, agent block, scratch) for every tile, in parallel; the scratch
// buffers (make_scratch()) are made once per thread.
template <typename scalar_t, int64_t kB, typename MakeScratch, typename Block>
void for_each_tile(const std::vector<SmallProblem<scalar_t>>& problems, int64_t agents,
                   MakeScratch make_scratch, Block block) {
  const int64_t blocks = (agents + kB - 1) / kB;
  const int64_t tiles = static_cast<int64_t>(problems.size()) * blocks;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    auto scratch = make_scratch();
    for (int64_t t = t0; t < t1; ++t) block(problems[t / blocks], t % blocks, scratch);
  });
}

// num_steps bSB steps of each problem's (n, agents) state; coefs(k) gives
// {momentum_coef, position_coef} of the k-th step of this call.
template <typename scalar_t, int V, bool kHeated, typename Coefs>
void run_small_dense_ballistic(const std::vector<SmallProblem<scalar_t>>& problems, int64_t n,
                               int64_t agents, int64_t num_steps, double heat_coef,
                               Coefs coefs) {
  constexpr int64_t kB = SmallVec<scalar_t, V>::kBlock;
  const auto cs = step_coefficients<scalar_t>(num_steps, coefs);
  const scalar_t heat = static_cast<scalar_t>(heat_coef);
  const int64_t len = n * kB;
  struct Scratch {
    AgentBlock<scalar_t, kB> blk;
    std::vector<scalar_t> F, M0;
  };
  auto make_scratch = [&] {
    return Scratch{AgentBlock<scalar_t, kB>(n, agents), std::vector<scalar_t>(len),
                   std::vector<scalar_t>(kHeated ? len : 0)};
  };
  for_each_tile<scalar_t, kB>(problems, agents, make_scratch, [&](const SmallProblem<scalar_t>& p,
                                                    int64_t b, Scratch& scratch) {
    AgentBlock<scalar_t, kB>& blk = scratch.blk;
    blk.load(p.x, p.m, b);
    scalar_t* __restrict__ x = blk.x.data();
    scalar_t* __restrict__ m = blk.m.data();
    scalar_t* __restrict__ f = scratch.F.data();
    scalar_t* __restrict__ m0 = scratch.M0.data();
    const scalar_t q = p.q;
    for (int64_t k = 0; k < num_steps; ++k) {
      const scalar_t mc = cs[k].first, pc = cs[k].second;
      if (k == 0) {
        for (int64_t e = 0; e < len; ++e) {
          scalar_t xe = x[e], me = m[e];
          if (kHeated) m0[e] = me;
          kick_drift(xe, me, mc, pc);
          x[e] = xe;
          m[e] = me;
        }
      } else {  // the rest of step k - 1 (its product is in f), then step k's kick-drift
        for (int64_t e = 0; e < len; ++e) {
          scalar_t xe = x[e], me = m[e] + q * f[e];
          inelastic_walls(xe, me);
          if (kHeated) me = me + heat * m0[e];
          if (kHeated) m0[e] = me;
          kick_drift(xe, me, mc, pc);
          x[e] = xe;
          m[e] = me;
        }
      }
      block_product<scalar_t, V>(p.J, x, f, n);
    }
    finish_block<scalar_t, kHeated>(x, m, m0, f, len, q, heat);
    blk.store(p.x, p.m);
  });
}

// One row (kB agents) of a dSB step: [the rest of the previous step,] m0 and kick-drift.
// Returns how many of the row's new signs differ from its old ones, counted in the same
// vectorised loop: a scalar pass over the signs after it was a large part of the step
// (bench/RESULTS.md, issue 21).
template <typename scalar_t, int64_t kB, bool kHeated, bool kFinish>
inline int discrete_row(scalar_t* __restrict__ x, scalar_t* __restrict__ m,
                        scalar_t* __restrict__ m0, const scalar_t* __restrict__ f,
                        const scalar_t* __restrict__ old, scalar_t q, scalar_t heat,
                        scalar_t mc, scalar_t pc) {
  int changed = 0;
  for (int64_t a = 0; a < kB; ++a) {
    scalar_t xe = x[a], me = m[a];
    if (kFinish) {
      me = me + q * f[a];
      inelastic_walls(xe, me);
      if (kHeated) me = me + heat * m0[a];
    }
    if (kHeated) m0[a] = me;
    kick_drift(xe, me, mc, pc);
    x[a] = xe;
    m[a] = me;
    changed += static_cast<int>(sign_of(xe) != old[a]);
  }
  return changed;
}

// Largest field (n x kB scalars) corrected a whole row at a time: it stays in L1 across the
// corrections of a step; a larger one (n = 256 and 64 float32 lanes) went to L2 for each
// flipped row and is corrected lane by lane instead (bench/RESULTS.md, issue 21).
constexpr int64_t kRowCorrectionBytes = 32 * 1024;

// Row i's new signs into s, and the field corrected for them: F[r, a] += J[r, i] * delta[a]
// for every r. Where the field is small, every lane of the row at once (delta is 0 where the
// sign stayed), vectorised over the lanes: per flipped row about what V lane-by-lane
// corrections of n strided terms cost, without the scalar search for the flipped lanes.
// Either way each lane adds its corrections in row order, one term each.
template <typename scalar_t, int V>
inline void correct_row(const scalar_t* __restrict__ x, scalar_t* __restrict__ s,
                        scalar_t* __restrict__ f, const scalar_t* __restrict__ column,
                        int64_t n) {
  using Vec = typename SmallVec<scalar_t, V>::type;
  constexpr int64_t kB = SmallVec<scalar_t, V>::kBlock;
  constexpr int kL = SmallVec<scalar_t, V>::kLanes;
  if (n * kB * static_cast<int64_t>(sizeof(scalar_t)) > kRowCorrectionBytes) {
    for (int64_t a = 0; a < kB; ++a) {
      const scalar_t fresh = sign_of(x[a]);
      if (fresh == s[a]) continue;
      const scalar_t delta = fresh - s[a];
      s[a] = fresh;
      for (int64_t r = 0; r < n; ++r) f[r * kB + a] = f[r * kB + a] + column[r] * delta;
    }
    return;
  }
  scalar_t delta[kB];
  for (int64_t a = 0; a < kB; ++a) {
    const scalar_t fresh = sign_of(x[a]);
    delta[a] = fresh - s[a];
    s[a] = fresh;
  }
  // Written with vector types, as the product is: left to itself the compiler vectorised an
  // AVX2 build's 16-lane rows across r with shuffles, slower than lane-by-lane corrections
  // (bench/RESULTS.md, issue 21).
  Vec d[V];
  for (int v = 0; v < V; ++v) std::memcpy(&d[v], delta + v * kL, sizeof(Vec));
  for (int64_t r = 0; r < n; ++r) {
    const scalar_t w = column[r];
    for (int v = 0; v < V; ++v) {
      Vec fr;
      std::memcpy(&fr, f + r * kB + v * kL, sizeof(Vec));
      fr = fr + w * d[v];
      std::memcpy(f + r * kB + v * kL, &fr, sizeof(Vec));
    }
  }
}

// num_steps dSB steps with the local field F = J @ sign(x) kept per block and corrected for
// the flipped signs (correct_row; J's columns are contiguous rows of p.JT), recomputed with the
// block product when more than flip_fraction of the block's signs flip in one step, and
// exactly at the call's start: the semantics of sb_discrete.h. The field is exact for integer
// weights (|F| < 2^24 in float32 for n <= 256, |J| <= 127), so sb_run_int8 uses this path too
// and its states are unchanged.
template <typename scalar_t, int V, bool kHeated, typename Coefs>
void run_small_dense_discrete(const std::vector<SmallProblem<scalar_t>>& problems, int64_t n,
                              int64_t agents, int64_t num_steps, double heat_coef,
                              double flip_fraction, Coefs coefs) {
  constexpr int64_t kB = SmallVec<scalar_t, V>::kBlock;
  const auto cs = step_coefficients<scalar_t>(num_steps, coefs);
  const scalar_t heat = static_cast<scalar_t>(heat_coef);
  const int64_t len = n * kB;
  const int64_t flip_limit = max_incremental_flips(flip_fraction, len);
  struct Scratch {
    AgentBlock<scalar_t, kB> blk;
    std::vector<scalar_t> F, S, M0;
    std::vector<int> flips;  // per row: how many of its signs flipped this step
  };
  auto make_scratch = [&] {
    return Scratch{AgentBlock<scalar_t, kB>(n, agents), std::vector<scalar_t>(len),
                   std::vector<scalar_t>(len), std::vector<scalar_t>(len),
                   std::vector<int>(n)};
  };
  for_each_tile<scalar_t, kB>(problems, agents, make_scratch, [&](const SmallProblem<scalar_t>& p,
                                                                  int64_t b, Scratch& scratch) {
    AgentBlock<scalar_t, kB>& blk = scratch.blk;
    blk.load(p.x, p.m, b);
    scalar_t* __restrict__ x = blk.x.data();
    scalar_t* __restrict__ m = blk.m.data();
    scalar_t* __restrict__ f = scratch.F.data();
    scalar_t* __restrict__ s = scratch.S.data();
    scalar_t* __restrict__ m0 = scratch.M0.data();
    int* __restrict__ flips = scratch.flips.data();
    const scalar_t q = p.q;
    // A coupling with inf or NaN: every step recomputes (no flip count exceeds -1).
    const int64_t max_flips = p.incremental ? flip_limit : -1;
    for (int64_t e = 0; e < len; ++e) s[e] = sign_of(x[e]);
    block_product<scalar_t, V>(p.J, s, f, n);
    for (int64_t k = 0; k < num_steps; ++k) {
      const scalar_t mc = cs[k].first, pc = cs[k].second;
      int64_t count = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t e = i * kB;
        flips[i] = k > 0 ? discrete_row<scalar_t, kB, kHeated, true>(
                               x + e, m + e, m0 + e, f + e, s + e, q, heat, mc, pc)
                         : discrete_row<scalar_t, kB, kHeated, false>(
                               x + e, m + e, m0 + e, f + e, s + e, q, heat, mc, pc);
        count += flips[i];
      }
      if (count == 0) continue;
      if (count > max_flips) {
        for (int64_t i = 0; i < n; ++i) {
          if (flips[i] == 0) continue;
          for (int64_t a = i * kB; a < (i + 1) * kB; ++a) s[a] = sign_of(x[a]);
        }
        block_product<scalar_t, V>(p.J, s, f, n);
      } else {
        for (int64_t i = 0; i < n; ++i) {
          if (flips[i] > 0) correct_row<scalar_t, V>(x + i * kB, s + i * kB, f, p.JT + i * n, n);
        }
      }
    }
    finish_block<scalar_t, kHeated>(x, m, m0, f, len, q, heat);
    blk.store(p.x, p.m);
  });
}

// Whether narrow blocks (kNarrowVecs) cover the agents with fewer lanes than wide ones:
// padding lanes cost as much as agents, and a wide block of 32 float32 agents on AVX-512 is
// half padding.
template <typename scalar_t>
bool narrow_blocks(int64_t agents) {
  const int64_t wide = SmallVec<scalar_t, kVecsPerBlock>::kBlock;
  const int64_t narrow = SmallVec<scalar_t, kNarrowVecs>::kBlock;
  return (agents + narrow - 1) / narrow * narrow < (agents + wide - 1) / wide * wide;
}

template <typename scalar_t, int V, typename Coefs>
void run_small_dense_blocks(const std::vector<SmallProblem<scalar_t>>& problems, int64_t n,
                            int64_t agents, int64_t num_steps, double heat_coef, bool discrete,
                            Coefs coefs) {
  if (discrete && heat_coef != 0.0) {
    run_small_dense_discrete<scalar_t, V, true>(problems, n, agents, num_steps, heat_coef,
                                                kSmallFlipCrossover, coefs);
  } else if (discrete) {
    run_small_dense_discrete<scalar_t, V, false>(problems, n, agents, num_steps, heat_coef,
                                                 kSmallFlipCrossover, coefs);
  } else if (heat_coef != 0.0) {
    run_small_dense_ballistic<scalar_t, V, true>(problems, n, agents, num_steps, heat_coef,
                                                 coefs);
  } else {
    run_small_dense_ballistic<scalar_t, V, false>(problems, n, agents, num_steps, heat_coef,
                                                  coefs);
  }
}

// One call of the small dense kernel (either variant) on problems of n variables.
template <typename scalar_t, typename Coefs>
void run_small_dense(const std::vector<SmallProblem<scalar_t>>& problems, int64_t n,
                     int64_t agents, int64_t num_steps, double heat_coef, bool discrete,
                     Coefs coefs) {
  if (narrow_blocks<scalar_t>(agents)) {
    run_small_dense_blocks<scalar_t, kNarrowVecs>(problems, n, agents, num_steps, heat_coef,
                                                  discrete, coefs);
  } else {
    run_small_dense_blocks<scalar_t, kVecsPerBlock>(problems, n, agents, num_steps, heat_coef,
                                                    discrete, coefs);
  }
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
