"""Mutation check of the CUDA emulation tests: does each deliberate bug in a kernel fail them?

For each of the 19 CUDA kernels, three bugs of the kinds that pass a review and break a GPU
run:
  index      an off-by-one in an index or a loop start;
  barrier    a dropped __syncthreads(); where the kernel has none, the other way its threads
             share out the work (the grid-stride step, or the launcher's grid rounding);
  reduction  a wrong step of a reduction; where the kernel has none, a wrong term of its
             update.
The QIMAD update's box (issue 22) has two more, in the element update both its kernels run:
  box clip     the clip to the box dropped;
  box jump     a bounded coordinate's jump scaled by a span of 0.
The persistent small-problem kernel's batch of problems (sb_run_batched) has three more:
  index        a wrong offset to a problem's coupling;
  inactive     the early return of an inactive problem's blocks dropped;
  coefficient  one problem's q for every problem.
Each is applied to a copy of csrc and tests (the working tree is never touched), the
emulation library is rebuilt there (incrementally) and the kernel's emulated tests run; a
mutation is caught when they fail. Not part of `make test` (about 35 minutes on 2 cores):

    .venv/bin/python scripts/emulation_mutations.py [--only NAME ...] [--record FILE]

--record writes the table (markdown, with the command and date) to FILE;
tests/emulation/MUTATIONS.md holds the last run's.
"""

import argparse
import datetime
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]
SB = "tests/sb/test_cuda_emulation.py"
ROWS = "tests/sb/test_cuda_emulation_rows.py"
QIMAD = "tests/qimad/test_cuda_emulation.py"
LOOP = "sb/cuda/sb_loop.cuh"
CSR = "sb/cuda/sb_run_csr_cuda.cu"
INT8 = "sb/cuda/sb_run_int8_cuda.cu"
SAMPLE = "sb/cuda/sb_sample_cuda.cu"
POLISH = "sb/cuda/sb_polish_cuda.cu"
ROWS_CU = "sb/cuda/sb_rows_cuda.cu"
SMALL = "sb/cuda/sb_small_kernel.cuh"
INCREMENTAL = "sb/cuda/sb_incremental_kernel.cuh"
FIDELITY = "qimad/cuda/qimad_fidelity_cuda.cu"
UPDATE = "qimad/cuda/qimad_update_cuda.cu"
STRIDE = "const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;"
WRONG_STRIDE = "const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x + 1;"


@dataclass(frozen=True)
class Mutation:
    kernel: str
    kind: str
    file: str  # under csrc/
    find: str  # must occur exactly once in the file
    replace: str
    tests: str  # pytest target
    select: str  # pytest -k expression


MUTATIONS = [
    # ── sb_loop.cuh: the per-step GEMM path's elementwise kernels ──
    Mutation("pre_coupling_kernel", "index", LOOP,
             "threadIdx.x; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i];\n    if (finish_previous)",
             "threadIdx.x + 1; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i];\n    if (finish_previous)", SB, "sb_step or gemm_path"),
    Mutation("pre_coupling_kernel", "barrier", LOOP,
             STRIDE + "\n  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + "
             "threadIdx.x; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i];\n    if",
             WRONG_STRIDE + "\n  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + "
             "threadIdx.x; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i];\n    if", SB, "sb_step or gemm_path"),
    Mutation("pre_coupling_kernel", "reduction", LOOP,
             "if (finish_previous) {\n      m = m + q * s.field[i];",
             "if (finish_previous) {\n      m = m - q * s.field[i];", SB, "gemm_path"),
    Mutation("finish_step_kernel", "index", LOOP,
             "threadIdx.x; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i] + q",
             "threadIdx.x + 1; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i] + q", SB, "sb_step or gemm_path"),
    Mutation("finish_step_kernel", "barrier", LOOP,
             STRIDE + "\n  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + "
             "threadIdx.x; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i] + q",
             WRONG_STRIDE + "\n  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + "
             "threadIdx.x; i < s.numel;\n       i += stride) {\n    scalar_t x = s.x[i];\n"
             "    scalar_t m = s.m[i] + q", SB, "sb_step or gemm_path"),
    Mutation("finish_step_kernel", "reduction", LOOP,
             "scalar_t m = s.m[i] + q * s.field[i];", "scalar_t m = s.m[i];", SB,
             "sb_step or gemm_path"),
    # ── sb_run_csr_cuda.cu ──
    Mutation("csr_step_kernel", "index", CSR,
             "blockIdx.y) * blockDim.x + threadIdx.x; a < p.agents;",
             "blockIdx.y) * blockDim.x + threadIdx.x + 1; a < p.agents;", SB, "sb_run_csr"),
    Mutation("csr_step_kernel", "barrier", CSR, "       a += stride) {",
             "       a += blockDim.x) {", SB, "sb_run_csr"),
    Mutation("csr_step_kernel", "reduction", CSR, "for (int64_t k = begin; k < end; ++k)",
             "for (int64_t k = begin + 1; k < end; ++k)", SB, "sb_run_csr"),
    # ── sb_run_int8_cuda.cu ──
    Mutation("int8_pass_kernel", "index", INT8, "tile[threadIdx.x][r] = ",
             "tile[threadIdx.x][(r + 1) % kTile] = ", SB, "int8_gemm_path"),
    Mutation("int8_pass_kernel", "barrier", INT8,
             "  __syncthreads();\n  // Write the tile transposed",
             "  // Write the tile transposed", SB, "int8_gemm_path"),
    Mutation("int8_pass_kernel", "reduction", INT8,
             "m = m + q * static_cast<scalar_t>(s.field[",
             "m = m - q * static_cast<scalar_t>(s.field[", SB, "int8_gemm_path"),
    # ── sb_sample_cuda.cu ──
    Mutation("energy_partials_kernel", "index", SAMPLE, "chunk * chunk_rows + threadIdx.y;",
             "chunk * chunk_rows + threadIdx.y + 1;", SB, "sb_sample"),
    Mutation("energy_partials_kernel", "barrier", SAMPLE,
             "  __syncthreads();\n  if (threadIdx.y == 0", "  if (threadIdx.y == 0", SB,
             "sb_sample"),
    Mutation("energy_partials_kernel", "reduction", SAMPLE, "for (int s = 0; s < kSlices; ++s)",
             "for (int s = 1; s < kSlices; ++s)", SB, "sb_sample"),
    Mutation("stop_window_kernel", "index", SAMPLE, "stability[a] == threshold - 1",
             "stability[a] == threshold", SB, "sb_sample"),
    Mutation("stop_window_kernel", "barrier", SAMPLE,
             "static_cast<unsigned int>((agents + cuda::kThreads - 1) / cuda::kThreads)",
             "static_cast<unsigned int>(agents / cuda::kThreads)", SB, "sb_sample"),
    Mutation("stop_window_kernel", "reduction", SAMPLE, "for (int64_t c = 0; c < chunks; ++c)",
             "for (int64_t c = 1; c < chunks; ++c)", SB, "sb_sample"),
    Mutation("final_spins_kernel", "index", SAMPLE, "if (frozen_now[e % agents])",
             "if (frozen_now[(e + 1) % agents])", SB, "sb_sample"),
    Mutation("final_spins_kernel", "barrier", SAMPLE,
             STRIDE + "\n  for (int64_t e =", WRONG_STRIDE + "\n  for (int64_t e =", SB,
             "sb_sample"),
    Mutation("final_spins_kernel", "reduction", SAMPLE, "out[e] = spin_of(x[e]);",
             "out[e] = -spin_of(x[e]);", SB, "sb_sample"),
    # ── sb_polish_cuda.cu (the descent itself is polish.h, shared with the CPU kernel) ──
    Mutation("polish_kernel", "index", POLISH, "spins + a, field + a,",
             "spins + a, field + (a + 1) % agents,", SB, "sb_polish"),
    Mutation("polish_kernel", "barrier", POLISH,
             "(agents + kPolishThreads - 1) / kPolishThreads", "agents / kPolishThreads", SB,
             "sb_polish"),
    Mutation("polish_kernel", "reduction", POLISH, "n, agents, max_sweeps);\n}",
             "n, agents, max_sweeps - 1);\n}", SB, "sb_polish"),
    # ── sb_rows_cuda.cu ──
    Mutation("rows_step_kernel", "index", ROWS_CU,
             "threadIdx.x; a < J.agents;\n       a += stride) {\n    const int64_t e",
             "threadIdx.x + 1; a < J.agents;\n       a += stride) {\n    const int64_t e",
             ROWS, "sb_rows_step"),
    Mutation("rows_step_kernel", "barrier", ROWS_CU, "a += stride) {\n    const int64_t e",
             "a += blockDim.x) {\n    const int64_t e", ROWS, "sb_rows_step"),
    # The product's terms added unfused: the CPU's (fused) rounding lost.
    Mutation("rows_step_kernel", "reduction", ROWS_CU, "return __fmaf_rn(v, f[a], acc);",
             "return acc + v * f[a];", ROWS, "sb_rows_step"),
    Mutation("rows_pack_kernel", "index", ROWS_CU, "x + i * agents + 64 * w;",
             "x + i * agents + 64 * w + 1;", ROWS, "sb_rows_pack"),
    Mutation("rows_pack_kernel", "barrier", ROWS_CU, "  __syncthreads();\n  block_sum(zeros);",
             "  block_sum(zeros);", ROWS, "sb_rows_pack"),
    Mutation("rows_pack_kernel", "reduction", ROWS_CU,
             " + (high && sign_needs_int8(row[lane + kLanes]));", ";", ROWS, "sb_rows_pack"),
    Mutation("rows_pack_header_kernel", "index", ROWS_CU, "header[w] = w > 0 ? 0 : sums[0];",
             "header[w] = w > 1 ? 0 : sums[0];", ROWS, "sb_rows_pack"),
    Mutation("rows_pack_header_kernel", "barrier", ROWS_CU,
             "  __syncthreads();\n  block_sum(sums);", "  block_sum(sums);", ROWS, "sb_rows_pack"),
    Mutation("rows_pack_header_kernel", "reduction", ROWS_CU, "half > 0; half /= 2)",
             "half > 1; half /= 2)", ROWS, "sb_rows_pack"),
    Mutation("rows_energy_kernel", "index", ROWS_CU, "i = c * kEnergyChunkRows; i < end;",
             "i = c * kEnergyChunkRows + 1; i < end;", ROWS, "sb_rows_energy"),
    Mutation("rows_energy_kernel", "barrier", ROWS_CU, "(agents + threads - 1) / threads",
             "agents / threads", ROWS, "sb_rows_energy"),
    Mutation("rows_energy_kernel", "reduction", ROWS_CU, "sum = sum + spin_of(", "sum = spin_of(",
             ROWS, "sb_rows_energy"),
    Mutation("rows_energy_sum_kernel", "index", ROWS_CU, "total += partial[c * agents + a];",
             "total += partial[c * agents + (a + 1) % agents];", ROWS, "sb_rows_energy"),
    Mutation("rows_energy_sum_kernel", "barrier", ROWS_CU,
             "static_cast<unsigned int>((agents + kThreads - 1) / kThreads), kThreads, 0, stream,",
             "static_cast<unsigned int>(agents / kThreads), kThreads, 0, stream,", ROWS,
             "sb_rows_energy"),
    Mutation("rows_energy_sum_kernel", "reduction", ROWS_CU,
             "for (int64_t c = 0; c < chunks; ++c) total",
             "for (int64_t c = 1; c < chunks; ++c) total", ROWS, "sb_rows_energy"),
    # ── sb_small_kernel.cuh (and its coupling's product) ──
    Mutation("small_run_kernel", "index", SMALL, "__ffs(static_cast<int>(bits)) - 1;",
             "__ffs(static_cast<int>(bits));", SB, "small_run_kernel"),
    Mutation("small_run_kernel", "barrier", SMALL,
             "    __syncthreads();  // operand, deltas and masks complete\n", "", SB,
             "small_run_kernel"),
    Mutation("small_run_kernel", "reduction", "sb/cuda/sb_small_coupling.cuh",
             "for (int j = 0; j < n; ++j) {", "for (int j = 1; j < n; ++j) {", SB,
             "small_run_kernel"),
    # ── small_run_kernel's batch of problems (sb_run_batched) ──
    Mutation("small_run_kernel (batch)", "index", "sb/cuda/sb_small_coupling.cuh",
             "return {jt + problem * stride, n, stride};", "return {jt + problem * n, n, stride};",
             SB, "sb_run_batched"),
    Mutation("small_run_kernel (batch)", "inactive", SMALL,
             "  if (p.active != nullptr && !p.active[problem]) return;\n", "", SB,
             "sb_run_batched"),
    Mutation("small_run_kernel (batch)", "coefficient", SMALL,
             "static_cast<scalar_t>(p.problem_q[problem])", "static_cast<scalar_t>(p.problem_q[0])",
             SB, "sb_run_batched"),
    # ── sb_incremental_kernel.cuh ──
    Mutation("agent_run_kernel", "index", INCREMENTAL, "if (w < warp) offset += warp_count[w];",
             "if (w <= warp) offset += warp_count[w];", SB, "incremental_kernel"),
    Mutation("agent_run_kernel", "barrier", INCREMENTAL,
             "    __syncthreads();  // warp_count is rewritten by the next chunk; the list is "
             "complete\n", "", SB, "incremental_kernel"),
    Mutation("agent_run_kernel", "reduction", INCREMENTAL, "for (int64_t c = 0; c < count; ++c)",
             "for (int64_t c = 1; c < count; ++c)", SB, "incremental_kernel"),
    # ── qimad_fidelity_cuda.cu ──
    Mutation("fidelity_rows_kernel", "index", FIDELITY,
             "for (int64_t j = threadIdx.x; j < n; j += blockDim.x) row[j] = row[j] / denom;",
             "for (int64_t j = threadIdx.x + 1; j < n; j += blockDim.x) row[j] = row[j] / denom;",
             QIMAD, "fidelity"),
    Mutation("fidelity_rows_kernel", "barrier", FIDELITY,
             "  __syncthreads();\n  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) row[j] = "
             "row[j] / denom;",
             "  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) row[j] = row[j] / denom;",
             QIMAD, "fidelity"),
    Mutation("fidelity_rows_kernel", "reduction", FIDELITY,
             "for (int64_t j = 0; j < n; ++j) sum += row[j];",
             "for (int64_t j = 1; j < n; ++j) sum += row[j];", QIMAD, "fidelity"),
    # ── qimad_update_cuda.cu ──
    Mutation("jump_scales_kernel", "index", UPDATE,
             "for (int64_t c = threadIdx.x; c < width; c += kScaleThreads)",
             "for (int64_t c = threadIdx.x + 1; c < width; c += kScaleThreads)", QIMAD, "update"),
    Mutation("jump_scales_kernel", "barrier", UPDATE,
             "    partial[threadIdx.x] = sum;\n    __syncthreads();\n",
             "    partial[threadIdx.x] = sum;\n", QIMAD, "update"),
    Mutation("jump_scales_kernel", "reduction", UPDATE, "half > 0; half /= 2)",
             "half > 1; half /= 2)", QIMAD, "update"),
    Mutation("swarm_step_kernel", "index", UPDATE, "threadIdx.x; e < numel;",
             "threadIdx.x + 1; e < numel;", QIMAD, "update"),
    Mutation("swarm_step_kernel", "barrier", UPDATE,
             "const int64_t numel = a.nr * a.p;\n  " + STRIDE,
             "const int64_t numel = a.nr * a.p;\n  " + WRONG_STRIDE, QIMAD, "update"),
    Mutation("swarm_step_kernel", "reduction", UPDATE, "segment_of(a.seg, a.ns, c), a.mix[e]);",
             "segment_of(a.seg, a.ns, c), scalar_t(0));", QIMAD, "update"),
    # The box (issue 22), in update_element, which both update kernels run:
    Mutation("swarm_step_kernel", "box clip", UPDATE,
             "  if (a.lower != nullptr) next = qimad::clip(next, a.lower[c], a.upper[c]);\n", "",
             QIMAD, "update"),
    Mutation("swarm_step_kernel", "box jump", UPDATE,
             "qimad::box_jump_scale(a.lower[c], a.upper[c],",
             "qimad::box_jump_scale(a.lower[c], a.lower[c],", QIMAD, "update"),
    Mutation("sequential_step_kernel", "index", UPDATE, "threadIdx.x; c < a.p;",
             "threadIdx.x + 1; c < a.p;", QIMAD, "update"),
    Mutation("sequential_step_kernel", "barrier", UPDATE, STRIDE + "\n  for (int64_t c =",
             WRONG_STRIDE + "\n  for (int64_t c =", QIMAD, "update"),
    Mutation("sequential_step_kernel", "reduction", UPDATE, "for (int64_t j = 0; j < a.n; ++j)",
             "for (int64_t j = 1; j < a.n; ++j)", QIMAD, "update"),
]


def run_tests(copy, mutation, env):
    """(passed, summary line, seconds) of the kernel's emulated tests in the copy."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--capture=sys",
         *mutation.tests.split(), *(["-k", mutation.select] if mutation.select else [])],
        cwd=copy, env=env, capture_output=True, text=True)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    failure = errors[0] if errors else (lines[-1] if lines else "")
    if failure.startswith("RuntimeError: emulated kernel failed") and len(errors) > 1:
        failure = "emulation: " + errors[1]  # the check that fired
    if proc.returncode < 0 or any("Fatal Python error" in line for line in lines):
        # The kernel crashed the test process; the emulator prints its first report at once.
        first = next((line for line in lines if line.startswith("emulated kernel: ")), None)
        failure = "test process crashed" + (f" after {first}" if first else "")
    return proc.returncode == 0, failure[:140], time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run the mutations of these kernels only")
    parser.add_argument("--record", type=pathlib.Path, help="write the table here (markdown)")
    args = parser.parse_args()
    mutations = [m for m in MUTATIONS if args.only is None or m.kernel in args.only]
    with tempfile.TemporaryDirectory(prefix="sbn-mutations-") as tmp:
        copy = pathlib.Path(tmp)
        for part in ("csrc", "tests"):
            shutil.copytree(ROOT / part, copy / part,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
        env = dict(os.environ, SBN_EMULATION="shared")
        env.pop("PYTHONPATH", None)  # sb_native: the installed (editable) build
        baseline = Mutation("(none)", "baseline", "", "", "", f"{SB} {ROWS} {QIMAD}", "")
        ok, summary, seconds = run_tests(copy, baseline, env)
        print(f"baseline: {'passed' if ok else 'FAILED'} ({seconds:.0f} s) {summary}", flush=True)
        if not ok:
            sys.exit("the unmutated emulation tests must pass")
        rows = []
        for m in mutations:
            path = copy / "csrc" / m.file
            original = path.read_text()
            assert original.count(m.find) == 1, f"{m.kernel} {m.kind}: {m.find!r} not unique"
            path.write_text(original.replace(m.find, m.replace))
            try:
                passed, summary, seconds = run_tests(copy, m, env)
            finally:
                path.write_text(original)
            rows.append((m, not passed, summary, seconds))
            print(f"{m.kernel:24} {m.kind:9} {'caught' if not passed else 'MISSED':7} "
                  f"{seconds:5.0f} s  {summary}", flush=True)
    caught = sum(r[1] for r in rows)
    print(f"{caught} of {len(rows)} mutations caught")
    if args.record:
        command = "python scripts/emulation_mutations.py" + (
            f" --only {' '.join(args.only)}" if args.only else "")
        table = ["| kernel | bug | caught | seconds | first failure |", "|---|---|---|---|---|"]
        for m, hit, summary, seconds in rows:
            cell = summary.replace("|", "\\|")
            table.append(f"| `{m.kernel}` | {m.kind} | {'yes' if hit else '**no**'} | "
                         f"{seconds:.0f} | `{cell}` |")
        args.record.write_text(
            "# Mutation check of the CUDA emulation tests\n\n"
            f"`{command}` on {datetime.date.today()}, {platform.machine()}, "
            f"{os.cpu_count()} cores: **{caught} of {len(rows)} mutations caught**. "
            "What each kind of bug is: the docstring of scripts/emulation_mutations.py.\n\n"
            + "\n".join(table) + "\n")
    sys.exit(0 if caught == len(rows) else 1)


if __name__ == "__main__":
    main()
