"""SB variables across ranks (sb_native.RowBlock, engine/rows.py): runs on 1, 2 and 3 gloo ranks
(spawned on 127.0.0.1) against the single-process run of the whole problem stored sparse:
every rank must return exactly what one process returns, uneven blocks and the extra spin of
a linear term included; and the faults (a timeout, mismatched problems, a failing rank or
callback, memory, polish) on 2 ranks."""

import functools
import os
import time
import warnings

import pytest
import torch
import torch.distributed as dist

import sb_native as sb
from sb_native import io
from sb_native.models import QUBO, MaxCut
from tests.helpers import (
    NATIVE_ONLY,
    TWO_GPUS_NCCL,
    assert_ranks_fail_together,
    failing_on_rank_one,
    join_gloo,
    record_cases,
    save_on_gpu_rank,
    spawn_ranks,
)
from tests.sb.test_rows import random_gset, random_qubo

COMMON = dict(verbose=False, sampling_period=20, convergence_threshold=5)

# ── runs across ranks: each case runs on every rank (RowBlock) and in one process ──

def gset_dsb(directory, rows):
    path = os.path.join(directory, "g.txt")
    kwargs = dict(mode="discrete", agents=10, max_steps=400, seed=3, **COMMON)
    if rows:
        return sb.RowBlock.from_gset(path, dtype=torch.float64).maximize(**kwargs)
    return MaxCut.from_gset(path, dtype=torch.float64, sparse=True).maximize(**kwargs)


def gset_bsb_all_agents(directory, rows):
    """Non-integer weights, bSB, 70 agents (two words per packed row), every agent."""
    path = os.path.join(directory, "w.txt")
    kwargs = dict(agents=70, max_steps=300, best_only=False, seed=4, **COMMON)
    if rows:
        return sb.RowBlock.from_gset(path, dtype=torch.float64).maximize(**kwargs)
    return MaxCut.from_gset(path, dtype=torch.float64, sparse=True).maximize(**kwargs)


def qubo_heated_dsb(directory, rows):
    """Bits: a linear term, hence the extra spin on the last rank."""
    path = os.path.join(directory, "q.qubo")
    kwargs = dict(mode="discrete", heated=True, agents=9, max_steps=300, seed=5, **COMMON)
    if rows:
        return sb.RowBlock.from_qubo(path, dtype=torch.float64).minimize(**kwargs)
    return QUBO(io.read_qubo(path), dtype=torch.float64).minimize(**kwargs)


def qubo_bsb_no_early_stopping(directory, rows):
    path = os.path.join(directory, "q.qubo")
    kwargs = dict(agents=6, max_steps=120, early_stopping=False, best_only=False, seed=6,
                  verbose=False)
    if rows:
        return sb.RowBlock.from_qubo(path, dtype=torch.float64).minimize(**kwargs)
    return QUBO(io.read_qubo(path), dtype=torch.float64).minimize(**kwargs)


def zero_plane_steps(directory, rows):
    """gset_dsb with rank 0's header claiming a sign 0 every third step: every rank then sends
    a zero plane too (all its bits 0 here), and the run is still the one-process run."""
    if not rows:
        return gset_dsb(directory, rows)
    from sb_native.engine import ops
    calls, original = [], ops.sb_rows_pack

    def claims_zeros(position, packed, spins, *, backend):
        original(position, packed, spins, backend=backend)
        calls.append(spins)
        if not spins and dist.get_rank() == 0 and len(calls) % 3 == 0:
            packed[-1, 0] = 1
    ops.sb_rows_pack = claims_zeros
    try:
        return gset_dsb(directory, rows)
    finally:
        ops.sb_rows_pack = original


def gset_dsb_history(directory, rows):
    """gset_dsb with a callback that also stops at step 300: the same points (cut values,
    integer weights: exact) on every rank as in one process, wall time left out; returns
    (vector, value and the points)."""
    history = sb.History()

    def record_and_stop(point):
        history(point)
        return point.step >= 300

    path = os.path.join(directory, "g.txt")
    kwargs = dict(mode="discrete", agents=10, max_steps=400, seed=3, callback=record_and_stop,
                  **COMMON)
    if rows:
        vector, value = sb.RowBlock.from_gset(path, dtype=torch.float64).maximize(**kwargs)
    else:
        vector, value = MaxCut.from_gset(path, dtype=torch.float64, sparse=True).maximize(
            **kwargs)
    points = torch.tensor([[p.step, p.best, p.mean, p.frozen] for p in history],
                          dtype=torch.float64)
    assert history.steps[-1] == 300
    return vector, torch.cat([value.reshape(1), points.reshape(-1)])


CASES = [gset_dsb, gset_bsb_all_agents, qubo_heated_dsb, qubo_bsb_no_early_stopping,
         zero_plane_steps, gset_dsb_history]
NON_INTEGER_WEIGHTS = {gset_bsb_all_agents}


def timeout_on_rank_zero(directory, rows):
    if dist.get_rank() == 1:
        time.sleep(0.3)  # rank 1 starts late: its own clock would stop later
    return sb.RowBlock.from_gset(os.path.join(directory, "g.txt")).maximize(
        agents=6, max_steps=None, early_stopping=False, timeout=0.5, seed=8, best_only=False,
        verbose=False)


def mismatched_problems(directory, rows):
    name = "g.txt" if dist.get_rank() == 0 else "w.txt"  # w.txt has more nodes
    return sb.RowBlock.from_gset(os.path.join(directory, name)).maximize(
        agents=4, max_steps=50, seed=1, **COMMON)


def failing_rank(directory, rows):
    """Rank 1's tenth step raises; rank 0 must raise too, not wait."""
    with failing_on_rank_one("sb_rows_step", 10):
        return sb.RowBlock.from_gset(os.path.join(directory, "g.txt")).maximize(
            agents=4, max_steps=2000, early_stopping=False, seed=9, verbose=False)


def failing_callback(directory, rows):
    """Rank 1's callback raises at its second point; rank 0's must not wait for it."""
    def callback(point):
        if dist.get_rank() == 1 and point.step == 40:
            raise MemoryError("rank 1 ran out of memory")

    return sb.RowBlock.from_gset(os.path.join(directory, "g.txt")).maximize(
        agents=4, max_steps=2000, early_stopping=False, sampling_period=20, seed=9,
        verbose=False, callback=callback)


def memory_short_on_rank_one(directory, rows):
    """Rank 1's memory budget cannot hold its block: it raises MemoryError naming the sizes,
    rank 0 RankFailed, before either draws its state."""
    if dist.get_rank() == 1:
        os.environ["SB_NATIVE_MEMORY_LIMIT"] = "1K"
    try:
        return sb.RowBlock.from_gset(os.path.join(directory, "g.txt")).maximize(
            agents=64, max_steps=10, seed=9, verbose=False)
    finally:
        os.environ.pop("SB_NATIVE_MEMORY_LIMIT", None)


def polish_refused(directory, rows):
    """polish=True needs each flip's neighbours, held by other ranks: refused on every rank."""
    return sb.RowBlock.from_gset(os.path.join(directory, "g.txt")).maximize(
        agents=4, max_steps=10, polish=True, verbose=False)


def write_problems(directory):
    random_gset(directory / "g.txt", 53, 200, seed=1)  # 53: uneven blocks on 2 and 3 ranks
    random_gset(directory / "w.txt", 61, 250, seed=2, integer=False)
    random_qubo(directory / "q.qubo", 40, 160, seed=3)


def _worker(rank, world, port, directory, names):
    join_gloo(rank, world, port)
    record_cases(rank, directory, {name: functools.partial(globals()[name], directory, True) for name in names})


@NATIVE_ONLY
@pytest.mark.parametrize("world", [1, 2, 3])
def test_variables_across_ranks_equal_one_process(world, tmp_path):
    write_problems(tmp_path)
    ranks = spawn_ranks(_worker, world, tmp_path, [case.__name__ for case in CASES])
    for case in CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = case(str(tmp_path), False)
        for rank, results in enumerate(ranks):
            status, *value = results[case.__name__]
            assert status == "ok", (case.__name__, rank, value)
            (vectors, values), (want_vectors, want_values) = value[0], expected
            assert torch.equal(vectors, want_vectors), (case.__name__, rank)
            # The values are sums over the ranks' rows: another order for non-integer weights.
            exact = case not in NON_INTEGER_WEIGHTS
            torch.testing.assert_close(values, want_values, rtol=0 if exact else 1e-13, atol=0)


@NATIVE_ONLY
def test_rows_timeout_mismatch_and_failure(tmp_path):
    write_problems(tmp_path)
    names = ["timeout_on_rank_zero", "mismatched_problems", "failing_rank", "failing_callback",
             "polish_refused", "memory_short_on_rank_one"]
    ranks = spawn_ranks(_worker, 2, tmp_path, names)
    status, kind, message = ranks[1]["memory_short_on_rank_one"]
    assert (status, kind) == ("error", "MemoryError"), message
    assert message.startswith("A run of 64 agents on 26 spins needs")  # 53 = 27 + 26 rows
    assert "more than the 1024 bytes allowed on cpu by SB_NATIVE_MEMORY_LIMIT" in message
    status, kind, message = ranks[0]["memory_short_on_rank_one"]
    assert (status, kind) == ("error", "RankFailed") and "the memory check" in message
    for results in ranks:
        status, kind, message = results["polish_refused"]
        assert (status, kind) == ("error", "ValueError") and "polish is not available" in message
    first, second = (r["timeout_on_rank_zero"] for r in ranks)
    assert first[0] == second[0] == "ok", (first, second)
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1]))
    assert_ranks_fail_together(ranks, "mismatched_problems", "failing_rank")
    assert_ranks_fail_together(ranks, "mismatched_problems", "failing_callback")


def test_row_block_needs_a_process_group():
    with pytest.raises(ValueError, match="RowBlock needs a process group"):
        sb.RowBlock(torch.eye(3), process_group=None)


# ── NCCL, where two GPUs and the CUDA build exist (never here: no GPU) ──
def rows_on_gpu(rank, directory):
    block = sb.RowBlock.from_gset(os.path.join(directory, "g.txt"), dtype=torch.float64,
                                  device=f"cuda:{rank}")
    return block.maximize(mode="discrete", agents=10, max_steps=400, seed=3, **COMMON)


def _nccl_worker(rank, world, port, directory):
    save_on_gpu_rank(rank, world, port, directory, lambda r: rows_on_gpu(r, directory))


@TWO_GPUS_NCCL
def test_nccl_rows_across_gpus_equal_one_gpu(tmp_path):
    write_problems(tmp_path)
    ranks = spawn_ranks(_nccl_worker, 2, tmp_path)
    vector, value = MaxCut.from_gset(tmp_path / "g.txt", dtype=torch.float64, sparse=True,
                                     device="cuda").maximize(mode="discrete", agents=10,
                                                             max_steps=400, seed=3, **COMMON)
    for got in ranks:
        assert torch.equal(got[0], vector.cpu()) and torch.equal(got[1], value.cpu())
