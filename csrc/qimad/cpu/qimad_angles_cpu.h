#pragma once
// The CPU work on the swarm's angles behind qimad_fidelity and qimad_angles, callable without
// the dispatcher: the op entries (qimad_fidelity_cpu.cpp) and the fused step
// (qimad_step_cpu.cpp) run it on arguments they have checked.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/MathConstants.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../math.h"

namespace sb_native {
namespace qimad {
namespace cpu {

// Half-angle sines and cosines of every agent: evaluated once per agent, not once per pair.
template <typename T>
void half_angles(const T* alpha, int64_t n, std::vector<T>& sin_h, std::vector<T>& cos_h) {
  sin_h.resize(n);
  cos_h.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    sin_h[i] = std::sin(alpha[i] / T(2));
    cos_h[i] = std::cos(alpha[i] / T(2));
  }
}

// W (n x n, written as Out) computed in T: W[i, j] = F_ij / (sum_l F_il + eps) on the edges.
template <typename T, typename Out>
void fidelity_matrix(const std::vector<T>& sin_h, const std::vector<T>& cos_h, const T* beta,
                     const bool* edge, int64_t n, T k, T eps, Out* W) {
  // Rows are independent; a row costs n transcendental evaluations.
  const int64_t grain = std::max<int64_t>(1, 2048 / n);
  at::parallel_for(0, n, grain, [&](int64_t i0, int64_t i1) {
    std::vector<T> raw(n);
    for (int64_t i = i0; i < i1; ++i) {
      // Summed in j order like the reference's sum(raw_w); eps keeps an isolated agent at 0.
      T sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        raw[j] = edge[i * n + j] ? qimad::fidelity_of_halves(sin_h[i], cos_h[i], beta[i], sin_h[j],
                                                             cos_h[j], beta[j], k)
                                 : T(0);
        sum += raw[j];
      }
      const T denom = sum + eps;
      for (int64_t j = 0; j < n; ++j) W[i * n + j] = static_cast<Out>(raw[j] / denom);
    }
  });
}

// qimad_angles into W (matrices, agents, agents) and attract (agents,), both of one dtype: the
// fidelity matrices and attraction coefficients from the angles before the step, then the
// angles' random walk in place.
inline void angles_into(at::Tensor& alpha, at::Tensor& beta, const at::Tensor& mask,
                        at::ArrayRef<double> k, const at::Tensor& normal,
                        const at::Tensor& uniform, const at::Tensor& attract_on,
                        double alpha_step, double beta_step, double eps, at::Tensor& W,
                        at::Tensor& attract) {
  const int64_t n = alpha.size(0), m = static_cast<int64_t>(k.size());
  const auto dtype = W.scalar_type();
  if (n == 0) return;
  AT_DISPATCH_FLOATING_TYPES(alpha.scalar_type(), "qimad_angles_cpu", [&] {
    using angle_t = scalar_t;
    angle_t* a = alpha.data_ptr<angle_t>();
    angle_t* b = beta.data_ptr<angle_t>();
    const angle_t* walk = normal.data_ptr<angle_t>();  // (2, n): alpha's steps, then beta's
    const angle_t* coin = uniform.data_ptr<angle_t>() + n;  // row 1: the attraction coins
    const angle_t* on = attract_on.data_ptr<angle_t>();
    std::vector<angle_t> sin_h, cos_h;
    half_angles(a, n, sin_h, cos_h);
    AT_DISPATCH_FLOATING_TYPES(dtype, "qimad_angles_cpu_out", [&] {
      scalar_t* w = W.data_ptr<scalar_t>();
      for (int64_t i = 0; i < m; ++i) {
        fidelity_matrix(sin_h, cos_h, b, mask.data_ptr<bool>(), n, static_cast<angle_t>(k[i]),
                        static_cast<angle_t>(eps), w + i * n * n);
      }
      scalar_t* att = attract.data_ptr<scalar_t>();
      for (int64_t i = 0; i < n; ++i) att[i] = static_cast<scalar_t>(coin[i] * on[i]);
    });
    // The walk, once the fidelity has read the angles: alpha clamped to [0, pi] (torch.clamp)
    // and beta wrapped by torch.remainder's rule (fmod, then + 2 pi when negative).
    const auto sa = static_cast<angle_t>(alpha_step), sb = static_cast<angle_t>(beta_step);
    const auto pi = static_cast<angle_t>(c10::pi<double>);
    const auto two_pi = static_cast<angle_t>(2 * c10::pi<double>);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = std::min(std::max(a[i] + sa * walk[i], angle_t(0)), pi);
      angle_t r = std::fmod(b[i] + sb * walk[n + i], two_pi);
      if (r < 0) r += two_pi;
      b[i] = r;
    }
  });
}

}  // namespace cpu
}  // namespace qimad
}  // namespace sb_native
