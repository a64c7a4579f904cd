#pragma once
// bSB on a small dense coupling, agent block by agent block. Agents never interact, so each
// thread takes whole blocks of agents and runs every step of the call on them with no
// synchronisation at all: one parallel region per call instead of two per step, and a
// product J @ x of a few dozen agents that stays in L1/L2. At these sizes (n up to a few
// hundred) a BLAS call per step is dominated by its fixed costs and thread hand-offs; the
// register-blocked product below runs at the arithmetic peak instead.
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
#include "fused_product.h"
#include "sb_discrete.h"
#include "sb_schedule.h"

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

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr int kVecsPerBlock = 4;  // 4 x 6 accumulators + 4 loads + 1 broadcast <= 32 registers
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
constexpr int kVecsPerBlock = 2;  // 2 x 6 accumulators + 2 loads + 1 broadcast <= 16 registers
#else
constexpr int kVecBytes = 16;
constexpr int kVecsPerBlock = 2;
#endif
constexpr int kRowsPerTile = 6;

template <typename T>
struct SmallVec {
  typedef T type __attribute__((vector_size(kVecBytes)));
  static constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
  static constexpr int kBlock = kLanes * kVecsPerBlock;  // agents per block
};

// F[i0 + r, :] = sum_j J[i0 + r, j] * X[j, :] for r < R, over one block of agents; X and F
// are (n, kBlock) row-major, J (n, n).
template <typename T, int R>
SBN_FUSED_PRODUCT inline void product_tile(const T* __restrict__ J, const T* __restrict__ X, T* __restrict__ F,
                         int64_t n, int64_t i0) {
  using V = typename SmallVec<T>::type;
  constexpr int kB = SmallVec<T>::kBlock, kL = SmallVec<T>::kLanes;
  V acc[R][kVecsPerBlock];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < kVecsPerBlock; ++v) acc[r][v] = V{} ;
  const T* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = J + (i0 + r) * n;
  for (int64_t j = 0; j < n; ++j) {
    V x[kVecsPerBlock];
    for (int v = 0; v < kVecsPerBlock; ++v) std::memcpy(&x[v], X + j * kB + v * kL, sizeof(V));
    for (int r = 0; r < R; ++r) {
      const T w = rows[r][j];
      for (int v = 0; v < kVecsPerBlock; ++v) acc[r][v] = acc[r][v] + w * x[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < kVecsPerBlock; ++v)
      std::memcpy(F + (i0 + r) * kB + v * kL, &acc[r][v], sizeof(V));
}

template <typename T>
void block_product(const T* J, const T* X, T* F, int64_t n) {
  int64_t i = 0;
  for (; i + kRowsPerTile <= n; i += kRowsPerTile) product_tile<T, kRowsPerTile>(J, X, F, n, i);
  switch (n - i) {
    case 5: product_tile<T, 5>(J, X, F, n, i); break;
    case 4: product_tile<T, 4>(J, X, F, n, i); break;
    case 3: product_tile<T, 3>(J, X, F, n, i); break;
    case 2: product_tile<T, 2>(J, X, F, n, i); break;
    case 1: product_tile<T, 1>(J, X, F, n, i); break;
    default: break;
  }
}

// One agent block's state, copied out of the (n, agents) tensors into (n, kB) buffers padded
// with zero agents (a zero agent stays zero: no momentum, no field, sign 0), and back.
template <typename scalar_t>
struct AgentBlock {
  static constexpr int64_t kB = SmallVec<scalar_t>::kBlock;
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
template <typename scalar_t, typename MakeScratch, typename Block>
void for_each_tile(const std::vector<SmallProblem<scalar_t>>& problems, int64_t agents,
                   MakeScratch make_scratch, Block block) {
  constexpr int64_t kB = SmallVec<scalar_t>::kBlock;
  const int64_t blocks = (agents + kB - 1) / kB;
  const int64_t tiles = static_cast<int64_t>(problems.size()) * blocks;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    auto scratch = make_scratch();
    for (int64_t t = t0; t < t1; ++t) block(problems[t / blocks], t % blocks, scratch);
  });
}

// num_steps bSB steps of each problem's (n, agents) state; coefs(k) gives
// {momentum_coef, position_coef} of the k-th step of this call.
template <typename scalar_t, bool kHeated, typename Coefs>
void run_small_dense_ballistic(const std::vector<SmallProblem<scalar_t>>& problems, int64_t n,
                               int64_t agents, int64_t num_steps, double heat_coef,
                               Coefs coefs) {
  constexpr int64_t kB = SmallVec<scalar_t>::kBlock;
  const auto cs = step_coefficients<scalar_t>(num_steps, coefs);
  const scalar_t heat = static_cast<scalar_t>(heat_coef);
  const int64_t len = n * kB;
  struct Scratch {
    AgentBlock<scalar_t> blk;
    std::vector<scalar_t> F, M0;
  };
  auto make_scratch = [&] {
    return Scratch{AgentBlock<scalar_t>(n, agents), std::vector<scalar_t>(len),
                   std::vector<scalar_t>(kHeated ? len : 0)};
  };
  for_each_tile(problems, agents, make_scratch, [&](const SmallProblem<scalar_t>& p,
                                                    int64_t b, Scratch& scratch) {
    AgentBlock<scalar_t>& blk = scratch.blk;
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
      block_product(p.J, x, f, n);
    }
    finish_block<scalar_t, kHeated>(x, m, m0, f, len, q, heat);
    blk.store(p.x, p.m);
  });
}

// One row (kB agents) of a dSB step: [the rest of the previous step,] m0, kick-drift, and
// the fresh signs, written to fresh for the caller to compare.
template <typename scalar_t, bool kHeated, bool kFinish>
inline void discrete_row(scalar_t* __restrict__ x, scalar_t* __restrict__ m,
                         scalar_t* __restrict__ m0, const scalar_t* __restrict__ f,
                         scalar_t* __restrict__ fresh, scalar_t q, scalar_t heat, scalar_t mc,
                         scalar_t pc) {
  for (int64_t a = 0; a < SmallVec<scalar_t>::kBlock; ++a) {
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
    fresh[a] = sign_of(xe);
  }
}

// num_steps dSB steps with the local field F = J @ sign(x) kept per block and corrected per
// sign flip (F[:, a] += J[:, i] * delta, a contiguous row of J^T), recomputed with the block
// product when more than flip_fraction of the block's signs flip in one step, and exactly at
// the call's start: the semantics of sb_discrete.h. p.JT holds J's columns. The field is
// exact for integer weights (|F| < 2^24 in float32 for n <= 256, |J| <= 127), so sb_run_int8
// uses this path too and its states are unchanged.
template <typename scalar_t, bool kHeated, typename Coefs>
void run_small_dense_discrete(const std::vector<SmallProblem<scalar_t>>& problems, int64_t n,
                              int64_t agents, int64_t num_steps, double heat_coef,
                              double flip_fraction, Coefs coefs) {
  constexpr int64_t kB = SmallVec<scalar_t>::kBlock;
  const auto cs = step_coefficients<scalar_t>(num_steps, coefs);
  const scalar_t heat = static_cast<scalar_t>(heat_coef);
  const int64_t len = n * kB;
  const int64_t flip_limit = max_incremental_flips(flip_fraction, len);
  struct Scratch {
    AgentBlock<scalar_t> blk;
    std::vector<scalar_t> F, S, M0;
    std::vector<int64_t> flips;  // element index e = i * kB + a of each flipped sign
  };
  auto make_scratch = [&] {
    Scratch scratch{AgentBlock<scalar_t>(n, agents), std::vector<scalar_t>(len),
                    std::vector<scalar_t>(len), std::vector<scalar_t>(len), {}};
    scratch.flips.reserve(len);
    return scratch;
  };
  for_each_tile(problems, agents, make_scratch, [&](const SmallProblem<scalar_t>& p,
                                                    int64_t b, Scratch& scratch) {
    AgentBlock<scalar_t>& blk = scratch.blk;
    std::vector<int64_t>& flips = scratch.flips;
    blk.load(p.x, p.m, b);
    scalar_t* __restrict__ x = blk.x.data();
    scalar_t* __restrict__ m = blk.m.data();
    scalar_t* __restrict__ f = scratch.F.data();
    scalar_t* __restrict__ s = scratch.S.data();
    scalar_t* __restrict__ m0 = scratch.M0.data();
    const scalar_t q = p.q;
    // A coupling with inf or NaN: every step recomputes (no flip count exceeds -1).
    const int64_t max_flips = p.incremental ? flip_limit : -1;
    for (int64_t e = 0; e < len; ++e) s[e] = sign_of(x[e]);
    block_product(p.J, s, f, n);
    for (int64_t k = 0; k < num_steps; ++k) {
      const scalar_t mc = cs[k].first, pc = cs[k].second;
      flips.clear();
      for (int64_t i = 0; i < n; ++i) {  // row by row: a vectorised update, then its flips
        scalar_t fresh[kB];
        if (k > 0) {
          discrete_row<scalar_t, kHeated, true>(x + i * kB, m + i * kB, m0 + i * kB,
                                                f + i * kB, fresh, q, heat, mc, pc);
        } else {
          discrete_row<scalar_t, kHeated, false>(x + i * kB, m + i * kB, m0 + i * kB,
                                                 f + i * kB, fresh, q, heat, mc, pc);
        }
        const scalar_t* old = s + i * kB;
        bool changed = false;
        for (int64_t a = 0; a < kB; ++a) changed |= fresh[a] != old[a];
        if (!changed) continue;
        for (int64_t a = 0; a < kB; ++a) {
          if (fresh[a] != old[a]) flips.push_back(i * kB + a);
        }
      }
      const auto count = static_cast<int64_t>(flips.size());
      if (count > max_flips) {
        for (int64_t e : flips) s[e] = sign_of(x[e]);
        block_product(p.J, s, f, n);
      } else {
        for (int64_t e : flips) {
          const scalar_t fresh = sign_of(x[e]);
          const scalar_t delta = fresh - s[e];
          s[e] = fresh;
          const int64_t i = e / kB, a = e % kB;
          const scalar_t* __restrict__ column = p.JT + i * n;  // J[:, i]
          for (int64_t r = 0; r < n; ++r) f[r * kB + a] = f[r * kB + a] + column[r] * delta;
        }
      }
    }
    finish_block<scalar_t, kHeated>(x, m, m0, f, len, q, heat);
    blk.store(p.x, p.m);
  });
}

// One call of the small dense kernel (either variant) on problems of n variables.
template <typename scalar_t, typename Coefs>
void run_small_dense(const std::vector<SmallProblem<scalar_t>>& problems, int64_t n,
                     int64_t agents, int64_t num_steps, double heat_coef, bool discrete,
                     Coefs coefs) {
  if (discrete && heat_coef != 0.0) {
    run_small_dense_discrete<scalar_t, true>(problems, n, agents, num_steps, heat_coef,
                                             kSmallFlipCrossover, coefs);
  } else if (discrete) {
    run_small_dense_discrete<scalar_t, false>(problems, n, agents, num_steps, heat_coef,
                                              kSmallFlipCrossover, coefs);
  } else if (heat_coef != 0.0) {
    run_small_dense_ballistic<scalar_t, true>(problems, n, agents, num_steps, heat_coef, coefs);
  } else {
    run_small_dense_ballistic<scalar_t, false>(problems, n, agents, num_steps, heat_coef, coefs);
  }
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
