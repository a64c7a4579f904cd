#pragma once
// bSB on a small dense coupling, agent block by agent block. Agents never interact, so each
// thread takes whole blocks of agents and runs every step of the call on them with no
// synchronisation at all: one parallel region per call instead of two per step, and a
// product J @ x of a few dozen agents that stays in L1/L2. At these sizes (n up to a few
// hundred) a BLAS call per step is dominated by its fixed costs and thread hand-offs; the
// register-blocked product below runs at the arithmetic peak instead.
//
// Arithmetic: F = sum_j J[i, j] x[j] summed in j order with separate multiply and add (no
// FMA, like the rest of the build), then m += q * F and the shared per-element math of
// csrc/sb/math.h in the order of sb_loop.h. Only the summation order of the product differs
// from the BLAS path.

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
inline void product_tile(const T* __restrict__ J, const T* __restrict__ X, T* __restrict__ F,
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

// num_steps bSB steps of the (n, agents) state with the dense coupling J (contiguous);
// coefs(k) gives {momentum_coef, position_coef} of the k-th step of this call.
template <typename scalar_t, bool kHeated, typename Coefs>
void run_small_dense_ballistic(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                               int64_t num_steps, double quadratic_coef, double heat_coef,
                               Coefs coefs) {
  constexpr int64_t kB = SmallVec<scalar_t>::kBlock;
  const int64_t n = position.size(0), agents = position.size(1);
  const auto cs = step_coefficients<scalar_t>(num_steps, coefs);
  const scalar_t q = static_cast<scalar_t>(quadratic_coef);
  const scalar_t heat = static_cast<scalar_t>(heat_coef);
  const scalar_t* Jp = J.data_ptr<scalar_t>();
  scalar_t* xp = position.data_ptr<scalar_t>();
  scalar_t* mp = momentum.data_ptr<scalar_t>();

  at::parallel_for(0, (agents + kB - 1) / kB, 1, [&](int64_t b0, int64_t b1) {
    AgentBlock<scalar_t> blk(n, agents);
    std::vector<scalar_t> F(n * kB), M0(kHeated ? n * kB : 0);
    const int64_t len = n * kB;
    for (int64_t b = b0; b < b1; ++b) {
      blk.load(xp, mp, b);
      scalar_t* __restrict__ x = blk.x.data();
      scalar_t* __restrict__ m = blk.m.data();
      scalar_t* __restrict__ f = F.data();
      scalar_t* __restrict__ m0 = M0.data();
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
        block_product(Jp, x, f, n);
      }
      finish_block<scalar_t, kHeated>(x, m, m0, f, len, q, heat);
      blk.store(xp, mp);
    }
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
// the call's start: the semantics of sb_discrete.h. JT is J transposed, contiguous. The
// field is exact for integer weights (|F| < 2^24 in float32 for n <= 256, |J| <= 127), so
// sb_run_int8 uses this path too and its states are unchanged.
template <typename scalar_t, bool kHeated, typename Coefs>
void run_small_dense_discrete(const at::Tensor& J, const at::Tensor& JT, at::Tensor& position,
                              at::Tensor& momentum, int64_t num_steps, double quadratic_coef,
                              double heat_coef, double flip_fraction, Coefs coefs) {
  constexpr int64_t kB = SmallVec<scalar_t>::kBlock;
  const int64_t n = position.size(0), agents = position.size(1);
  const auto cs = step_coefficients<scalar_t>(num_steps, coefs);
  const scalar_t q = static_cast<scalar_t>(quadratic_coef);
  const scalar_t heat = static_cast<scalar_t>(heat_coef);
  const scalar_t* Jp = J.data_ptr<scalar_t>();
  const scalar_t* JTp = JT.data_ptr<scalar_t>();
  scalar_t* xp = position.data_ptr<scalar_t>();
  scalar_t* mp = momentum.data_ptr<scalar_t>();
  const int64_t len = n * kB;
  const int64_t max_flips = max_incremental_flips(flip_fraction, len);

  at::parallel_for(0, (agents + kB - 1) / kB, 1, [&](int64_t b0, int64_t b1) {
    AgentBlock<scalar_t> blk(n, agents);
    std::vector<scalar_t> F(len), S(len), M0(len);
    std::vector<int64_t> flips;  // element index e = i * kB + a of each flipped sign
    flips.reserve(len);
    for (int64_t b = b0; b < b1; ++b) {
      blk.load(xp, mp, b);
      scalar_t* __restrict__ x = blk.x.data();
      scalar_t* __restrict__ m = blk.m.data();
      scalar_t* __restrict__ f = F.data();
      scalar_t* __restrict__ s = S.data();
      scalar_t* __restrict__ m0 = M0.data();
      for (int64_t e = 0; e < len; ++e) s[e] = sign_of(x[e]);
      block_product(Jp, s, f, n);
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
          block_product(Jp, s, f, n);
        } else {
          for (int64_t e : flips) {
            const scalar_t fresh = sign_of(x[e]);
            const scalar_t delta = fresh - s[e];
            s[e] = fresh;
            const int64_t i = e / kB, a = e % kB;
            const scalar_t* __restrict__ column = JTp + i * n;  // J[:, i]
            for (int64_t r = 0; r < n; ++r) f[r * kB + a] = f[r * kB + a] + column[r] * delta;
          }
        }
      }
      finish_block<scalar_t, kHeated>(x, m, m0, f, len, q, heat);
      blk.store(xp, mp);
    }
  });
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
