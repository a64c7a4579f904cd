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
  // Greedy single-flip descent of every agent (polish.h) on a symmetric, zero-diagonal J in
  // CSR form: spins (variables, agents) all +-1, field = J @ spins on entry; sweeps in
  // variable order flip each spin whose flip lowers -0.5 s^T J s, until a sweep flips none
  // or max_sweeps are done. field is kept equal to J @ spins (updated per flip).
  m.def("sb_polish(Tensor crow_indices, Tensor col_indices, Tensor values, Tensor(a!) spins, "
        "Tensor(b!) field, int max_sweeps) -> ()");
  // Variables across ranks (engine/rows.py). A rank holds rows of J in CSR form whose
  // col_indices index the rows of `gathered`, f(x) of every variable gathered from the ranks:
  // floating positions (bSB), int8 signs or int64 packed bits (dSB; rows_math.h). finish:
  // m += quadratic_coef * (J @ f)_rows, walls, heating with start_momentum; then begin:
  // start_momentum = m (heated only), kick-drift with the given coefficients. With
  // heat_coef == 0 start_momentum is never touched (any tensor, e.g. an empty one).
  // field (rows, agents), when given, receives the product (J @ f)_rows a finish uses; with
  // previous, the packed signs (no zero plane) of the step whose product field holds, a
  // finish adds only the terms whose sign changed (2 v s each) to field (the CPU takes the
  // whole product instead when many changed): dSB's incremental field, equal to the product
  // whenever the block's sums are exact (integer weights), the only case to pass previous.
  m.def("sb_rows_step(Tensor crow_indices, Tensor col_indices, Tensor values, Tensor gathered, "
        "Tensor(a!) position, Tensor(b!) momentum, Tensor(c!) start_momentum, "
        "float momentum_coef, float position_coef, float quadratic_coef, float heat_coef, "
        "bool finish, bool begin, Tensor(d!)? field=None, Tensor? previous=None) -> ()");
  // position (rows, agents) as bits in packed (rows + 1, words): bit a % 64 of word a / 64
  // is x > 0 (spins=False) or x >= 0 (spins=True); packed[rows][0] counts the x whose sign
  // is 0 (or NaN) when spins=False, the other words of that row are 0.
  m.def("sb_rows_pack(Tensor position, Tensor(a!) packed, bool spins) -> ()");
  // energies[a] = sum over the block's rows i of spin(x_ia) * (J @ s)_ia, s the packed spins
  // of every variable in gathered: the rank's share of sb_sample's energies.
  m.def("sb_rows_energy(Tensor crow_indices, Tensor col_indices, Tensor values, Tensor gathered, "
        "Tensor position, Tensor(a!) energies) -> ()");
}
