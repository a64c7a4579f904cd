#pragma once
// The CPU symplectic-Euler loop shared by the dense and CSR kernels. A step is two fused
// elementwise passes around the coupling product m += q * J @ f(x):
//   before: [walls + heating of the previous step], save m0, kick-drift, f(x)
//   after : walls + heating (only after the last step; otherwise folded into the next
//           step's first pass, so each step sweeps the state once outside the product).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "../math.h"

namespace sb_native {
namespace sb {
namespace cpu {

// Elements per parallel chunk: large enough that thread hand-off costs stay well below
// the sweep itself.
constexpr int64_t kElementGrain = 16384;

template <typename scalar_t>
struct SBState {
  scalar_t* x;
  scalar_t* m;
  scalar_t* fx;  // sign(x) for dSB; unused (nullptr) for bSB, where f(x) = x
  scalar_t* m0;  // momentum at the start of the step, for heating; nullptr when not heated
  int64_t numel;
};

template <typename scalar_t, bool kDiscrete, bool kHeated>
void pre_coupling(const SBState<scalar_t>& s, bool finish_previous, scalar_t heat,
                  scalar_t momentum_coef, scalar_t position_coef) {
  at::parallel_for(0, s.numel, kElementGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      scalar_t x = s.x[i];
      scalar_t m = s.m[i];
      if (finish_previous) {
        inelastic_walls(x, m);
        if (kHeated) m = m + heat * s.m0[i];
      }
      if (kHeated) s.m0[i] = m;
      kick_drift(x, m, momentum_coef, position_coef);
      s.x[i] = x;
      s.m[i] = m;
      if (kDiscrete) s.fx[i] = sign_of(x);
    }
  });
}

template <typename scalar_t, bool kHeated>
void finish_step(const SBState<scalar_t>& s, scalar_t heat) {
  at::parallel_for(0, s.numel, kElementGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      scalar_t x = s.x[i];
      scalar_t m = s.m[i];
      inelastic_walls(x, m);
      if (kHeated) m = m + heat * s.m0[i];
      s.x[i] = x;
      s.m[i] = m;
    }
  });
}

// Runs num_steps steps. coefs(k) gives {momentum_coef, position_coef} of the k-th step of
// this call; couple() adds q * J @ f(x) to the momentum.
template <typename scalar_t, bool kDiscrete, bool kHeated, typename Coefs, typename Couple>
void run_steps(const SBState<scalar_t>& s, int64_t num_steps, double heat, Coefs coefs,
               Couple couple) {
  const scalar_t h = static_cast<scalar_t>(heat);
  for (int64_t k = 0; k < num_steps; ++k) {
    const auto c = coefs(k);
    pre_coupling<scalar_t, kDiscrete, kHeated>(s, k > 0, h, static_cast<scalar_t>(c.first),
                                               static_cast<scalar_t>(c.second));
    couple();
  }
  if (num_steps > 0) finish_step<scalar_t, kHeated>(s, h);
}

// Allocates the scratch buffers and calls run_steps with the variant's template flags.
// couple(fx) receives the tensor holding f(x) (position itself for bSB).
template <typename scalar_t, typename Coefs, typename Couple>
void run_variant(at::Tensor& position, at::Tensor& momentum, int64_t num_steps, double heat,
                 bool discrete, Coefs coefs, Couple couple) {
  const bool heated = heat != 0.0;
  at::Tensor fx = discrete ? at::empty_like(position) : position;
  at::Tensor m0 = heated ? at::empty_like(momentum) : at::Tensor();
  SBState<scalar_t> s{position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(),
                      discrete ? fx.data_ptr<scalar_t>() : nullptr,
                      heated ? m0.data_ptr<scalar_t>() : nullptr, position.numel()};
  auto call = [&]() { couple(fx); };
  if (discrete) {
    if (heated) run_steps<scalar_t, true, true>(s, num_steps, heat, coefs, call);
    else run_steps<scalar_t, true, false>(s, num_steps, heat, coefs, call);
  } else {
    if (heated) run_steps<scalar_t, false, true>(s, num_steps, heat, coefs, call);
    else run_steps<scalar_t, false, false>(s, num_steps, heat, coefs, call);
  }
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
