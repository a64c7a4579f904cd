#pragma once
// Per-element math of the symplectic-Euler SB step, shared by the CPU and CUDA kernels
// so the CPU tests exercise exactly the arithmetic the GPU runs.

#include <cstdint>

#include "../common/host_device.h"

namespace sb_native {
namespace sb {

// Adiabatic pressure a(t) = min(dt * step * slope, 1), evaluated in double in the same
// order as the reference ((dt * step) * slope) so both backends see the same schedule.
SBN_HD double pressure(double time_step, int64_t step, double pressure_slope) {
  const double p = time_step * static_cast<double>(step) * pressure_slope;
  return p < 1.0 ? p : 1.0;
}

SBN_HD double momentum_coefficient(double time_step, int64_t step, double pressure_slope) {
  return time_step * (pressure(time_step, step, pressure_slope) - 1.0);
}

// torch.sign semantics: 0 stays 0 (dSB activation).
template <typename T>
SBN_HD T sign_of(T x) {
  return static_cast<T>((x > T(0)) - (x < T(0)));
}

// The sampled spin: x >= 0 maps to +1 (where(position >= 0, 1, -1)).
template <typename T>
SBN_HD T spin_of(T x) {
  return x >= T(0) ? T(1) : T(-1);
}

// One agent's stop-window bookkeeping after a sampling (simulated-bifurcation 2.0.0's, which
// the reference runs on whole tensors): a free agent's streak of equal energies grows or
// restarts, a frozen one's stays, and the agent is frozen exactly when its streak stands at
// threshold - 1. Returns the new flag; the caller saves the agent's spins when it changes
// (which, for the states a run reaches, is only when the agent freezes).
SBN_HD bool stop_window_update(bool stable, bool frozen, int16_t& streak, int64_t threshold) {
  if (!frozen) streak = stable ? static_cast<int16_t>(streak + 1) : int16_t(0);
  return streak == threshold - 1;
}

// First half of a step: momentum kicked by the pressure term, then the position drifts.
template <typename T>
SBN_HD void kick_drift(T& x, T& m, T momentum_coef, T position_coef) {
  m = m + momentum_coef * x;
  x = x + position_coef * m;
}

// Inelastic walls: a particle beyond |x| = 1 loses its momentum and is put back on the wall.
// Written as selects, not a branch, so the CPU loops vectorise; NaN passes through as in
// torch.clip.
template <typename T>
SBN_HD void inelastic_walls(T& x, T& m) {
  const bool outside = (x > T(1)) | (x < T(-1));  // bitwise: no short-circuit branch
  m = outside ? T(0) : m;
  const T floor = x < T(-1) ? T(-1) : x;
  x = floor > T(1) ? T(1) : floor;
}

}  // namespace sb
}  // namespace sb_native
