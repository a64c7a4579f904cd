"""CUDA kernels of the SB ops against the CPU kernels and the pure-torch path on the GPU.

Skipped unless the extension was built with CUDA and a GPU is present. float64 is compared
tightly (only the GEMM's summation order differs between cuBLAS and the CPU BLAS), float32
loosely; dSB on integer weights must give identical spins, since J @ sign(x) is then exact.
"""

import pytest
import torch

import sb_native
from sb_native.optimizer import fallback

pytestmark = pytest.mark.skipif(not sb_native.backend_info()["cuda_device"],
                                reason="needs the CUDA build of the extension and a GPU")

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}
# Energies of random couplings are sums of n terms in another order than the CPU's.
ENERGY_TOL = {torch.float64: dict(rtol=1e-10, atol=1e-9), torch.float32: dict(rtol=1e-4, atol=1e-2)}
CUDA = torch.device("cuda")


def symmetric(n, dtype, seed=0, integer=False, density=1.0):
    g = torch.Generator().manual_seed(seed)
    J = (torch.randint(-3, 4, (n, n), generator=g).to(dtype) if integer
         else torch.randn(n, n, generator=g, dtype=dtype))
    if density < 1.0:
        J = J * (torch.rand(n, n, generator=g) < density)
    J = torch.triu(J, 1)
    return J + J.t()


def state(n, agents, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    return tuple(2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1 for _ in range(2))


def csr_of(J):
    csr = J.to_sparse_csr()
    return csr.crow_indices().clone(), csr.col_indices().clone(), csr.values().clone()


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
    fallback.sb_step(gJ, rx, rm, *args)
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
    fallback.sb_run(gJ, rx, rm, *args)
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
    fallback.sb_run(J.to(CUDA).to_sparse_csr(), rx, rm, *args)
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
    assert torch.equal(fallback.sample_spins(gx).cpu(), fallback.sample_spins(x))


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
    assert torch.equal(fallback.sample_spins(gx).cpu(), fallback.sample_spins(x))
    assert torch.equal(fallback.sample_spins(gx), fallback.sample_spins(fx))


def window(n, agents, dtype, device):
    return dict(energies=torch.full((agents,), float("inf"), dtype=dtype, device=device),
                stability=torch.zeros(agents, dtype=torch.int16, device=device),
                bifurcated=torch.zeros(agents, dtype=torch.bool, device=device),
                final_spins=torch.zeros(n, agents, dtype=dtype, device=device))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("n", [20, 700])  # one row chunk and several
def test_sb_sample(dtype, integer, n):
    agents, threshold = 40, 3
    J = symmetric(n, dtype, integer=integer)
    cpu, gpu = window(n, agents, dtype, "cpu"), window(n, agents, dtype, CUDA)
    reference = {k: v.clone() for k, v in gpu.items()}
    x, _ = state(n, agents, dtype)
    g = torch.Generator().manual_seed(3)
    for _ in range(8):
        # Change only some agents between samplings so streaks both grow and reset.
        flip = torch.rand(agents, generator=g) < 0.3
        x[:, flip] = 2 * torch.rand(n, int(flip.sum()), generator=g, dtype=dtype) - 1
        field = J @ fallback.sample_spins(x)
        gx, gfield = on_cuda(x, field)
        torch.ops.sb_native.sb_sample(x, field, *cpu.values(), threshold)
        torch.ops.sb_native.sb_sample(gx, gfield, *gpu.values(), threshold)
        fallback.sb_sample(gx, gfield, *reference.values(), threshold)
        for key in ("stability", "bifurcated", "final_spins"):
            assert torch.equal(gpu[key].cpu(), cpu[key]), key
            assert torch.equal(gpu[key], reference[key]), key
        if integer:  # exact sums whatever the order
            assert torch.equal(gpu["energies"].cpu(), cpu["energies"])
        else:
            torch.testing.assert_close(gpu["energies"].cpu(), cpu["energies"], **ENERGY_TOL[dtype])
    assert bool(gpu["bifurcated"].any()), "the sequence must exercise freezing"


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
    w = window(0, 5, torch.float32, CUDA)
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
