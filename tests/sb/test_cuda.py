"""CUDA kernels of the SB ops against the CPU kernels and the pure-torch path on the GPU.

Skipped unless the extension was built with CUDA and a GPU is present. float64 is compared
tightly (only the GEMM's summation order differs between cuBLAS and the CPU BLAS), float32
loosely; dSB on integer weights must give identical spins, since J @ sign(x) is then exact.
"""

import pytest
import torch

import sb_native
from sb_native.engine import reference as torch_ref
from tests.helpers import (
    CUDA_ONLY,
    batched_problem,
    csr_of,
    sampling_points,
    state,
    stop_window,
    symmetric,
)

pytestmark = CUDA_ONLY

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}
# Energies of random couplings are sums of n terms in another order than the CPU's.
ENERGY_TOL = {torch.float64: dict(rtol=1e-10, atol=1e-9), torch.float32: dict(rtol=1e-4, atol=1e-2)}
CUDA = torch.device("cuda")


def on_cuda(*tensors):
    return tuple(t.to(CUDA) for t in tensors)


def assert_state_close(got, expected, dtype):
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.cpu(), e.cpu(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
def test_sb_step(dtype, discrete, heat):
    J = symmetric(37, dtype)
    x, m = state(37, 13, dtype)
    gJ, gx, gm = on_cuda(J, x, m)
    rx, rm = gx.clone(), gm.clone()
    args = (-0.07, 0.1, 0.013, heat, discrete)
    torch.ops.sb_native.sb_step(J, x, m, *args)
    torch.ops.sb_native.sb_step(gJ, gx, gm, *args)
    torch_ref.sb_step(gJ, rx, rm, *args)
    assert_state_close((gx, gm), (x, m), dtype)
    assert_state_close((gx, gm), (rx, rm), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
def test_sb_run_dense(dtype, discrete, heat):
    steps = 200 if dtype == torch.float64 else 40
    J = symmetric(50, dtype, integer=discrete)
    x, m = state(50, 17, dtype)
    gJ, gx, gm = on_cuda(J, x, m)
    rx, rm = gx.clone(), gm.clone()
    args = (3, steps, 0.1, 0.01, 0.02, heat, discrete)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch.ops.sb_native.sb_run(gJ, gx, gm, *args)
    torch_ref.sb_run(gJ, rx, rm, *args)
    assert_state_close((gx, gm), (x, m), dtype)
    assert_state_close((gx, gm), (rx, rm), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("steps", [1, 2, 121])  # odd and even: bSB's ping-pong buffers
def test_sb_run_csr(dtype, discrete, heat, steps):
    J = symmetric(64, dtype, integer=True, density=0.1)
    J[5] = J[:, 5] = 0  # an empty row
    x, m = state(64, 45, dtype)  # more agents than a warp, not a multiple of 32
    gx, gm = on_cuda(x, m)
    rx, rm = gx.clone(), gm.clone()
    args = (0, steps, 0.1, 0.01, 0.015, heat, discrete)
    torch.ops.sb_native.sb_run_csr(*csr_of(J), x, m, *args)
    torch.ops.sb_native.sb_run_csr(*on_cuda(*csr_of(J)), gx, gm, *args)
    torch_ref.sb_run(J.to(CUDA).to_sparse_csr(), rx, rm, *args)
    assert_state_close((gx, gm), (x, m), dtype)
    assert_state_close((gx, gm), (rx, rm), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sparse", [False, True])
def test_dsb_integer_weights_same_spins(dtype, sparse):
    J = symmetric(120, dtype, seed=4, integer=True, density=0.2 if sparse else 1.0)
    x, m = state(120, 64, dtype, seed=5)
    gx, gm = on_cuda(x, m)
    args = (0, 300, 0.1, 0.005, 0.01, 0.0, True)
    if sparse:
        torch.ops.sb_native.sb_run_csr(*csr_of(J), x, m, *args)
        torch.ops.sb_native.sb_run_csr(*on_cuda(*csr_of(J)), gx, gm, *args)
    else:
        torch.ops.sb_native.sb_run(J, x, m, *args)
        torch.ops.sb_native.sb_run(J.to(CUDA), gx, gm, *args)
    assert torch.equal(torch_ref.sample_spins(gx).cpu(), torch_ref.sample_spins(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("n,agents", [(10, 13), (37, 64), (64, 40)])  # padded for _int_mm
def test_sb_run_int8(dtype, heat, n, agents):
    K = symmetric(n, torch.float64, seed=2, integer=True).to(torch.int8)
    scale = 0.5
    x, m = state(n, agents, dtype, seed=3)
    gx, gm = on_cuda(x, m)
    fx, fm = gx.clone(), gm.clone()
    args = (2, 150, 0.1, 0.01, 0.02, heat)
    torch.ops.sb_native.sb_run_int8(K, scale, x, m, *args)
    torch.ops.sb_native.sb_run_int8(K.to(CUDA), scale, gx, gm, *args)
    # The float-coupling kernel on J = scale * K: the same exact field, the same spins.
    torch.ops.sb_native.sb_run((scale * K.to(dtype)).to(CUDA), fx, fm, *args, True)
    assert_state_close((gx, gm), (x, m), dtype)
    assert torch.equal(torch_ref.sample_spins(gx).cpu(), torch_ref.sample_spins(x))
    assert torch.equal(torch_ref.sample_spins(gx), torch_ref.sample_spins(fx))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("n", [20, 700])  # one row chunk and several
def test_sb_sample(dtype, integer, n):
    agents, threshold = 40, 3
    J = symmetric(n, dtype, integer=integer)
    cpu, gpu = stop_window(n, agents, dtype), stop_window(n, agents, dtype, CUDA)
    reference = {k: v.clone() for k, v in gpu.items()}
    for x, field in sampling_points(J, agents, 8):
        gx, gfield = on_cuda(x, field)
        torch.ops.sb_native.sb_sample(x, field, *cpu.values(), threshold)
        torch.ops.sb_native.sb_sample(gx, gfield, *gpu.values(), threshold)
        torch_ref.sb_sample(gx, gfield, *reference.values(), threshold)
        for key in ("stability", "bifurcated", "final_spins"):
            assert torch.equal(gpu[key].cpu(), cpu[key]), key
            assert torch.equal(gpu[key], reference[key]), key
        if integer:  # exact sums whatever the order
            assert torch.equal(gpu["energies"].cpu(), cpu["energies"])
        else:
            torch.testing.assert_close(gpu["energies"].cpu(), cpu["energies"], **ENERGY_TOL[dtype])
    assert bool(gpu["bifurcated"].any()), "the sequence must exercise freezing"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("integer", [True, False])
def test_sb_polish(dtype, integer):
    """The GPU's descent equals the CPU op's bit for bit (updates of weight * +-2, in order)."""
    n, agents = 300, 200
    J = symmetric(n, dtype, integer=integer, density=0.05)
    g = torch.Generator().manual_seed(1)
    spins = torch.where(torch.rand(n, agents, generator=g) < 0.5, 1.0, -1.0).to(dtype)
    crow, col, values = csr_of(J)
    cpu = (spins.clone(), (J @ spins).contiguous())
    gpu = on_cuda(*cpu)
    torch.ops.sb_native.sb_polish(crow, col, values, *cpu, 100)
    torch.ops.sb_native.sb_polish(*on_cuda(crow, col, values), *gpu, 100)
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])


def test_runs_on_a_side_stream():
    J = symmetric(30, torch.float64)
    x, m = state(30, 8, torch.float64)
    gJ, gx, gm = on_cuda(J, x, m)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.ops.sb_native.sb_run(gJ, gx, gm, 0, 50, 0.1, 0.01, 0.02, 0.0, False)
        torch.ops.sb_native.sb_run_csr(*on_cuda(*csr_of(J)), gx, gm, 50, 50, 0.1, 0.01, 0.02,
                                       0.0, False)
    side.synchronize()
    torch.ops.sb_native.sb_run(J, x, m, 0, 50, 0.1, 0.01, 0.02, 0.0, False)
    torch.ops.sb_native.sb_run_csr(*csr_of(J), x, m, 50, 50, 0.1, 0.01, 0.02, 0.0, False)
    assert_state_close((gx, gm), (x, m), torch.float64)


def test_empty_inputs_are_no_ops():
    x, m = torch.zeros(0, 5, device=CUDA), torch.zeros(0, 5, device=CUDA)
    torch.ops.sb_native.sb_run(torch.zeros(0, 0, device=CUDA), x, m, 0, 10, 0.1, 0.01, 0.1, 0.0, False)
    crow = torch.zeros(1, dtype=torch.long, device=CUDA)
    empty = torch.zeros(0, dtype=torch.long, device=CUDA)
    torch.ops.sb_native.sb_run_csr(crow, empty, torch.zeros(0, device=CUDA), x, m, 0, 10, 0.1,
                                   0.01, 0.1, 0.0, True)
    w = stop_window(0, 5, torch.float32, CUDA)
    torch.ops.sb_native.sb_sample(x, x, *w.values(), 2)
    assert torch.equal(w["energies"], torch.zeros(5, device=CUDA))  # no variables: energy 0


def test_checks_name_the_argument():
    J = symmetric(6, torch.float32)
    gx, gm = on_cuda(*state(6, 4, torch.float32))
    with pytest.raises(ValueError, match="J must be on the device of position"):
        torch.ops.sb_native.sb_run(J, gx, gm, 0, 3, 0.1, 0.01, 0.1, 0.0, False)
    with pytest.raises(ValueError, match="momentum must have the shape of position"):
        torch.ops.sb_native.sb_run(J.to(CUDA), gx, gm[:, :2], 0, 3, 0.1, 0.01, 0.1, 0.0, False)
    crow, col, values = on_cuda(*csr_of(J))
    col[0] = 99
    with pytest.raises(ValueError, match="out of range"):
        torch.ops.sb_native.sb_run_csr(crow, col, values, gx, gm, 0, 1, 0.1, 0.01, 0.1, 0.0, False)
    with pytest.raises(TypeError, match="K must be int8"):
        torch.ops.sb_native.sb_run_int8(J.to(CUDA), 1.0, gx, gm, 0, 1, 0.1, 0.01, 0.1, 0.0)


@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("heated", [False, True])
def test_solver_native_cuda_equals_torch_cuda_dsb_integer(heated):
    """The whole run (chunks, sampling, stop window) on the GPU: same spins as the
    pure-torch backend on the same GPU for dSB on integer weights."""
    J = symmetric(40, torch.float64, seed=7, integer=True)
    kwargs = dict(domain="spin", dtype=torch.float64, device="cuda", mode="discrete",
                  heated=heated, verbose=False, best_only=False, agents=32, max_steps=600,
                  sampling_period=20, convergence_threshold=5, seed=11)
    native = sb_native.minimize(J, backend="native", **kwargs)
    reference = sb_native.minimize(J, backend="torch", **kwargs)
    assert torch.equal(native[0], reference[0])
    assert torch.equal(native[1], reference[1])


# ── Persistent small-problem kernel (sb_run, sb_run_int8) ────────────────────
# Problems with at most 512 variables run a whole call in one launch (csrc/sb/cuda/sb_small.cuh:
# one block per agent tile, state in registers, incremental local field for dSB);
# SB_NATIVE_CUDA_PERSISTENT_MAX_N=0 forces the large-problem paths (GEMM per step for bSB,
# the incremental agent kernel for dSB), SB_NATIVE_FLIP_CROSSOVER sets the
# flip fraction above which dSB recomputes its field.

PERSISTENT_MAX_N = 512
# n: one variable, fewer than a warp, not a multiple of 32, several warps, the limit.
# agents: one, and counts that are multiples of neither tile (2 and 8 agents).
PERSISTENT_SIZES = [(1, 5), (45, 1), (100, 37), (300, 130), (PERSISTENT_MAX_N, 9)]


def persistent_args(n, dtype, heat, discrete):
    steps = 150 if dtype == torch.float64 else 30  # float32 drifts apart over long runs
    return (5, steps, 0.1, 0.01, 0.2 / n ** 0.5, heat, discrete)


def launched_kernels(run):
    """The names of the CUDA kernels run() launches, one per launch in launch order (a list,
    so "one launch" can fail); skips when the profiler sees none."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    names = [e.name for e in prof.events()
             if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
    if not names:
        pytest.skip("the profiler records no CUDA kernels here")
    return names


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("n,agents", PERSISTENT_SIZES)
def test_persistent_sb_run(dtype, discrete, heat, n, agents, monkeypatch):
    J = symmetric(n, dtype, seed=n, integer=discrete)
    x, m = state(n, agents, dtype, seed=agents)
    gJ, gx, gm = on_cuda(J, x, m)
    ex, em = gx.clone(), gm.clone()
    args = persistent_args(n, dtype, heat, discrete)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch.ops.sb_native.sb_run(gJ, gx, gm, *args)
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", "0")  # the large-problem path
    torch.ops.sb_native.sb_run(gJ, ex, em, *args)
    if discrete:  # integer weights: exact fields, the CPU's per-element arithmetic
        for got, cpu, large in zip((gx, gm), (x, m), (ex, em)):
            assert torch.equal(got.cpu(), cpu)
            assert torch.equal(got, large)
    else:
        assert_state_close((gx, gm), (x, m), dtype)
        assert_state_close((gx, gm), (ex, em), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("n,agents", [(1, 3)] + PERSISTENT_SIZES[1:])
def test_persistent_sb_run_int8(dtype, heat, n, agents, monkeypatch):
    K = symmetric(n, torch.float64, seed=n, integer=True).to(torch.int8)
    scale = 0.5
    x, m = state(n, agents, dtype, seed=agents)
    gx, gm = on_cuda(x, m)
    fx, fm = gx.clone(), gm.clone()
    ex, em = gx.clone(), gm.clone()
    args = persistent_args(n, dtype, heat, True)[:-1]
    torch.ops.sb_native.sb_run_int8(K, scale, x, m, *args)
    torch.ops.sb_native.sb_run_int8(K.to(CUDA), scale, gx, gm, *args)
    # The float-coupling persistent kernel on J = scale * K: the same exact field.
    torch.ops.sb_native.sb_run((scale * K.to(dtype)).to(CUDA), fx, fm, *args, True)
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", "0")  # the large-problem path
    torch.ops.sb_native.sb_run_int8(K.to(CUDA), scale, ex, em, *args)
    for got, cpu, dense, large in zip((gx, gm), (x, m), (fx, fm), (ex, em)):
        assert torch.equal(got.cpu(), cpu)
        assert torch.equal(got, dense)
        assert torch.equal(got, large)


@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("fraction", ["0", "0.02", "1"])  # always recompute .. never
def test_persistent_dsb_incremental_field(int8, fraction, monkeypatch):
    """Flip corrections and recomputes of the local field give the same (exact) field, so the
    flip threshold changes nothing on integer weights: 0 recomputes at every step with a flip,
    1 always corrects, 0.02 does both (many flips early in the run, few late)."""
    monkeypatch.setenv("SB_NATIVE_FLIP_CROSSOVER", fraction)
    J = symmetric(200, torch.float32, seed=8, integer=True)
    x, m = state(200, 24, torch.float32, seed=9)
    gx, gm = on_cuda(x, m)
    args = (0, 400, 0.1, 0.005, 0.01, 0.0)
    if int8:
        torch.ops.sb_native.sb_run_int8(J.to(torch.int8), 1.0, x, m, *args)
        torch.ops.sb_native.sb_run_int8(J.to(torch.int8).to(CUDA), 1.0, gx, gm, *args)
    else:
        torch.ops.sb_native.sb_run(J, x, m, *args, True)
        torch.ops.sb_native.sb_run(J.to(CUDA), gx, gm, *args, True)
    assert torch.equal(gx.cpu(), x)
    assert torch.equal(gm.cpu(), m)


def test_persistent_dsb_real_weights_close():
    """dSB on non-integer weights: the incremental field rounds differently from the CPU's
    (other recompute points, another product order), within float64 rounding."""
    J = symmetric(60, torch.float64, seed=9)
    x, m = state(60, 19, torch.float64, seed=4)
    gJ, gx, gm = on_cuda(J, x, m)
    args = (0, 100, 0.1, 0.01, 0.01, 0.0, True)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch.ops.sb_native.sb_run(gJ, gx, gm, *args)
    assert_state_close((gx, gm), (x, m), torch.float64)


@pytest.mark.parametrize("discrete", [False, True])
def test_just_above_the_limit_leaves_the_persistent_kernel(discrete):
    """Above 512 variables bSB takes the GEMM path and dSB the incremental agent kernel."""
    n = PERSISTENT_MAX_N + 1
    dtype = torch.float64
    J = symmetric(n, dtype, seed=3, integer=discrete)
    x, m = state(n, 20, dtype, seed=2)
    gJ, gx, gm = on_cuda(J, x, m)
    args = (0, 60, 0.1, 0.01, 0.2 / n ** 0.5, 0.0, discrete)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch.ops.sb_native.sb_run(gJ, gx, gm, *args)
    assert_state_close((gx, gm), (x, m), dtype)
    if discrete:
        assert torch.equal(gx.cpu(), x)
    above = launched_kernels(lambda: torch.ops.sb_native.sb_run(gJ, gx, gm, *args))
    at_limit = launched_kernels(lambda: torch.ops.sb_native.sb_run(
        gJ[:-1, :-1].contiguous(), gx[:-1].contiguous(), gm[:-1].contiguous(), *args))
    large = "agent_run_kernel" if discrete else "pre_coupling_kernel"
    assert not any("small_run_kernel" in name for name in above)
    assert any(large in name for name in above)
    assert any("small_run_kernel" in name for name in at_limit)
    assert not any(large in name for name in at_limit)


# ── Incremental dSB field above the persistent limit (sb_run, sb_run_int8) ───
# One block per agent for the whole call (csrc/sb/cuda/sb_incremental.cuh);
# SB_NATIVE_CUDA_DSB_FIELD=recompute takes the GEMM-per-step path instead.

# n: above the limit, one sweep chunk plus a partial one, several chunks; agents: one, odd.
INCREMENTAL_SIZES = [(PERSISTENT_MAX_N + 1, 1), (700, 37), (1500, 130)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("n,agents", INCREMENTAL_SIZES)
def test_incremental_dsb_equals_cpu_and_recompute(dtype, heat, int8, n, agents, monkeypatch):
    J = symmetric(n, dtype, seed=n, integer=True)
    x, m = state(n, agents, dtype, seed=agents)
    gx, gm = on_cuda(x, m)
    rx, rm = gx.clone(), gm.clone()
    args = (3, 200, 0.1, 0.01, 0.3 / n ** 0.5, heat)

    def run(J, x, m):
        if int8:
            torch.ops.sb_native.sb_run_int8(J.to(torch.int8), 1.0, x, m, *args)
        else:
            torch.ops.sb_native.sb_run(J, x, m, *args, True)

    run(J, x, m)
    run(J.to(CUDA), gx, gm)
    monkeypatch.setenv("SB_NATIVE_CUDA_DSB_FIELD", "recompute")
    run(J.to(CUDA), rx, rm)
    for got, cpu, recomputed in zip((gx, gm), (x, m), (rx, rm)):
        assert torch.equal(got.cpu(), cpu)
        assert torch.equal(got, recomputed)


def test_incremental_dsb_is_one_kernel_per_call():
    n = 800
    K = symmetric(n, torch.float32, seed=5, integer=True).to(torch.int8).to(CUDA)
    gx, gm = on_cuda(*state(n, 64, torch.float32))
    names = launched_kernels(lambda: torch.ops.sb_native.sb_run_int8(
        K, 1.0, gx, gm, 0, 50, 0.1, 0.01, 0.02, 0.0))
    assert sum("agent_run_kernel" in name for name in names) == 1
    assert not any("int8_pass_kernel" in name for name in names)


def test_persistent_kernel_is_one_launch_per_call():
    J = symmetric(100, torch.float32, seed=1)
    gJ, gx, gm = on_cuda(J, *state(100, 64, torch.float32))
    names = launched_kernels(lambda: torch.ops.sb_native.sb_run(gJ, gx, gm, 0, 50, 0.1, 0.01,
                                                                0.02, 0.0, False))
    assert len([name for name in names if "small_run_kernel" in name]) == 1
    assert not any("pre_coupling_kernel" in name or "gemm" in name.lower() for name in names)


# ── sb_run_batched ───────────────────────────────────────────────────────────
# Problems up to 512 variables: one persistent launch for the whole batch (a flat grid of
# (problem, agent tile) blocks); above, or with SB_NATIVE_CUDA_PERSISTENT_MAX_N=0, sb_run's
# paths per active problem. Each problem's states are sb_run's on it alone.

# (B, n, agents): one problem, a few, many; small n, the limit, just above it.
BATCHED_SIZES = [(1, 1, 5), (3, 45, 9), (37, 100, 37), (5, PERSISTENT_MAX_N, 9),
                 (3, PERSISTENT_MAX_N + 1, 20)]


def check_batched_cuda(J, x, m, active, q, args, exact):
    """CUDA against the CPU op (exact or within rounding) and against the CUDA sb_run on each
    active problem alone (exact); inactive problems untouched."""
    start_step, num_steps, time_step, pressure_slope, heat, discrete = args
    run_args = (start_step, num_steps, time_step, pressure_slope)
    cx, cm = x.clone(), m.clone()
    torch.ops.sb_native.sb_run_batched(J, cx, cm, active, *run_args, q, heat, discrete)
    gJ, gx, gm, gactive, gq = on_cuda(J, x, m, active, q)
    torch.ops.sb_native.sb_run_batched(gJ, gx, gm, gactive, *run_args, gq, heat, discrete)
    ax, am = on_cuda(x, m)
    for b in torch.nonzero(active).reshape(-1).tolist():
        xb, mb = ax[b], am[b]
        torch.ops.sb_native.sb_run(gJ[b], xb, mb, *run_args, float(q[b]), heat, discrete)
    for got, cpu, alone, before in zip((gx, gm), (cx, cm), (ax, am), (x, m)):
        if exact:
            assert torch.equal(got.cpu(), cpu)
        else:
            torch.testing.assert_close(got.cpu(), cpu, **TOL[x.dtype])
        assert torch.equal(got, alone)
        assert torch.equal(got.cpu()[~active], before[~active])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("problems,n,agents", BATCHED_SIZES)
def test_sb_run_batched(dtype, discrete, heat, problems, n, agents):
    J, x, m, active, q = batched_problem(problems, n, agents, dtype, discrete)
    check_batched_cuda(J, x, m, active, q, persistent_args(n, dtype, heat, discrete),
                       exact=discrete)


@pytest.mark.parametrize("discrete", [False, True])
def test_sb_run_batched_per_problem_paths(discrete, monkeypatch):
    monkeypatch.setenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N", "0")
    J, x, m, active, q = batched_problem(4, 60, 11, torch.float64, discrete)
    check_batched_cuda(J, x, m, active, q, persistent_args(60, torch.float64, 0.006, discrete),
                       exact=discrete)


def test_sb_run_batched_more_problems_than_a_grid_dimension():
    """70,000 problems: a flat grid of blocks (grid.y stops at 65,535)."""
    problems, n, agents = 70000, 3, 2
    g = torch.Generator().manual_seed(0)
    J = torch.randint(-3, 4, (problems, n, n), generator=g).to(torch.float32)
    J = torch.triu(J, 1) + torch.triu(J, 1).transpose(1, 2)
    x = 2 * torch.rand(problems, n, agents, generator=g) - 1
    m = 2 * torch.rand(problems, n, agents, generator=g) - 1
    active = torch.rand(problems, generator=g) < 0.9
    q = 0.1 + 0.1 * torch.rand(problems, generator=g, dtype=torch.float64)
    cx, cm = x.clone(), m.clone()
    gJ, gx, gm, gactive, gq = on_cuda(J, x, m, active, q)
    args = (0, 20, 0.1, 0.01)
    torch.ops.sb_native.sb_run_batched(J, cx, cm, active, *args, q, 0.0, True)
    torch.ops.sb_native.sb_run_batched(gJ, gx, gm, gactive, *args, gq, 0.0, True)
    assert torch.equal(gx.cpu(), cx)
    assert torch.equal(gm.cpu(), cm)
    assert torch.equal(cx[~active], x[~active])


def test_sb_run_batched_is_one_launch():
    J, x, m, active, q = batched_problem(40, 50, 16, torch.float32, False, CUDA)
    names = launched_kernels(lambda: torch.ops.sb_native.sb_run_batched(
        J, x, m, active, 0, 50, 0.1, 0.01, q, 0.0, False))
    assert len([name for name in names if "small_run_kernel" in name]) == 1
    assert not any("pre_coupling_kernel" in name or "gemm" in name.lower() for name in names)
