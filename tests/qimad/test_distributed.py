"""QIMADTorch across the ranks of a process group (gloo, 2 and 3 spawned processes): each rank
evaluates its block of the agents; the run equals the single-process run, every rank ends
with the same swarm, a state_dict saved mid-run resumes identically, and a rank whose closure
raises ends every rank with an error."""


import pytest
import torch
import torch.distributed as dist

from sb_native.optim import QIMADTorch
from tests.helpers import join_gloo, leave_rank, spawn_ranks
from tests.qimad.test_qimad import bumpy, closure_for, make_params, run, swarm

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="no torch.distributed")
SETTINGS = dict(num_agents=7, seed=11, total_steps=50)  # 7 agents: uneven blocks
TOL = dict(rtol=1e-12, atol=1e-12)


def optimizer(params, group, **extra):
    return QIMADTorch(params, process_group=group, **SETTINGS, **extra)


def snapshot(opt, params, losses):
    return dict(losses=losses, swarm=swarm(opt), params=[p.detach().clone() for p in params],
                agent_losses=opt.get_agent_losses())


def whole_run(group, steps=50, **extra):
    params = make_params("cpu")
    opt = optimizer(params, group, **extra)
    calls = []
    closure = closure_for(opt, params, bumpy, calls)
    result = snapshot(opt, params, [opt.step(closure) for _ in range(steps)])
    return dict(result, closures=len(calls))


def resumed_run(group):
    """25 steps, a state_dict, a fresh optimizer loading it, 25 more."""
    params = make_params("cpu")
    opt = optimizer(params, group)
    first = run(opt, params, 25)
    saved = opt.state_dict()
    again = optimizer(params, group)
    again.load_state_dict(saved)
    return snapshot(again, params, first + run(again, params, 25))


def failing_closure(group, **extra):
    """Rank 1's second closure of the fourth step raises: what this rank saw, (error type,
    message) or ("ok",)."""
    params = make_params("cpu")
    opt = optimizer(params, group, **extra)
    run(opt, params, 3)
    calls = []

    def closure():
        calls.append(1)
        if dist.get_rank() == 1 and len(calls) == 2:
            raise FloatingPointError("rank 1's loss blew up")
        opt.zero_grad()
        value = bumpy(*params)
        value.backward()
        return value
    try:
        opt.step(closure)
    except Exception as error:  # noqa: BLE001 - the test compares what each rank saw
        return type(error).__name__, str(error)
    return ("ok",)


def _worker(rank, world, port, directory):
    join_gloo(rank, world, port)
    results = {}
    try:
        results["whole"] = whole_run(True)
        results["k_eval"] = whole_run(True, steps=20, k_eval=3)
        results["resumed"] = resumed_run(True)
        results["failing"] = failing_closure(True)
    finally:
        leave_rank(rank, directory, results)


def assert_close(got, expected):
    assert got["losses"] == pytest.approx(expected["losses"], rel=1e-12, abs=1e-12)
    assert got["agent_losses"] == pytest.approx(expected["agent_losses"], rel=1e-12, abs=1e-12)
    for g, e in zip(got["swarm"] + got["params"], expected["swarm"] + expected["params"]):
        torch.testing.assert_close(g, e, **TOL)


@pytest.mark.parametrize("world", [2, 3])
def test_swarm_across_ranks_equals_one_process(world, tmp_path):
    ranks = spawn_ranks(_worker, world, tmp_path)
    whole, k_eval = whole_run(None), whole_run(None, steps=20, k_eval=3)
    # Each rank ran the closures of its block of the 7 agents only.
    blocks = [7 // world + (r < 7 % world) for r in range(world)]
    assert [r["whole"]["closures"] for r in ranks] == [50 * b for b in blocks]
    assert whole["closures"] == 50 * 7
    for results in ranks:
        assert_close(results["whole"], whole)
        assert_close(results["k_eval"], k_eval)
        assert_close(results["resumed"], whole)
    assert ranks[1]["failing"] == ("FloatingPointError", "rank 1's loss blew up")
    kind, message = ranks[0]["failing"]
    assert kind == "RankFailed" and "rank 1 of the process group failed" in message
