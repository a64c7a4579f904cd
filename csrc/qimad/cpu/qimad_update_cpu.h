#pragma once
// The CPU swarm update behind qimad_update, callable without the dispatcher: the op entry
// (qimad_update_cpu.cpp) and the fused step (qimad_step_cpu.cpp) both run it on arguments
// they have checked. One pass over the updated agents of a flat (agents, parameters) swarm:
// RMSProp state, RMSProp step, attraction to the best-known weights, fidelity-weighted
// communication and tunnelling jumps. Synchronous: the communication input W @ theta is taken
// before any position moves, so every agent reads the positions from before this step whatever
// the agent order. Sequential: each updated agent's input is taken just before it moves, so it
// reads the agents moved before it. Columns are independent either way (an agent's jump scale
// reads only its own row, which nothing moves before its turn), so both run column-parallel.

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "../math.h"
#include "../mix.h"

namespace sb_native {
namespace qimad {
namespace cpu {

// The per-coordinate update runs a SIMD vector of coordinates at a time on GCC/Clang vector
// types, through the ../math.h functions themselves, so it rounds exactly as the scalar code
// (and the CUDA kernel) does. Only the square root needs the target's instruction: a loop
// calling std::sqrt is never vectorised under GCC's default -fmath-errno (the call may set
// errno). Taking the root inside the same pass, not as a block of roots first, lets the divider
// (the root and the RMSProp division) overlap the other arithmetic, which the update gains
// from (bench/RESULTS.md).
#if defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

template <typename T>
struct Simd {
  typedef T vec __attribute__((vector_size(kVectorBytes)));
  static constexpr int64_t lanes = kVectorBytes / sizeof(T);
  static vec load(const T* p) {
    vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, const vec& v) { std::memcpy(p, &v, sizeof v); }
  static vec sqrt(vec v);  // correctly rounded, lane by lane
};

template <>
inline Simd<float>::vec Simd<float>::sqrt(vec v) {
#if defined(__AVX__)
  return (vec)_mm256_sqrt_ps((__m256)v);
#elif defined(__SSE2__)
  return (vec)_mm_sqrt_ps((__m128)v);
#elif defined(__aarch64__)
  return (vec)vsqrtq_f32((float32x4_t)v);
#else
  for (int64_t l = 0; l < lanes; ++l) v[l] = std::sqrt(v[l]);
  return v;
#endif
}

template <>
inline Simd<double>::vec Simd<double>::sqrt(vec v) {
#if defined(__AVX__)
  return (vec)_mm256_sqrt_pd((__m256d)v);
#elif defined(__SSE2__)
  return (vec)_mm_sqrt_pd((__m128d)v);
#elif defined(__aarch64__)
  return (vec)vsqrtq_f64((float64x2_t)v);
#else
  for (int64_t l = 0; l < lanes; ++l) v[l] = std::sqrt(v[l]);
  return v;
#endif
}

// One agent's coordinates [0, len) of a block: second moment, its root, the displacement.
template <typename T>
void update_run(T* __restrict__ x, T* __restrict__ v, const T* __restrict__ g,
                const T* __restrict__ best, const T* __restrict__ mix, int64_t len, T wsum,
                T eta, T gamma, T attract, T decay, T eps) {
  using S = Simd<T>;
  using V = typename S::vec;
  const V decay_v = V{} + decay, wsum_v = V{} + wsum, eta_v = V{} + eta, gamma_v = V{} + gamma,
          attract_v = V{} + attract, eps_v = V{} + eps;
  int64_t c = 0;
  for (; c + S::lanes <= len; c += S::lanes) {
    const V xc = S::load(x + c), gc = S::load(g + c);
    const V vc = qimad::square_avg(S::load(v + c), gc, decay_v);
    S::store(v + c, vc);
    S::store(x + c, xc + qimad::swarm_delta(xc, gc, S::sqrt(vc), S::load(best + c),
                                            S::load(mix + c), wsum_v, eta_v, gamma_v,
                                            attract_v, eps_v));
  }
  for (; c < len; ++c) {  // the tail: the same functions on scalars
    v[c] = qimad::square_avg(v[c], g[c], decay);
    x[c] = x[c] + qimad::swarm_delta(x[c], g[c], std::sqrt(v[c]), best[c], mix[c], wsum, eta,
                                     gamma, attract, eps);
  }
}

// Swarms up to this size take the communication input W @ theta block by block inside the
// fused pass (N multiply-adds per coordinate, on L1-resident data); larger ones, where the
// product dominates, take it from one BLAS GEMM into a (rows, parameters) buffer first. A
// sequential update always takes it in the fused pass: each row's input depends on the rows
// moved before it, which rules out one GEMM.
constexpr int64_t kFusedGemmMaxAgents = 32;

// out[0, len) = sum_j w[j] y[j * p + c] over the n agents, with fused multiply-adds in agent
// order, as BLAS (the large-swarm path, the mirror) and cuBLAS take the product; the
// per-coordinate update stays unfused (-ffp-contract=off).
template <typename T>
void mix_run(T* __restrict__ out, const T* w, const T* y, int64_t n, int64_t p, int64_t len) {
  std::fill(out, out + len, T(0));
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {  // four agents per pass over out
    const T* __restrict__ y0 = y + j * p;
    const T* __restrict__ y1 = y0 + p;
    const T* __restrict__ y2 = y1 + p;
    const T* __restrict__ y3 = y2 + p;
    for (int64_t c = 0; c < len; ++c) {
      const T acc = std::fma(w[j + 1], y1[c], std::fma(w[j], y0[c], out[c]));
      out[c] = std::fma(w[j + 3], y3[c], std::fma(w[j + 2], y2[c], acc));
    }
  }
  for (; j < n; ++j) {
    const T* __restrict__ y0 = y + j * p;
    for (int64_t c = 0; c < len; ++c) out[c] = std::fma(w[j], y0[c], out[c]);
  }
}

// One agent's block after its update: the jump (rare: a separate pass keeps the main loop
// branch-free), then the clip to the box. Without bounds (lo null) only the jump, at the
// parameter tensor's scale sc; with them a column of finite span jumps at its bound scale.
template <typename T>
void finish_run(T* __restrict__ x, const T* u, const T* lo, const T* hi, int64_t len, T sc,
                T temperature) {
  if (u != nullptr) {
    for (int64_t c = 0; c < len; ++c) {
      const T scale = lo == nullptr ? sc : qimad::box_jump_scale(lo[c], hi[c], sc, temperature);
      x[c] = x[c] + qimad::jump(u[c], scale);
    }
  }
  if (lo != nullptr) {
    for (int64_t c = 0; c < len; ++c) x[c] = qimad::clip(x[c], lo[c], hi[c]);
  }
}

// rows: the updated agents, strictly increasing; tunnel_of[k]: the tunnel_noise row of rows[k],
// or -1; segments, seg_eta, seg_gamma and seg_w as qimad_update takes them (CPU); bounds:
// undefined, or the (2, parameters) box [lower; upper] every updated row is clipped to;
// square_avg and grad: the swarm's rows from first on (qimad_update's sharded swarm).
inline void update_swarm(at::Tensor& theta, at::Tensor& square_avg, const at::Tensor& grad,
                         const at::Tensor& best, const at::Tensor& W, at::IntArrayRef rows,
                         const at::Tensor& attract, const at::Tensor& segments,
                         const at::Tensor& seg_eta, const at::Tensor& seg_gamma,
                         const at::Tensor& seg_w, at::IntArrayRef tunnel_rows,
                         const std::vector<int64_t>& tunnel_of, const at::Tensor& tunnel_noise,
                         double temperature, double rms_decay, double eps, bool sequential,
                         const at::Tensor& bounds, int64_t first) {
  const int64_t n = theta.size(0), p = theta.size(1), nr = static_cast<int64_t>(rows.size());
  const int64_t ns = segments.numel() - 1, nt = static_cast<int64_t>(tunnel_rows.size());
  const int64_t mats = W.size(0);
  if (nr == 0 || p == 0) return;
  // With a large swarm W @ theta for the updated rows, taken now, before any position moves.
  // The synchronous fused path reads each column block of every agent before it writes any of
  // them, so it too sees only positions from before the step.
  const bool fused_gemm = sequential || n <= kFusedGemmMaxAgents;
  const at::Tensor mix =
      fused_gemm ? at::Tensor()
                 : communication_input(theta, W.index_select(1, at::tensor(rows, at::kLong)),
                                       segments.data_ptr<int64_t>(), seg_w.data_ptr<int64_t>(),
                                       seg_w.numel());

  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "qimad_update_cpu", [&] {
    using acc_t = at::acc_type<scalar_t, /*is_cuda=*/false>;
    scalar_t* th = theta.data_ptr<scalar_t>();
    scalar_t* sq = square_avg.data_ptr<scalar_t>();
    const scalar_t* gr = grad.data_ptr<scalar_t>();
    const scalar_t* bst = best.data_ptr<scalar_t>();
    const scalar_t* wm = W.data_ptr<scalar_t>();
    const scalar_t* mx = fused_gemm ? nullptr : mix.data_ptr<scalar_t>();
    // The fidelity matrices' row sums, (matrices, agents), each summed in agent order.
    std::vector<scalar_t> wsum(mats * n, scalar_t(0));
    for (int64_t q = 0; q < mats * n; ++q) {
      for (int64_t j = 0; j < n; ++j) wsum[q] += wm[q * n + j];
    }
    const scalar_t* ws = wsum.data();
    const scalar_t* att = attract.data_ptr<scalar_t>();
    const scalar_t* eta = seg_eta.data_ptr<scalar_t>();
    const scalar_t* gam = seg_gamma.data_ptr<scalar_t>();
    const scalar_t* noise = tunnel_noise.data_ptr<scalar_t>();
    const int64_t* r = rows.data();
    const int64_t* seg = segments.data_ptr<int64_t>();
    const int64_t* sw = seg_w.data_ptr<int64_t>();
    const int64_t* tr = tunnel_rows.data();
    const auto decay = static_cast<scalar_t>(rms_decay);
    const auto e = static_cast<scalar_t>(eps);
    const auto temp = static_cast<scalar_t>(temperature);
    const scalar_t* lower = bounds.defined() ? bounds.data_ptr<scalar_t>() : nullptr;
    const scalar_t* upper = bounds.defined() ? lower + p : nullptr;

    // Jump scale of each (tunnelling agent, parameter tensor), from its pre-step position.
    std::vector<scalar_t> scale(nt * ns, scalar_t(0));
    at::parallel_for(0, nt * ns, 1, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t t = q / ns, s = q % ns, width = seg[s + 1] - seg[s];
        if (width == 0) continue;
        const scalar_t* x = th + tr[t] * p + seg[s];
        acc_t sum = 0;
        for (int64_t c = 0; c < width; ++c) sum += std::abs(static_cast<acc_t>(x[c]));
        scale[q] = qimad::jump_scale(static_cast<scalar_t>(sum / width), temp);
      }
    });

    // Column chunks in parallel, walked in blocks small enough for L1 that never straddle a
    // parameter tensor (eta, gamma and the fidelity matrix are constant inside a block).
    constexpr int64_t kBlock = 256;
    const int64_t grain = std::max<int64_t>(kBlock, 32768 / nr);
    at::parallel_for(0, p, grain, [&](int64_t c0, int64_t c1) {
      std::vector<scalar_t> mix_block(fused_gemm ? nr * kBlock : 0);
      int64_t s = std::upper_bound(seg, seg + ns + 1, c0) - seg - 1;
      for (int64_t a = c0; a < c1; ++s) {
        const int64_t b = std::min(c1, seg[s + 1]);
        const scalar_t* W_s = wm + sw[s] * n * n;
        for (int64_t blk = a; blk < b; blk += kBlock) {
          const int64_t len = std::min(kBlock, b - blk);
          // mix_block[k] = sum_j W_s[r[k], j] theta[j, block]: for all k first (synchronous),
          // or each just before row k moves (sequential).
          if (fused_gemm && !sequential) {
            for (int64_t k = 0; k < nr; ++k) {
              mix_run(mix_block.data() + k * kBlock, W_s + r[k] * n, th + blk, n, p, len);
            }
          }
          for (int64_t k = 0; k < nr; ++k) {
            const int64_t i = r[k];
            if (sequential) {  // before x below: its row is read here, then written through x
              mix_run(mix_block.data() + k * kBlock, W_s + i * n, th + blk, n, p, len);
            }
            scalar_t* __restrict__ x = th + i * p + blk;
            scalar_t* __restrict__ v = sq + (i - first) * p + blk;
            const scalar_t* __restrict__ g = gr + (i - first) * p + blk;
            const scalar_t* __restrict__ bs = bst + blk;
            const scalar_t* __restrict__ m =
                fused_gemm ? mix_block.data() + k * kBlock : mx + k * p + blk;
            const scalar_t wsk = ws[sw[s] * n + i], ai = att[i], es = eta[s], gs = gam[s];
            update_run(x, v, g, bs, m, len, wsk, es, gs, ai, decay, e);
            const int64_t t = tunnel_of[k];
            if (t >= 0 || lower != nullptr) {
              finish_run(x, t >= 0 ? noise + t * p + blk : nullptr,
                         lower == nullptr ? nullptr : lower + blk,
                         upper == nullptr ? nullptr : upper + blk, len,
                         t >= 0 ? scale[t * ns + s] : scalar_t(0), temp);
            }
          }
        }
        a = std::max(a, b);
      }
    });
  });
}

}  // namespace cpu
}  // namespace qimad
}  // namespace sb_native
