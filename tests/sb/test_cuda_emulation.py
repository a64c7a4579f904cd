"""The SB CUDA ops run on the CPU under the emulation (tests/emulation): each op from its
entry, so the launchers' grid, block and shared-memory arithmetic run with their kernels,
against the CPU ops. dSB and int8 records must be bit-identical (integer weights make the
field exact, and the per-element arithmetic is the CPU's), bSB equal within the product's
rounding. The emulated device has SBN_EMULATED_SMS = 2 SMs, so the grid-stride kernels wrap
past 32 x 256 elements. Every launch also checks its shared memory for races, reads before
writes and overruns, and its barriers for threads that never reach them."""

import pytest
import torch

from tests.helpers import csr_of, sampling_points, state, stop_window, symmetric

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}
DTYPES = [torch.float32, torch.float64]
HEATS = [0.0, 0.006]
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
    assert_states(got, cpu, exact=discrete)


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
