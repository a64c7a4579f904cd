"""CUDA kernels of the QIMADTorch ops: qimad_fidelity and qimad_update on the GPU against
their CPU kernels and their torch references on the same inputs (built with test_qimad_ops's
helpers), their argument errors against the CPU's, both ops on a shard of the swarm
(`first`), and QIMADTorch's native CUDA backend against its torch backend. Skipped unless the
extension was built with CUDA and a GPU is present."""

import copy

import pytest
import torch

from sb_native import _ops
from sb_native.optim import QIMADTorch, _reference, qimad_minimize
from tests.helpers import CUDA_ONLY
from tests.qimad.test_qimad import bowl, make_params, run, swarm
from tests.qimad.test_qimad_ops import angles, box_for, cloned, ring_mask, swarm_case

pytestmark = CUDA_ONLY
CUDA = torch.device("cuda")


def on_cuda(*tensors):
    return tuple(t.to(CUDA) for t in tensors)


# The transcendentals of the fidelities and the GEMM's summation order differ from the CPU's.
QIMAD_TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12),
             torch.float32: dict(rtol=1e-4, atol=1e-5)}


def to_cuda(args):
    return [x.to(CUDA) if torch.is_tensor(x) else x for x in args]


def fidelity_mask(n, topology):
    if topology == "complete":
        return torch.ones(n, n, dtype=torch.bool).fill_diagonal_(False)
    if topology == "none":  # isolated agents: all-zero rows, kept at 0 by eps
        return torch.zeros(n, n, dtype=torch.bool)
    coin = torch.rand(n, n, generator=torch.Generator().manual_seed(1)) < 0.4
    return (ring_mask(n, "cpu") | coin).fill_diagonal_(False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1.0, 2.0, 2.5])
@pytest.mark.parametrize("n", [1, 13, 300])  # 300: more agents than a block's threads
@pytest.mark.parametrize("topology", ["complete", "random", "none"])
def test_qimad_fidelity_cuda(dtype, k, n, topology):
    a, b = angles(n, dtype, "cpu", seed=2)
    mask = fidelity_mask(n, topology)
    W = torch.ops.sb_native.qimad_fidelity(*on_cuda(a, b, mask), k, 1e-8)
    torch.testing.assert_close(W.cpu(), torch.ops.sb_native.qimad_fidelity(a, b, mask, k, 1e-8),
                               **QIMAD_TOL[dtype])
    torch.testing.assert_close(W, _reference.qimad_fidelity(*on_cuda(a, b, mask), k, 1e-8),
                               **QIMAD_TOL[dtype])
    assert bool((W.cpu()[~mask] == 0).all())


def test_qimad_fidelity_cuda_no_agents():
    none = torch.zeros(0, device=CUDA)
    mask = torch.zeros(0, 0, dtype=torch.bool, device=CUDA)
    W = torch.ops.sb_native.qimad_fidelity(none, none, mask, 2.0, 1e-8)
    assert W.shape == (0, 0) and W.device.type == "cuda"


SIZES = [5, 12, 1, 0, 900]  # an empty segment, and one wider than a block
QIMAD_CASES = {
    "all rows": dict(),
    "all rows, tunnels": dict(tunnel_rows=[0, 1, 6]),
    "subset with tunnels": dict(rows=[0, 2, 3, 6], tunnel_rows=[2, 6]),
    "subset, no tunnels": dict(rows=[1, 4, 5]),
    "two fidelity matrices": dict(ks=(1.0, 3.0), seg_w=[1, 1, 0, 0, 1], tunnel_rows=[1]),
    "three matrices, subset": dict(ks=(1.0, 2.0, 3.0), seg_w=[2, 0, 0, 1, 2], rows=[0, 3, 4],
                                   tunnel_rows=[0, 4]),
    "no rows": dict(rows=[]),
    "large swarm": dict(n=40, rows=list(range(0, 40, 3)), tunnel_rows=[3, 9]),
    "large swarm, two matrices": dict(n=40, ks=(1.0, 3.0), seg_w=[1, 1, 0, 0, 1]),
    # More elements than the grid's threads: the grid-stride loop wraps.
    "many parameters": dict(n=9, sizes=[70001, 3, 5], seg_w=[0, 1, 0], ks=(1.0, 2.0),
                            tunnel_rows=[2, 8]),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", QIMAD_CASES)
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("box", [False, True])
def test_qimad_update_cuda(dtype, case, sequential, box):
    case = dict(QIMAD_CASES[case])
    sizes = case.pop("sizes", SIZES)
    cpu = swarm_case(case.pop("n", 7), sizes, dtype, "cpu", seed=5, **case)
    cpu += [sequential, box_for(cpu) if box else None]
    gpu = to_cuda(cpu)
    reference = cloned(gpu)
    torch.ops.sb_native.qimad_update(*cpu)
    torch.ops.sb_native.qimad_update(*gpu)
    _reference.qimad_update(*reference)
    for i in (0, 1):  # theta, square_avg; rows not updated must be untouched
        torch.testing.assert_close(gpu[i].cpu(), cpu[i], **QIMAD_TOL[dtype])
        torch.testing.assert_close(gpu[i], reference[i], **QIMAD_TOL[dtype])


def test_qimad_update_cuda_on_a_side_stream():
    cpu = swarm_case(7, SIZES, torch.float64, "cpu", seed=6, rows=[0, 2, 5], tunnel_rows=[5])
    gpu = to_cuda(cpu)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.ops.sb_native.qimad_update(*gpu)
        torch.ops.sb_native.qimad_update(*gpu)
    side.synchronize()
    torch.ops.sb_native.qimad_update(*cpu)
    torch.ops.sb_native.qimad_update(*cpu)
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], **QIMAD_TOL[torch.float64])


def assert_same_error(op, cpu_args, gpu_args):
    """The CUDA kernel raises the CPU kernel's error type with the CPU kernel's message."""
    with pytest.raises((ValueError, TypeError)) as on_cpu:
        op(*cpu_args)
    with pytest.raises(on_cpu.type) as on_gpu:
        op(*gpu_args)
    assert str(on_gpu.value).splitlines()[0] == str(on_cpu.value).splitlines()[0]


@pytest.mark.parametrize("index, bad", [
    (0, torch.zeros(7, 5, dtype=torch.float64)),
    (2, torch.zeros(27, 7, dtype=torch.float64).t()),
    (1, torch.zeros(7, 27, dtype=torch.float32)),
    (3, torch.zeros(26, dtype=torch.float64)),
    (4, torch.zeros(7, 7, dtype=torch.float64)),
    (5, torch.tensor([2, 1])),
    (5, torch.tensor([0, 7])),
    (5, torch.tensor([0.0])),
    (7, torch.tensor([0, 5, 20, 26])),
    (7, torch.tensor([0, 17, 5, 27])),
    (10, torch.tensor([0, 0, 3])),
    (11, torch.tensor([1])),
])
def test_qimad_update_cuda_argument_checks(index, bad):
    cpu = swarm_case(7, [5, 12, 10], torch.float64, "cpu")
    gpu = to_cuda(cpu)
    cpu[index], gpu[index] = bad, bad.to(CUDA)
    assert_same_error(torch.ops.sb_native.qimad_update, cpu, gpu)


def test_qimad_update_cuda_index_and_device_checks():
    cpu = swarm_case(4, [3], torch.float64, "cpu", rows=[0, 2])
    cpu[11], cpu[12] = torch.tensor([1]), torch.zeros(1, 3, dtype=torch.float64)
    assert_same_error(torch.ops.sb_native.qimad_update, cpu, to_cuda(cpu))
    gpu = to_cuda(swarm_case(4, [3], torch.float64, "cpu"))
    gpu[4] = gpu[4].cpu()
    with pytest.raises(ValueError, match="W must be on the device of theta"):
        torch.ops.sb_native.qimad_update(*gpu)


def test_qimad_fidelity_cuda_argument_checks():
    a, b = angles(4, torch.float64, "cpu")
    mask = torch.ones(4, 4, dtype=torch.bool)
    for args in [(a[None], b, mask), (a, b.float(), mask), (a, b, mask.double()),
                 (a, b, mask[:3]), (a.long(), b.long(), mask), (a, b[:3], mask)]:
        assert_same_error(torch.ops.sb_native.qimad_fidelity, (*args, 2.0, 1e-8),
                          (*on_cuda(*args), 2.0, 1e-8))
    with pytest.raises(ValueError, match="beta and mask must be on the device of alpha"):
        torch.ops.sb_native.qimad_fidelity(a.to(CUDA), b.to(CUDA), mask, 2.0, 1e-8)


def test_qimadtorch_cuda_picks_the_native_kernels():
    assert _ops.has_kernels(_ops.op_names("qimad"), CUDA)
    params = make_params(CUDA)
    opt = QIMADTorch(params, num_agents=3, seed=0, backend="auto")
    run(opt, params, 1)
    assert opt._buckets[0].backend == "native" and opt._runtime.backend == "native"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_qimadtorch_native_cuda_equals_torch_cuda_on_an_mlp(dtype):
    """A small MLP, two parameter groups (two fidelity matrices), a ring, k_eval < agents:
    the native CUDA kernels and the pure-torch path on the same GPU follow one trajectory.
    Tunnelling, a discrete decision, is left to the float64 test below."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 6, generator=g, dtype=dtype).to(CUDA)
    y = torch.randint(0, 3, (64,), generator=g).to(CUDA)
    torch.manual_seed(0)
    template = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
                                   torch.nn.Linear(8, 3)).to(CUDA, dtype)
    runs = []
    for backend in ("native", "torch"):
        model = copy.deepcopy(template)
        groups = [{"params": list(model[0].parameters()), "k": 3, "gamma": 0.2},
                  {"params": list(model[2].parameters())}]
        opt = QIMADTorch(groups, num_agents=6, eta=0.05, k_eval=4, topology="ring", seed=3,
                         total_steps=20, backend=backend)
        for _ in range(6):  # too few evaluations per agent to stagnate: no tunnels
            best = opt.step_batched(
                lambda forward: torch.nn.functional.cross_entropy(forward(X), y), module=model)
        assert opt._buckets[0].backend == backend
        runs.append((best, swarm(opt), [p.detach().clone() for p in model.parameters()]))
    tol = QIMAD_TOL[dtype]
    assert runs[0][0] == pytest.approx(runs[1][0], rel=tol["rtol"], abs=tol["atol"])
    for a, b in zip(runs[0][1] + runs[0][2], runs[1][1] + runs[1][2]):
        torch.testing.assert_close(a, b, **tol)


def test_qimadtorch_native_cuda_equals_torch_cuda_with_tunnels():
    """The CPU test's tunnelling configuration (test_qimad.py) on the GPU."""
    results = []
    for backend in ("native", "torch"):
        params = make_params(CUDA, seed=4)
        groups = [{"params": params[:1], "k": 3, "gamma": 0.2}, {"params": params[1:]}]
        opt = QIMADTorch(groups, num_agents=7, eta=0.3, k_eval=5, topology="random", seed=2,
                         total_steps=50, cooling="linear", backend=backend)
        opt.enable_tracking()
        best = run(opt, params, 30, bowl)
        results.append((best, swarm(opt), opt.get_log()["tunnels"]))
    assert sum(results[0][2]) > 0
    assert results[0][2] == results[1][2]
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-10, abs=1e-10)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)




@pytest.mark.parametrize("stagnation", ["personal", "global"])
def test_qimad_minimize_on_cuda(stagnation):
    """Bounds on the GPU run the swarm there: the native CUDA kernels follow the torch backend
    on the same device (the same generator, so the same draws), inside the box."""
    lower = torch.full((10,), -5.12, dtype=torch.float64, device=CUDA)
    rastrigin = lambda X: 10 * X.shape[1] + (X * X - 10 * torch.cos(2 * torch.pi * X)).sum(1)  # noqa: E731
    runs = [qimad_minimize(rastrigin, (lower, -lower), seed=3, maxiter=100, backend=backend,
                           stagnation=stagnation) for backend in ("native", "torch")]
    assert runs[0].x.device.type == "cuda"
    assert bool(((runs[0].x >= lower) & (runs[0].x <= -lower)).all())
    torch.testing.assert_close(runs[0].x, runs[1].x, **QIMAD_TOL[torch.float64])
    assert runs[0].fun == pytest.approx(runs[1].fun, rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sequential", [False, True])
def test_qimad_update_of_a_shard_cuda(dtype, sequential):
    """square_avg and grad holding the agents [2, 5) only (first = 2; a sharded swarm): the GPU
    against the CPU kernel on the same shard."""
    cpu = swarm_case(7, [5, 12, 10], dtype, "cpu", seed=3, rows=[2, 4], tunnel_rows=[4])
    cpu += [sequential, None]
    cpu[1], cpu[2] = cpu[1][2:5].clone(), cpu[2][2:5].clone()
    gpu = to_cuda(cpu)
    torch.ops.sb_native.qimad_update(*cpu, 2)
    torch.ops.sb_native.qimad_update(*gpu, 2)
    for i in (0, 1):
        torch.testing.assert_close(gpu[i].cpu(), cpu[i], **QIMAD_TOL[dtype])


def test_qimad_step_of_a_shard_cuda():
    """qimad_step with first on the GPU (the composite) against the torch reference there, from
    the same state and generator."""
    from tests.qimad.test_qimad_shard import shard_args
    from tests.qimad.test_qimad_step import assert_same_state, step_case

    native = shard_args(step_case("cuda", step=2) + [False], 2, 5)
    reference = shard_args(step_case("cuda", step=2) + [False], 2, 5)
    fates = torch.ops.sb_native.qimad_step(*native)
    assert fates.tolist() == _reference.qimad_step(*reference).tolist()
    assert_same_state(native, reference, dict(rtol=1e-6, atol=1e-6))
