"""QIMADTorch's swarm sharded over the ranks of a process group (update_order='synchronous'; gloo,
2 and 3 spawned processes): each rank holds and moves only its block of the agents' RMSProp
state, the ranks all-gather the moved positions, and the run equals the single-process run:
with agents reset for a gradient that is not finite (only their owner sees it), with k_eval and
loss_ema, from a sharded checkpoint saved mid-run and from a whole swarm's checkpoint; a rank
whose closure raises ends every rank with an error; step_batched and step_vectorized (sharded
and replicated); on NCCL where two GPUs exist."""

import math

import pytest
import torch
import torch.distributed as dist

from sb_native.optim import QIMADTorch
from tests.helpers import (
    TWO_GPUS_NCCL,
    join_gloo,
    leave_rank,
    save_on_gpu_rank,
    spawn_ranks,
)
from tests.qimad.test_distributed import SETTINGS, assert_close, failing_closure, snapshot
from tests.qimad.test_qimad import bumpy, make_params

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="no torch.distributed")
SYNC = dict(SETTINGS, update_order="synchronous")


def spiky_closure(opt, params, hits):
    """bumpy's closure, except that an agent whose first weight of the second tensor lies below
    -1.05 (a few percent of the evaluations) gets a finite loss and an infinite gradient
    (qimad_step resets it to the best weights)."""
    def closure():
        opt.zero_grad()
        value = bumpy(*params)
        value.backward()
        if params[1][0].item() < -1.05:
            params[1].grad[0] = math.inf
            hits.append(1)
        return value
    return closure


def steps_of(opt, params, steps, hits):
    closure = spiky_closure(opt, params, hits)
    return [opt.step(closure) for _ in range(steps)]


def sharded_run(group, steps=50, **extra):
    params = make_params("cpu")
    opt = QIMADTorch(params, process_group=group, **dict(SYNC, **extra))
    hits: list = []
    result = snapshot(opt, params, steps_of(opt, params, steps, hits))
    return dict(result, hits=len(hits),
                held=[tuple(opt.state[p]["square_avg"].shape) for p in params])


def resumed_run(group, whole_first: bool):
    """25 steps (in one process when whole_first), a state_dict, a fresh optimizer on the group
    loading it, 25 more."""
    params = make_params("cpu")
    opt = QIMADTorch(params, process_group=None if whole_first else group, **SYNC)
    hits: list = []
    first = steps_of(opt, params, 25, hits)
    saved = opt.state_dict()
    again = QIMADTorch(params, process_group=group, **SYNC)
    again.load_state_dict(saved)
    return dict(snapshot(again, params, first + steps_of(again, params, 25, hits)),
                shard=saved["qimad"].get("shard"))


def stacked_bumpy(*stacked):
    """bumpy of every agent at once: parameters stacked (agents, *shape), losses (agents,)."""
    return sum((p * p - 3 * torch.cos(2 * math.pi * p)).flatten(1).sum(1) for p in stacked)


def vectorised_run(group, order):
    """20 steps of step_batched (synchronous: sharded) or step_vectorized (sequential:
    replicated)."""
    params = make_params("cpu")
    opt = QIMADTorch(params, process_group=group, **dict(SYNC, update_order=order))
    if order == "synchronous":
        losses = [opt.step_batched(bumpy) for _ in range(20)]
    else:
        losses = [opt.step_vectorized(stacked_bumpy) for _ in range(20)]
    return snapshot(opt, params, losses)


def _worker(rank, world, port, directory):
    join_gloo(rank, world, port)
    results = {}
    try:
        results["whole"] = sharded_run(True)
        results["k_eval"] = sharded_run(True, steps=20, k_eval=3, loss_ema=0.5)
        results["resumed"] = resumed_run(True, whole_first=False)
        results["from_whole"] = resumed_run(True, whole_first=True)
        results["few"] = sharded_run(True, steps=10, num_agents=2)  # 3 ranks: one holds none
        results["failing"] = failing_closure(True, update_order="synchronous")
        for order in ("synchronous", "sequential"):
            results[order] = vectorised_run(True, order)
    finally:
        leave_rank(rank, directory, results)


def rows_of(result, lo, hi):
    """A single-process result with only the agents [lo, hi) of its swarm."""
    return dict(result, swarm=[s[lo:hi] for s in result["swarm"]])


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_swarm_equals_one_process(world, tmp_path):
    ranks = spawn_ranks(_worker, world, tmp_path)
    whole, k_eval = sharded_run(None), sharded_run(None, steps=20, k_eval=3, loss_ema=0.5)
    assert whole["hits"] > 0, "the run must reset agents for their gradients"
    blocks = [7 // world + (r < 7 % world) for r in range(world)]
    lo = 0
    for results, block in zip(ranks, blocks):
        hi = lo + block
        # Each rank holds its agents' RMSProp averages only, and checkpoints its agents.
        assert results["whole"]["held"] == [(block, 3, 4), (block, 5)]
        assert results["resumed"]["shard"] == [lo, hi, 7]
        for key in ("whole", "resumed", "from_whole"):
            assert_close(results[key], rows_of(whole, lo, hi))
        assert_close(results["k_eval"], rows_of(k_eval, lo, hi))
        lo = hi
    # Every agent whose gradient was made infinite was seen by exactly one rank.
    assert sum(r["whole"]["hits"] for r in ranks) == whole["hits"]
    assert ranks[1]["failing"] == ("FloatingPointError", "rank 1's loss blew up")
    for other in ranks[:1] + ranks[2:]:
        kind, message = other["failing"]
        assert kind == "RankFailed" and "rank 1 of the process group failed" in message
    # step_batched on the sharded swarm, step_vectorized on the replicated one.
    batched = vectorised_run(None, "synchronous")
    vectorized = vectorised_run(None, "sequential")
    lo = 0
    for results, block in zip(ranks, blocks):
        assert_close(results["synchronous"], rows_of(batched, lo, lo + block))
        assert_close(results["sequential"], vectorized)
        lo += block
    few = sharded_run(None, steps=10, num_agents=2)
    lo = 0
    for results, block in zip(ranks, [2 // world + (r < 2 % world) for r in range(world)]):
        assert results["few"]["held"] == [(block, 3, 4), (block, 5)]
        assert_close(results["few"], rows_of(few, lo, lo + block))
        lo += block


def test_a_sharded_checkpoint_loads_only_on_its_rank():
    params = make_params("cpu")
    opt = QIMADTorch(params, **SYNC)
    steps_of(opt, params, 2, [])
    saved = opt.state_dict()
    assert "shard" not in saved["qimad"]
    saved["qimad"]["shard"] = [3, 5, 7]
    with pytest.raises(ValueError, match=r"this state_dict holds agents \[3, 5\) of a swarm of 7 "
                                         r"sharded over a process group, and this optimizer "
                                         r"holds agents \[0, 7\) of 7 in one process: load each "
                                         r"rank's state_dict on the same rank of a group of the "
                                         r"same size"):
        QIMADTorch(make_params("cpu"), **SYNC).load_state_dict(saved)


# ── NCCL, where two GPUs and the CUDA build exist (never here: no GPU) ──
def sharded_on_this_rank_gpu(group):
    """20 steps of the sharded swarm on this rank's GPU: the best weights and losses."""
    params = make_params("cuda")
    opt = QIMADTorch(params, process_group=group, **SYNC)
    losses = steps_of(opt, params, 20, [])
    return torch.cat([p.detach().reshape(-1) for p in params]), torch.tensor(losses)


def _nccl_worker(rank, world, port, directory):
    save_on_gpu_rank(rank, world, port, directory, lambda _: sharded_on_this_rank_gpu(True))


@TWO_GPUS_NCCL
def test_nccl_sharded_swarm_equals_one_gpu(tmp_path):
    ranks = spawn_ranks(_nccl_worker, 2, tmp_path)
    weights, losses = sharded_on_this_rank_gpu(None)
    for got_weights, got_losses in ranks:
        torch.testing.assert_close(got_weights, weights.cpu(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got_losses, losses, rtol=1e-12, atol=1e-12)
