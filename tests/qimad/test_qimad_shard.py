"""qimad_update's and qimad_step's sharded swarm (`first`): square_avg and grad hold only the
agents [first, first + rows) while theta holds every agent. Each shard's call, made with the
whole swarm's positions, equals the whole swarm's call on its agents, on both backends, and the
records, draws and fates of every shard's call equal the whole call's: what QIMADTorch's
synchronous update across ranks is built on (tests/qimad/test_distributed.py)."""

import math

import pytest
import torch

from sb_native import _ops
from sb_native.optim import _reference, ops
from tests.qimad.test_qimad_ops import NATIVE_OPS, box_for, swarm_case
from tests.qimad.test_qimad_step import cloned, step_case

BACKENDS = ["torch"] + (["native"] if _ops.has_kernels(_ops.op_names("qimad"),
                                                       torch.device("cpu")) else [])
SHARDS = [(0, 2), (2, 5), (5, 6)]  # uneven blocks of the 6 agents of step_case


def exact_for(backend, n):
    """The native CPU kernel sums each agent's communication input alike whatever rows it moves
    up to 32 agents (beyond, one GEMM over the rows moved); the reference takes one product
    over the rows moved, which BLAS may round otherwise for another row count."""
    if backend == "native" and n <= 32:
        return dict(rtol=0, atol=0)
    return dict(rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [7, 40])
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("box", [False, True])
def test_update_of_a_shard_equals_the_whole_swarms(backend, n, sequential, box):
    lo, hi = 2, 5
    moved, tunnels = [2, 4], [4]
    whole = swarm_case(n, [5, 12, 10], torch.float64, "cpu", rows=moved, tunnel_rows=tunnels)
    whole += [sequential, box_for(whole) if box else None]
    shard = cloned(whole)
    shard[1], shard[2] = whole[1][lo:hi].clone(), whole[2][lo:hi].clone()
    ops.qimad_update(*whole, backend=backend)
    ops.qimad_update(*shard, lo, backend=backend)
    tol = exact_for(backend, n)
    torch.testing.assert_close(shard[0], whole[0], **tol)
    torch.testing.assert_close(shard[1], whole[1][lo:hi], **tol)
    assert torch.equal(shard[0][:lo], whole[0][:lo]) and torch.equal(shard[0][hi:], whole[0][hi:])


@NATIVE_OPS
@pytest.mark.parametrize("change, error, match", [
    (dict(first=-1), ValueError, r"first must lie in \[0, 7\], got -1"),
    (dict(first=8), ValueError, r"first must lie in \[0, 7\], got 8"),
    (dict(first=5), ValueError, r"square_avg must be \(rows, parameters\) with parameters = 27 "
                                r"and rows <= agents - first = 2, got shape \[3, 27\]"),
    (dict(grad_rows=2), ValueError, r"grad must have the rows of square_avg \(3\), got 2"),
    (dict(rows=[1, 3]), ValueError, r"rows must lie in \[2, 5\), got 1"),
    (dict(rows=[2, 5]), ValueError, r"rows must lie in \[2, 5\), got 5"),
])
def test_update_shard_argument_checks(change, error, match):
    args = swarm_case(7, [5, 12, 10], torch.float64, "cpu", rows=[2, 4]) + [False, None]
    args[1], args[2] = args[1][2:5].clone(), args[2][2:2 + change.get("grad_rows", 3)].clone()
    if "rows" in change:
        args[5] = torch.tensor(change["rows"])
    with pytest.raises(error, match=match):
        torch.ops.sb_native.qimad_update(*args, change.get("first", 2))


def shard_args(args, lo, hi):
    """A copy of step_case's args holding only the agents [lo, hi) of square_avg and grad, with
    first = lo, and every evaluated agent whose gradient is not finite passed with a NaN loss,
    as QIMADTorch's ranks pass it once they have gathered the losses."""
    out = cloned(args)
    out[1] = [t[lo:hi].clone() for t in args[1]]
    out[2] = [t[lo:hi].clone() for t in args[2]]
    losses = list(args[25])
    for i in args[24]:
        if not all(bool(torch.isfinite(g[i]).all()) for g in args[2]):
            losses[i] = math.nan
    out[25] = losses
    return out + [lo]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("step", [1, 2])  # the second step tunnels (step_case)
@pytest.mark.parametrize("poison", [True, False])
@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("global_stagnation", [False, True])
def test_step_of_each_shard_equals_the_whole_step(backend, step, poison, box, global_stagnation):
    whole = step_case("cpu", step=step, poison=poison, box=box,
                      global_stagnation=global_stagnation) + [False]
    shards = [shard_args(whole, lo, hi) for lo, hi in SHARDS]
    fates = ops.qimad_step(*whole, backend=backend)
    if step > 1 and not global_stagnation:  # agent 5 jumps (step_case)
        assert 2 in fates.tolist(), "the case must exercise a tunnelling jump"
    tol = exact_for(backend, 6)
    for (lo, hi), shard in zip(SHARDS, shards):
        assert ops.qimad_step(*shard, backend=backend).tolist() == fates.tolist()
        for b in range(2):
            torch.testing.assert_close(shard[0][b][lo:hi], whole[0][b][lo:hi], **tol)
            torch.testing.assert_close(shard[1][b], whole[1][b][lo:hi], **tol)
            assert torch.equal(shard[2][b], whole[2][b][lo:hi]), "the reset agents' gradients"
            assert torch.equal(shard[3][b], whole[3][b]), "the best weights"
        for index in (10, 11, 17, 18, 19, 20, 21, 22):  # angles, records and draw blocks
            assert torch.equal(shard[index], whole[index]), index
        for p, q in zip(shard[4], whole[4]):
            assert torch.equal(p, q), "the model's parameters"
        assert torch.equal(shard[26].get_state(), whole[26].get_state()), "the generator"


def test_step_agrees_with_the_reference_on_a_shard():
    """The native kernel and the reference take first alike (the whole case is covered by
    tests/qimad/test_qimad_step.py)."""
    if "native" not in BACKENDS:
        pytest.skip("needs the native QIMAD kernels")
    whole = step_case("cpu", step=2, poison=True) + [False]
    native, reference = shard_args(whole, 2, 5), shard_args(whole, 2, 5)
    fates = torch.ops.sb_native.qimad_step(*native)
    assert fates.tolist() == _reference.qimad_step(*reference).tolist()
    for x, y in zip(native[:4], reference[:4]):
        for u, v in zip(x, y):
            torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-6)


@NATIVE_OPS
def test_opcheck_of_a_shard():
    args = swarm_case(7, [5, 12, 10], torch.float64, "cpu", rows=[2, 4], tunnel_rows=[4])
    args += [False, None]
    args[1], args[2] = args[1][2:5].clone(), args[2][2:5].clone()
    torch.library.opcheck(torch.ops.sb_native.qimad_update.default, tuple(args) + (2,))
    step = shard_args(step_case("cpu", step=2) + [False], 2, 5)
    torch.library.opcheck(torch.ops.sb_native.qimad_step.default, tuple(step))


@NATIVE_OPS
def test_step_shard_argument_checks():
    args = shard_args(step_case("cpu") + [False], 2, 5)
    with pytest.raises(ValueError, match=r"first must lie in \[0, 6\], got 7"):
        torch.ops.sb_native.qimad_step(*args[:-1], 7)
    with pytest.raises(ValueError, match=r"rows <= agents - first = 2, got shape \[3, 8\]"):
        torch.ops.sb_native.qimad_step(*args[:-1], 4)
    args[2][1] = args[2][1][:2].clone()
    with pytest.raises(ValueError, match=r"square_avg\[1\] and grad\[1\] must be contiguous "
                                         r"\(3, parameters\) rows like theta\[1\]'s"):
        torch.ops.sb_native.qimad_step(*args)
