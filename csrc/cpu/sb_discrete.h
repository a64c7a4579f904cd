#pragma once
// dSB with an incremental local field. dSB couples through F = J @ sign(x); late in a run
// only a few signs flip per step, so F is kept and corrected by one column of J per flip
// (F[:, a] += J[:, i] * delta) instead of being recomputed with a full product. When a
// step has many flips (above the coupling's measured crossover) F is recomputed instead.
// Every call starts from an exact recompute, and calls end at every sampling point, so any
// rounding drift (non-integer weights) is bounded by one sampling period; with integer
// weights the incremental field is exact.
//
// The signs and the field have their own types: scalar_t for a float coupling, int8 signs
// and an int32 field for an integer coupling J = scale * K (exact, and the recompute is
// an int8 GEMM). The momentum then receives (q * scale) * F.
//
// A step, as in simulated-bifurcation 2.0.0: m0 = m; kick-drift; F = J @ sign(x);
// m += q * F; walls; m += heat * m0. Step k's second half is fused with step k + 1's first
// half, and the sign comparison that finds the flips rides along in the same pass.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include "../sb_math.h"
#include "parallel.h"

namespace sb_native {
namespace cpu {

// The flip fraction above which a step recomputes F instead of correcting it: the kernel's
// measured default, or SB_NATIVE_FLIP_CROSSOVER (a fraction) for bench/bench_crossover.py,
// which sweeps it to measure the defaults.
inline int64_t max_incremental_flips(double default_fraction, int64_t numel) {
  const char* value = std::getenv("SB_NATIVE_FLIP_CROSSOVER");
  const double fraction = value != nullptr ? std::atof(value) : default_fraction;
  return static_cast<int64_t>(fraction * static_cast<double>(numel));
}

template <typename field_t>
struct Flip {
  int64_t spin;
  int64_t agent;
  field_t delta;  // new sign - old sign: +-1 or +-2
};

template <typename field_t>
using FlipChunks = std::vector<std::vector<Flip<field_t>>>;

template <typename scalar_t, typename sign_t, typename field_t>
struct DiscreteState {
  at::Tensor signs_tensor;  // the tensors behind signs and field, for products through ATen
  at::Tensor field_tensor;
  scalar_t* x;
  scalar_t* m;
  scalar_t* m0;     // nullptr when not heated
  sign_t* signs;    // sign(x) that F currently corresponds to
  field_t* field;   // F = J @ signs (in units of the coupling's scale)
  int64_t variables;
  int64_t agents;
};

// Elements per chunk of the flip-collecting pass; chunks keep their flips in order.
constexpr int64_t kFlipChunk = 8192;
// Elements updated per vectorised block before its signs are compared with the old ones.
constexpr int64_t kSignBlock = 64;

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

// kFinish: apply the previous step's second half first. kStart: then begin the next step
// and collect the sign flips. The update of a block is branch-free (vectorised); only a
// block whose signs changed is scanned element by element.
template <typename scalar_t, typename sign_t, typename field_t, bool kHeated, bool kFinish,
          bool kStart>
void discrete_pass(const DiscreteState<scalar_t, sign_t, field_t>& s, scalar_t q,
                   scalar_t heat, scalar_t momentum_coef, scalar_t position_coef,
                   FlipChunks<field_t>& chunks) {
  const int64_t numel = s.variables * s.agents;
  const int64_t count = (numel + kFlipChunk - 1) / kFlipChunk;
  chunks.resize(count);
  at::parallel_for(0, count, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      auto& flips = chunks[c];
      flips.clear();
      const int64_t end = std::min(numel, (c + 1) * kFlipChunk);
      for (int64_t b0 = c * kFlipChunk; b0 < end; b0 += kSignBlock) {
        const int64_t len = std::min(kSignBlock, end - b0);
        sign_t fresh[kSignBlock];
        update_block<scalar_t, sign_t, field_t, kHeated, kFinish, kStart>(
            s.x + b0, s.m + b0, kHeated ? s.m0 + b0 : nullptr, s.field + b0, fresh, len, q, heat,
            momentum_coef, position_coef);
        if (!kStart) continue;
        sign_t* old = s.signs + b0;
        bool changed = false;
        for (int64_t e = 0; e < len; ++e) changed |= fresh[e] != old[e];
        if (!changed) continue;
        for (int64_t e = 0; e < len; ++e) {
          if (fresh[e] == old[e]) continue;
          flips.push_back({(b0 + e) / s.agents, (b0 + e) % s.agents,
                           static_cast<field_t>(fresh[e]) - static_cast<field_t>(old[e])});
          old[e] = fresh[e];
        }
      }
    }
  });
}

// Runs num_steps dSB steps. Field provides recompute(signs_tensor, field_tensor)
// (F = J @ signs), apply(flip chunks, flip count, field) (F += J[:, i] * delta per flip)
// and max_incremental_flips(), the flip count above which a recompute is cheaper.
// q is the coefficient of F in the momentum update (the coupling's scale folded in).
template <typename scalar_t, typename sign_t, typename field_t, bool kHeated, typename Coefs,
          typename Field>
void run_discrete(const DiscreteState<scalar_t, sign_t, field_t>& s, int64_t num_steps,
                  double q, double heat, Coefs coefs, Field& field) {
  const int64_t numel = s.variables * s.agents;
  at::parallel_for(0, numel, at::internal::GRAIN_SIZE, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) s.signs[i] = static_cast<sign_t>(sign_of(s.x[i]));
  });
  field.recompute(s.signs_tensor, s.field_tensor);
  FlipChunks<field_t> chunks;
  const scalar_t qs = static_cast<scalar_t>(q);
  const scalar_t hs = static_cast<scalar_t>(heat);
  for (int64_t k = 0; k < num_steps; ++k) {
    const auto c = coefs(k);
    const scalar_t mc = static_cast<scalar_t>(c.first);
    const scalar_t pc = static_cast<scalar_t>(c.second);
    if (k == 0) {
      discrete_pass<scalar_t, sign_t, field_t, kHeated, false, true>(s, qs, hs, mc, pc, chunks);
    } else {
      discrete_pass<scalar_t, sign_t, field_t, kHeated, true, true>(s, qs, hs, mc, pc, chunks);
    }
    int64_t flips = 0;
    for (const auto& chunk : chunks) flips += static_cast<int64_t>(chunk.size());
    if (flips > field.max_incremental_flips()) {
      field.recompute(s.signs_tensor, s.field_tensor);
    } else if (flips > 0) {
      field.apply(chunks, flips, s.field);
    }
  }
  discrete_pass<scalar_t, sign_t, field_t, kHeated, true, false>(s, qs, hs, scalar_t(0),
                                                                scalar_t(0), chunks);
}

// Allocates the sign/field buffers (sign_dtype, field_dtype) and the heating buffer, then
// runs the variant.
template <typename scalar_t, typename sign_t, typename field_t, typename Coefs, typename Field>
void run_discrete_variant(at::Tensor& position, at::Tensor& momentum, int64_t num_steps,
                          double q, double heat, at::ScalarType sign_dtype,
                          at::ScalarType field_dtype, Coefs coefs, Field& field) {
  const bool heated = heat != 0.0;
  at::Tensor signs = at::empty(position.sizes(), position.options().dtype(sign_dtype));
  at::Tensor f = at::empty(position.sizes(), position.options().dtype(field_dtype));
  at::Tensor m0 = heated ? at::empty_like(momentum) : at::Tensor();
  DiscreteState<scalar_t, sign_t, field_t> s{
      signs, f, position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(),
      heated ? m0.data_ptr<scalar_t>() : nullptr, signs.data_ptr<sign_t>(),
      f.data_ptr<field_t>(), position.size(0), position.size(1)};
  if (heated) run_discrete<scalar_t, sign_t, field_t, true>(s, num_steps, q, heat, coefs, field);
  else run_discrete<scalar_t, sign_t, field_t, false>(s, num_steps, q, heat, coefs, field);
}

// F[r, a] += J[r, i] * delta for every flip (i, a) of a dense row-major J: parallel over
// rows r, so each thread reads one row of J and writes one row of F.
template <typename coupling_t, typename field_t>
void apply_dense_flips(const coupling_t* J, int64_t n, int64_t agents,
                       const FlipChunks<field_t>& chunks, int64_t flips, field_t* field) {
  at::parallel_for(0, n, work_grain(flips), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const coupling_t* jr = J + r * n;
      field_t* fr = field + r * agents;
      for (const auto& chunk : chunks) {
        for (const auto& flip : chunk) {
          fr[flip.agent] += static_cast<field_t>(jr[flip.spin]) * flip.delta;
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace sb_native
