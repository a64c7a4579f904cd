// The SB operator schemas. Each backend registers its kernels with
// TORCH_LIBRARY_IMPL(sb_native, CPU|CUDA, m) in csrc/sb/cpu and csrc/sb/cuda; the QIMADTorch
// ops declare theirs in csrc/qimad/ops.cpp, a fragment of the same sb_native library.
// Layout convention: the SB state (position, momentum, field) is (variables, agents),
// row-major, as in simulated-bifurcation 2.0.0.

#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sb_native, m) {
  // One symplectic-Euler step with explicit coefficients:
  //   m0 = m; m += momentum_coef * x; x += position_coef * m;
  //   m += quadratic_coef * J @ f(x)   (f = sign if discrete else identity)
  //   walls (|x| > 1: m = 0, x clipped); m += heat_coef * m0
  m.def("sb_step(Tensor J, Tensor(a!) position, Tensor(b!) momentum, float momentum_coef, "
        "float position_coef, float quadratic_coef, float heat_coef, bool discrete) -> ()");
  // num_steps steps of the schedule starting at step index start_step (pressure
  // min(time_step * step * pressure_slope, 1)), with a dense coupling matrix.
  m.def("sb_run(Tensor J, Tensor(a!) position, Tensor(b!) momentum, int start_step, "
        "int num_steps, float time_step, float pressure_slope, float quadratic_coef, "
        "float heat_coef, bool discrete) -> ()");
  // The same with the coupling matrix in CSR form (crow_indices, col_indices, values).
  m.def("sb_run_csr(Tensor crow_indices, Tensor col_indices, Tensor values, Tensor(a!) position, "
        "Tensor(b!) momentum, int start_step, int num_steps, float time_step, "
        "float pressure_slope, float quadratic_coef, float heat_coef, bool discrete) -> ()");
  // dSB steps on an integer coupling J = scale * K (K int8): int8 signs, an exact int32
  // local field, int8 GEMM recomputes. Same results as sb_run with J when J is exact.
  m.def("sb_run_int8(Tensor K, float scale, Tensor(a!) position, Tensor(b!) momentum, "
        "int start_step, int num_steps, float time_step, float pressure_slope, "
        "float quadratic_coef, float heat_coef) -> ()");
  // A batch of problems of one size: J (B, n, n), states (B, n, agents). sb_run on each
  // problem b with active[b] (bool, (B,)), with quadratic_coef[b] (float64, (B,)) as its
  // coefficient; the other problems' states are left as they are. Each problem's states are
  // exactly those of sb_run on it alone with the same arguments.
  m.def("sb_run_batched(Tensor J, Tensor(a!) position, Tensor(b!) momentum, Tensor active, "
        "int start_step, int num_steps, float time_step, float pressure_slope, "
        "Tensor quadratic_coef, float heat_coef, bool discrete) -> ()");
  // Early-stopping sampling: spins s = where(x >= 0, 1, -1), energies e = sum_i s_i field_i
  // (field = J @ s), then the stop-window bookkeeping of simulated-bifurcation 2.0.0.
  m.def("sb_sample(Tensor position, Tensor field, Tensor(a!) energies, Tensor(b!) stability, "
        "Tensor(c!) bifurcated, Tensor(d!) final_spins, int threshold) -> ()");
}
