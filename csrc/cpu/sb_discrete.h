#pragma once
// dSB with an incremental local field. dSB couples through F = J @ sign(x); late in a run
// only a few signs flip per step, so F is kept and corrected by one column of J per flip
// (F[:, a] += J[:, i] * delta) instead of being recomputed with a full product. When a
// step has many flips (above the coupling's measured crossover) F is recomputed instead.
// Every call starts from an exact recompute, and calls end at every sampling point, so any
// rounding drift (non-integer weights) is bounded by one sampling period; with integer
// weights the incremental field is exact.
//
// A step, as in simulated-bifurcation 2.0.0: m0 = m; kick-drift; F = J @ sign(x);
// m += q * F; walls; m += heat * m0. Step k's second half is fused with step k + 1's first
// half, and the sign comparison that finds the flips rides along in the same pass.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

#include "../sb_math.h"

namespace sb_native {
namespace cpu {

template <typename scalar_t>
struct Flip {
  int64_t spin;
  int64_t agent;
  scalar_t delta;  // new sign - old sign: +-1 or +-2
};

template <typename scalar_t>
struct DiscreteState {
  at::Tensor signs_tensor;  // the tensors behind signs and field, for products through ATen
  at::Tensor field_tensor;
  scalar_t* x;
  scalar_t* m;
  scalar_t* m0;      // nullptr when not heated
  scalar_t* signs;   // sign(x) that F currently corresponds to
  scalar_t* field;   // F = J @ signs
  int64_t variables;
  int64_t agents;
};

// Elements per chunk of the flip-collecting pass; chunks keep their flips in order.
constexpr int64_t kFlipChunk = 8192;

// finish: apply the previous step's second half first. start: then begin the next step.
template <typename scalar_t, bool kHeated>
void discrete_pass(const DiscreteState<scalar_t>& s, bool finish, bool start, scalar_t q,
                   scalar_t heat, scalar_t momentum_coef, scalar_t position_coef,
                   std::vector<std::vector<Flip<scalar_t>>>& chunks) {
  const int64_t numel = s.variables * s.agents;
  const int64_t count = (numel + kFlipChunk - 1) / kFlipChunk;
  chunks.resize(count);
  at::parallel_for(0, count, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      auto& flips = chunks[c];
      flips.clear();
      const int64_t end = std::min(numel, (c + 1) * kFlipChunk);
      for (int64_t e = c * kFlipChunk; e < end; ++e) {
        scalar_t x = s.x[e];
        scalar_t m = s.m[e];
        if (finish) {
          m = m + q * s.field[e];
          inelastic_walls(x, m);
          if (kHeated) m = m + heat * s.m0[e];
        }
        if (start) {
          if (kHeated) s.m0[e] = m;
          kick_drift(x, m, momentum_coef, position_coef);
          const scalar_t sign = sign_of(x);
          if (sign != s.signs[e]) {
            flips.push_back({e / s.agents, e % s.agents, sign - s.signs[e]});
            s.signs[e] = sign;
          }
        }
        s.x[e] = x;
        s.m[e] = m;
      }
    }
  });
}

// Runs num_steps dSB steps. Field provides recompute(signs_tensor, field_tensor)
// (F = J @ signs), apply(flip chunks, flip count, field) (F += J[:, i] * delta per flip) and
// max_incremental_flips(), the flip count above which a recompute is cheaper.
template <typename scalar_t, bool kHeated, typename Coefs, typename Field>
void run_discrete(const DiscreteState<scalar_t>& s, int64_t num_steps, double q, double heat,
                  Coefs coefs, Field& field) {
  const int64_t numel = s.variables * s.agents;
  at::parallel_for(0, numel, 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) s.signs[i] = sign_of(s.x[i]);
  });
  field.recompute(s.signs_tensor, s.field_tensor);
  std::vector<std::vector<Flip<scalar_t>>> chunks;
  const scalar_t qs = static_cast<scalar_t>(q);
  const scalar_t hs = static_cast<scalar_t>(heat);
  for (int64_t k = 0; k <= num_steps; ++k) {
    const bool start = k < num_steps;
    const auto c = start ? coefs(k) : std::make_pair(0.0, 0.0);
    discrete_pass<scalar_t, kHeated>(s, k > 0, start, qs, hs, static_cast<scalar_t>(c.first),
                                     static_cast<scalar_t>(c.second), chunks);
    if (!start) break;
    int64_t flips = 0;
    for (const auto& chunk : chunks) flips += static_cast<int64_t>(chunk.size());
    if (flips > field.max_incremental_flips()) {
      field.recompute(s.signs_tensor, s.field_tensor);
    } else if (flips > 0) {
      field.apply(chunks, flips, s.field);
    }
  }
}

template <typename scalar_t, typename Coefs, typename Field>
void run_discrete_variant(at::Tensor& position, at::Tensor& momentum, int64_t num_steps,
                          double q, double heat, Coefs coefs, Field& field) {
  const bool heated = heat != 0.0;
  at::Tensor signs = at::empty_like(position);
  at::Tensor f = at::empty_like(position);
  at::Tensor m0 = heated ? at::empty_like(momentum) : at::Tensor();
  DiscreteState<scalar_t> s{signs, f, position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(),
                            heated ? m0.data_ptr<scalar_t>() : nullptr,
                            signs.data_ptr<scalar_t>(), f.data_ptr<scalar_t>(),
                            position.size(0), position.size(1)};
  if (heated) run_discrete<scalar_t, true>(s, num_steps, q, heat, coefs, field);
  else run_discrete<scalar_t, false>(s, num_steps, q, heat, coefs, field);
}

}  // namespace cpu
}  // namespace sb_native
