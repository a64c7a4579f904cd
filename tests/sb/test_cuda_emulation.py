"""The SB CUDA ops run on the CPU under the emulation (tests/emulation): each op from its
entry, so the launchers' grid, block and shared-memory arithmetic run with their kernels,
against the CPU ops. dSB and int8 records must be bit-identical (integer weights make the
field exact, and the per-element arithmetic is the CPU's), bSB equal within the product's
rounding, except the persistent small-problem kernel's, whose product sums in the order and
with the fused rounding of the CPU's small dense kernel (n <= 256, an x86 CPU with FMA):
bit-identical there too.
The emulated device has SBN_EMULATED_SMS = 2 SMs, so the grid-stride kernels wrap
past 32 x 256 elements. Every launch also checks its shared memory for races, reads before
writes and overruns, and its barriers for threads that never reach them."""

import pytest
import torch

from tests.helpers import (
    CPU_FUSED_PRODUCTS,
    batched_problem,
    csr_of,
    sampling_points,
    state,
    stop_window,
    symmetric,
)

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}
DTYPES = [torch.float32, torch.float64]
HEATS = [0.0, 0.006]
# The CPU's small dense kernel (csrc/sb/cpu/sb_small_dense.h) runs problems up to this size.
CPU_SMALL_DENSE_MAX_N = 256
GRID_STRIDE = 2 * 16 * 256  # the emulated grid_for's threads: more elements wrap around


def assert_states(got, expected, exact):
    for g, e in zip(got, expected):
        if exact:
            assert torch.equal(g, e)
        else:
            torch.testing.assert_close(g, e, **TOL[g.dtype])


def both(op, emulated, *args, prefix=()):
    """Runs the CPU op and its emulated CUDA twin on copies of the state (the tensors of
    args that the op mutates: the two after prefix) and returns both states."""
    x, m, rest = args[0], args[1], args[2:]
    cx, cm, ex, em = x.clone(), m.clone(), x.clone(), m.clone()
    getattr(torch.ops.sb_native, op)(*prefix, cx, cm, *rest)
    getattr(emulated, op)(*prefix, ex, em, *rest)
    return (ex, em), (cx, cm)


# ── sb_step, and sb_run's per-step GEMM path: pre_coupling_kernel, finish_step_kernel ──
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", HEATS)
@pytest.mark.parametrize("n,agents", [(1, 1), (37, 13), (300, 41)])  # 300 x 41 wraps the grid
def test_sb_step(emulated, dtype, discrete, heat, n, agents):
    J = symmetric(n, dtype, integer=True)
    x, m = state(n, agents, dtype)
    got, cpu = both("sb_step", emulated, x, m, -0.07, 0.1, 0.013, heat, discrete, prefix=(J,))
    assert_states(got, cpu, exact=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", HEATS)
def test_sb_run_gemm_path(emulated, dtype, discrete, heat, monkeypatch):
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", "0")
    monkeypatch.setenv("SB_NATIVE_CUDA_DSB_FIELD", "recompute")
    n, agents = 130, 70
    assert n * agents > GRID_STRIDE
    J = symmetric(n, dtype, integer=discrete)
    x, m = state(n, agents, dtype)
    got, cpu = both("sb_run", emulated, x, m, 3, 12, 0.1, 0.01, 0.02, heat, discrete, prefix=(J,))
    assert_states(got, cpu, exact=discrete)


# ── sb_run_csr: csr_step_kernel ──────────────────────────────────────────────
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", HEATS)
@pytest.mark.parametrize("steps", [1, 2, 7])  # odd and even: bSB's ping-pong buffers
@pytest.mark.parametrize("agents", [1, 45, 300])  # 300: two agent tiles of 256 threads
def test_sb_run_csr(emulated, dtype, discrete, heat, steps, agents):
    J = symmetric(40, dtype, integer=True, density=0.15)
    J[5] = J[:, 5] = 0  # an empty row
    x, m = state(40, agents, dtype)
    got, cpu = both("sb_run_csr", emulated, x, m, 0, steps, 0.1, 0.01, 0.015, heat, discrete,
                    prefix=csr_of(J))
    assert_states(got, cpu, exact=discrete)


def test_sb_run_csr_structure_errors_name_the_problem(emulated):
    J = symmetric(6, torch.float64, integer=True)
    crow, col, values = csr_of(J)
    col[3] = 17
    x, m = state(6, 2, torch.float64)
    with pytest.raises(ValueError, match=r"col_indices\[3\] = 17 is out of range"):
        emulated.sb_run_csr(crow, col, values, x, m, 0, 2, 0.1, 0.01, 0.1, 0.0, True)


# ── sb_run_int8 above the persistent size: int8_pass_kernel (+ the int8 GEMM) ─────────
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heat", HEATS)
@pytest.mark.parametrize("n,agents", [(1, 1), (10, 13), (37, 64), (70, 40)])
def test_sb_run_int8_gemm_path(emulated, dtype, heat, n, agents, monkeypatch):
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", "0")
    monkeypatch.setenv("SB_NATIVE_CUDA_DSB_FIELD", "recompute")
    K = symmetric(n, torch.float64, seed=2, integer=True).to(torch.int8)
    x, m = state(n, agents, dtype, seed=3)
    got, cpu = both("sb_run_int8", emulated, x, m, 2, 9, 0.1, 0.01, 0.02, heat,
                    prefix=(K, 0.5))
    assert_states(got, cpu, exact=True)


# ── sb_sample: energy_partials_kernel, stop_window_kernel, final_spins_kernel ───────
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,agents", [(0, 3), (1, 1), (20, 40), (700, 33), (9, 300)])
def test_sb_sample(emulated, dtype, n, agents):
    """Row chunks (n > 256), agent blocks (agents > 32 and > 256), n = 0."""
    J = symmetric(n, dtype, integer=True)
    cpu, got = stop_window(n, agents, dtype), stop_window(n, agents, dtype)
    for x, field in sampling_points(J, agents, 6):
        torch.ops.sb_native.sb_sample(x, field, *cpu.values(), 3)
        emulated.sb_sample(x, field, *got.values(), 3)
        for key in got:
            assert torch.equal(got[key], cpu[key]), key
    assert n == 0 or bool(got["bifurcated"].any()), "the sequence must exercise freezing"


# ── sb_polish: polish_kernel ─────────────────────────────────────────────────────────
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("n,agents", [(1, 1), (60, 7), (90, 130)])  # 130: two blocks
@pytest.mark.parametrize("sweeps", [1, 2, 50])  # 1 and 2 stop before a local minimum
def test_sb_polish(emulated, dtype, integer, n, agents, sweeps):
    """One thread per agent, every flip and field update in the CPU kernel's order: equal bit
    for bit, random real weights included (each update adds weight * +-2, exact)."""
    J = symmetric(n, dtype, integer=integer, density=0.2, seed=n)
    g = torch.Generator().manual_seed(agents)
    spins = torch.where(torch.rand(n, agents, generator=g) < 0.5, 1.0, -1.0).to(dtype)
    crow, col, values = csr_of(J)
    cpu = (spins.clone(), (J @ spins).contiguous())
    got = (spins.clone(), cpu[1].clone())
    torch.ops.sb_native.sb_polish(crow, col, values, *cpu, sweeps)
    emulated.sb_polish(crow, col, values, *got, sweeps)
    assert torch.equal(got[0], cpu[0]) and torch.equal(got[1], cpu[1])
    assert n == 1 or not torch.equal(cpu[0], spins), "the descent must flip some spins"


# ── sb_run / sb_run_int8 up to 512 variables: small_run_kernel ────────────────────────
SMALL = [(1, 5), (45, 1), (100, 37), (512, 3)]  # 3 agents: narrow tiles; 37: wide ones


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", HEATS)
@pytest.mark.parametrize("n,agents", SMALL)
def test_small_run_kernel(emulated, dtype, discrete, heat, n, agents):
    J = symmetric(n, dtype, seed=n, integer=discrete)
    if not discrete:
        J = J / n ** 0.5
    x, m = state(n, agents, dtype, seed=agents)
    steps = 12 if discrete else 40
    got, cpu = both("sb_run", emulated, x, m, 5, steps, 0.1, 0.01, 0.2 / n ** 0.5, heat,
                    discrete, prefix=(J,))
    assert_states(got, cpu, exact=discrete or (CPU_FUSED_PRODUCTS and n <= CPU_SMALL_DENSE_MAX_N))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heat", HEATS)
@pytest.mark.parametrize("n,agents", SMALL)
def test_small_run_kernel_int8(emulated, dtype, heat, n, agents):
    K = symmetric(n, torch.float64, seed=n, integer=True).to(torch.int8)
    x, m = state(n, agents, dtype, seed=agents)
    got, cpu = both("sb_run_int8", emulated, x, m, 5, 12, 0.1, 0.01, 0.2 / n ** 0.5, heat,
                    prefix=(K, 0.5))
    assert_states(got, cpu, exact=True)


@pytest.mark.parametrize("fraction", ["0", "0.02", "1"])  # always recompute .. never
def test_small_run_kernel_flip_threshold(emulated, fraction, monkeypatch):
    """Corrections and recomputes of the field agree exactly on integer weights."""
    monkeypatch.setenv("SB_NATIVE_FLIP_CROSSOVER", fraction)
    J = symmetric(100, torch.float32, seed=8, integer=True)
    x, m = state(100, 9, torch.float32, seed=9)
    got, cpu = both("sb_run", emulated, x, m, 0, 60, 0.1, 0.005, 0.01, 0.0, True, prefix=(J,))
    assert_states(got, cpu, exact=True)


# ── dSB above 512 variables: agent_run_kernel (the incremental field) ───────────────
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heat", HEATS)
@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("n,agents", [(1, 2), (45, 3), (700, 2)])  # 700: two thread chunks
def test_incremental_kernel(emulated, dtype, heat, int8, n, agents, monkeypatch):
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", "0")
    J = symmetric(n, dtype, seed=n, integer=True)
    x, m = state(n, agents, dtype, seed=agents)
    args = (3, 15, 0.1, 0.01, 0.2 / n ** 0.5, heat)
    if int8:
        got, cpu = both("sb_run_int8", emulated, x, m, *args, prefix=(J.to(torch.int8), 1.0))
    else:
        got, cpu = both("sb_run", emulated, x, m, *args, True, prefix=(J,))
    assert_states(got, cpu, exact=True)


def test_device_checks_run_before_the_launch(emulated):
    J = symmetric(4, torch.float64)
    x, m = state(4, 2, torch.float32)
    with pytest.raises((ValueError, TypeError, RuntimeError), match="dtype"):
        emulated.sb_run(J, x, m, 0, 1, 0.1, 0.01, 0.1, 0.0, True)


@pytest.mark.parametrize("n", [20, 300])  # the persistent kernel, the incremental one
def test_dsb_refuses_a_coupling_that_is_not_finite(emulated, n):
    """The per-flip field would turn inf into NaN (the reference keeps +-inf): a clear error
    naming the argument instead, on every dSB path; bSB still runs."""
    J = symmetric(n, torch.float32, seed=1)
    J[0, 1] = J[1, 0] = float("inf")
    x, m = state(n, 8, torch.float32)
    args = (0, 3, 0.1, 0.01, 0.1, 0.0)
    with pytest.raises(ValueError, match="J must be finite for dSB on CUDA"):
        emulated.sb_run(J, x, m, *args, True)
    with pytest.raises(ValueError, match="values must be finite for dSB on CUDA"):
        emulated.sb_run_csr(*csr_of(J), x, m, *args, True)
    active = torch.ones(1, dtype=torch.bool)
    q = torch.full((1,), 0.1, dtype=torch.float64)
    with pytest.raises(ValueError, match="J must be finite for dSB on CUDA"):
        emulated.sb_run_batched(J[None], x[None].clone(), m[None].clone(), active, 0, 3, 0.1,
                                0.01, q, 0.0, True)
    emulated.sb_run(J, x, m, *args, False)


# ── sb_run_batched: small_run_kernel over (problem, tile) blocks; sb_run's paths above ──
# (B, n, agents): one problem and many; n of one variable, under a warp, just over one, two
# warps; agents of one, and counts that are multiples of neither tile (2 and 8 agents).
# B = 1 with up to 8 agents takes narrow tiles on the emulated 2 SMs, the others wide ones.
BATCHES = [(1, 1, 1), (1, 31, 7), (3, 33, 9), (3, 64, 1), (37, 1, 7), (37, 31, 9)]


def check_batched(emulated, J, x, m, active, q, args, exact):
    """The emulated op against the CPU op (exact or within rounding), against the emulated
    sb_run on each active problem alone (always exact: the same blocks, the same
    arithmetic), and inactive problems untouched."""
    start_step, num_steps, time_step, pressure_slope, heat, discrete = args
    run_args = (start_step, num_steps, time_step, pressure_slope)
    got, cpu = both("sb_run_batched", emulated, x, m, active, *run_args, q, heat, discrete,
                    prefix=(J,))
    assert_states(got, cpu, exact=exact)
    alone = (x.clone(), m.clone())
    for b in torch.nonzero(active).reshape(-1).tolist():
        xb, mb = alone[0][b], alone[1][b]  # contiguous views, run in place
        emulated.sb_run(J[b], xb, mb, *run_args, float(q[b]), heat, discrete)
    assert_states(got, alone, exact=True)
    for g, before in zip(got, (x, m)):
        assert torch.equal(g[~active], before[~active])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", HEATS)
@pytest.mark.parametrize("problems,n,agents", BATCHES)
def test_sb_run_batched(emulated, dtype, discrete, heat, problems, n, agents):
    J, x, m, active, q = batched_problem(problems, n, agents, dtype, discrete)
    check_batched(emulated, J, x, m, active, q, (5, 12, 0.1, 0.01, heat, discrete),
                  exact=discrete or CPU_FUSED_PRODUCTS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", HEATS)
def test_sb_run_batched_above_the_persistent_size(emulated, dtype, discrete, heat,
                                                  monkeypatch):
    """n above small_max_n(): each active problem on sb_run's own paths (the GEMM path for
    bSB, the incremental kernel for dSB)."""
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", "32")
    J, x, m, active, q = batched_problem(3, 33, 7, dtype, discrete)
    check_batched(emulated, J, x, m, active, q, (2, 9, 0.1, 0.01, heat, discrete),
                  exact=discrete)


@pytest.mark.parametrize("persistent_max_n", ["", "0"])  # the batched launch; per problem
@pytest.mark.parametrize("pattern", ["none", "first", "last"])
def test_sb_run_batched_inactive_problems(emulated, persistent_max_n, pattern, monkeypatch):
    """Whole grids of inactive blocks, and strided (non-contiguous) J, active and q."""
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", persistent_max_n)
    J, x, m, _, q = batched_problem(4, 20, 9, torch.float32, True)
    J = (J + torch.triu(J, 1)).transpose(1, 2)  # non-symmetric, and a transposed view
    active = torch.zeros(8, dtype=torch.bool)
    if pattern != "none":
        active[0 if pattern == "first" else 6] = True
    q = torch.stack([q, -q], 1).reshape(-1)  # q[::2] is the original
    check_batched(emulated, J, x, m, active[::2], q[::2], (0, 12, 0.1, 0.01, 0.0, True),
                  exact=True)


def test_sb_run_batched_checks_run_before_the_launch(emulated):
    J, x, m, active, q = batched_problem(2, 4, 3, torch.float32, True)
    with pytest.raises(TypeError, match="active must be bool"):
        emulated.sb_run_batched(J, x, m, active.float(), 0, 2, 0.1, 0.01, q, 0.0, True)
    with pytest.raises(TypeError, match="quadratic_coef must be float64"):
        emulated.sb_run_batched(J, x, m, active, 0, 2, 0.1, 0.01, q.float(), 0.0, True)
    with pytest.raises(ValueError, match=r"J must have shape \(problems, variables, variables\)"):
        emulated.sb_run_batched(J[:1], x, m, active, 0, 2, 0.1, 0.01, q, 0.0, True)
