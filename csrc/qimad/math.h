#pragma once
// Per-element math of the QIMADTorch swarm (fidelity weights and the fused agent update),
// shared by the CPU and CUDA kernels so both run the same arithmetic.
// sb_native/optim/_reference.py mirrors every function here in the same operation order.

#include <cmath>

#include "../common/host_device.h"

namespace sb_native {
namespace qimad {

// |<psi_i|psi_j>|^k for the Bloch states |psi> = cos(a/2)|0> + e^{ib} sin(a/2)|1>, as in the
// reference's _fidelity: the overlap's squared modulus raised to k/2. This form takes the
// half-angle sines and cosines, so a kernel can evaluate them once per agent, not per pair.
template <typename T>
SBN_HD T fidelity_of_halves(T sin_i, T cos_i, T beta_i, T sin_j, T cos_j, T beta_j, T k) {
  using std::cos;
  using std::pow;
  using std::sin;
  const T s = sin_i * sin_j;
  const T d = beta_j - beta_i;
  const T re = cos_i * cos_j + cos(d) * s;
  const T im = sin(d) * s;
  return pow(re * re + im * im, k / T(2));
}

template <typename T>
SBN_HD T fidelity(T alpha_i, T beta_i, T alpha_j, T beta_j, T k) {
  using std::cos;
  using std::sin;
  return fidelity_of_halves(sin(alpha_i / T(2)), cos(alpha_i / T(2)), beta_i, sin(alpha_j / T(2)),
                            cos(alpha_j / T(2)), beta_j, k);
}

// RMSProp second-moment update, in torch.optim.RMSprop's order (v * decay + (1 - decay) g g).
// Written without T(1) so that T may also be a vector type (the CPU kernel's SIMD pass).
template <typename T>
SBN_HD T square_avg(T v, T g, T decay) {
  return v * decay + (1 - decay) * g * g;
}

// The displacement of one coordinate of one agent (or of a vector of them), all forces read
// from before the step:
//   RMSProp step  -(eta / (sqrt(v) + eps)) g        root_v = sqrt(v), v already updated
//   attraction    attract (best - theta)            attract = 0.2 * U(0,1), 0 without neighbours
//   communication gamma (mix - wsum theta)          mix = sum_j W_ij theta_j, wsum = sum_j W_ij,
// i.e. gamma * sum_j W_ij (theta_j - theta_i), the reference's comm term. The caller takes the
// square root so a CPU kernel can compute a block of them with SIMD instructions.
template <typename T>
SBN_HD T swarm_delta(T theta, T g, T root_v, T best, T mix, T wsum, T eta, T gamma, T attract,
                     T eps) {
  T delta = -(eta / (root_v + eps)) * g;
  delta = delta + attract * (best - theta);
  delta = delta + gamma * (mix - wsum * theta);
  return delta;
}

// Scale of a tunnelling jump for one parameter tensor: (mean |theta| * 0.8 + 0.1) * temperature.
template <typename T>
SBN_HD T jump_scale(T mean_abs, T temperature) {
  return (mean_abs * T(0.8) + T(0.1)) * temperature;
}

// Scale of a tunnelling jump for a coordinate with box bounds: 0.4 * (upper - lower) *
// temperature when the span is finite (the QIMAD authors' bound-scaled jump), else scale, its
// parameter tensor's jump_scale. span - span is 0 exactly when span is finite.
template <typename T>
SBN_HD T box_jump_scale(T lower, T upper, T scale, T temperature) {
  const T span = upper - lower;
  return span - span == T(0) ? T(0.4) * span * temperature : scale;
}

// A coordinate clipped to its box [lower, upper] (a NaN stays NaN, as torch.clamp leaves it).
template <typename T>
SBN_HD T clip(T x, T lower, T upper) {
  return x < lower ? lower : (x > upper ? upper : x);
}

// A tunnelling jump coordinate, U(-1, 1) * scale from a U(0, 1) draw, added after the step.
template <typename T>
SBN_HD T jump(T uniform, T scale) {
  return (uniform * T(2) - T(1)) * scale;
}

}  // namespace qimad
}  // namespace sb_native
