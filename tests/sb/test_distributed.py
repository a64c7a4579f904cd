"""SB agents across the ranks of a process group (sb_native/engine/distributed.py): gloo on the
CPU, 1, 2 and 3 processes spawned on 127.0.0.1 with a free port and a timeout. Every rank
must return exactly what one process returns for the same seed, and every rank the same
thing; mismatched settings and a failing rank end every rank with a clear error."""

import functools
import time
import warnings

import pytest
import torch
import torch.distributed as dist

import sb_native as sb
from tests.helpers import (
    NATIVE_ONLY,
    TWO_GPUS_NCCL,
    assert_ranks_fail_together,
    failing_on_rank_one,
    join_gloo,
    record_cases,
    save_on_gpu_rank,
    spawn_ranks,
    symmetric,
)

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="no torch.distributed")
COMMON = dict(verbose=False, sampling_period=20, convergence_threshold=5)


def spin_problem(n, *, seed, integer, density=1.0, dtype=torch.float64):
    return symmetric(n, dtype, seed=seed, integer=integer, density=density)


# ── the cases: each runs on every rank (process_group=True) and in one process (None) ──
def dsb_integer_dense(group):
    return sb.minimize(spin_problem(40, seed=1, integer=True), domain="spin", mode="discrete",
                       agents=10, max_steps=400, seed=3, process_group=group, **COMMON)


def dsb_all_agents(group):
    return sb.maximize(spin_problem(30, seed=2, integer=True), domain="binary", mode="discrete",
                       heated=True, agents=7, max_steps=300, best_only=False, seed=4,
                       process_group=group, **COMMON)


def bsb_float64_dense(group):
    return sb.minimize(spin_problem(60, seed=3, integer=False), domain="spin", agents=8,
                       max_steps=500, seed=5, process_group=group, **COMMON)


def bsb_float64_sparse(group):
    J = spin_problem(300, seed=4, integer=False, density=0.03).to_sparse_coo()
    return sb.minimize(J, domain="spin", agents=9, max_steps=200, best_only=False, seed=6,
                       process_group=group, **COMMON)


def integer_domain_no_early_stopping(group):
    Q = spin_problem(12, seed=5, integer=True)
    return sb.minimize(Q, torch.arange(12.0, dtype=torch.float64), domain="int3", agents=5,
                       max_steps=150, early_stopping=False, best_only=False, seed=7,
                       process_group=group, verbose=False)


def fewer_agents_than_ranks(group):
    """Two agents: with three ranks, the last one runs none."""
    return sb.minimize(spin_problem(16, seed=9, integer=True), domain="spin", mode="discrete",
                       agents=2, max_steps=200, best_only=False, seed=10, process_group=group,
                       **COMMON)


def history_of_all_agents(group):
    """The callback sees every rank's agents: the same points as one process (integer
    energies, so the mean's sums are exact in any grouping), wall time left out."""
    history = sb.History()
    vector, value = sb.maximize(spin_problem(24, seed=12, integer=True), domain="spin",
                                mode="discrete", agents=7, max_steps=600, seed=11,
                                process_group=group, callback=history, **COMMON)
    points = torch.tensor([[p.step, p.best, p.mean, p.frozen] for p in history],
                          dtype=torch.float64)
    return vector, value, points


def polished_agents(group):
    """polish=True: each rank polishes its own agents before they are gathered."""
    J = spin_problem(200, seed=13, integer=True, density=0.05).to_sparse_coo()
    return sb.maximize(J, domain="spin", mode="discrete", agents=9, max_steps=60,
                       early_stopping=False, best_only=False, seed=12, polish=True,
                       process_group=group, verbose=False)


def seeds_at_the_range_ends(group):
    """torch's whole seed range: the ranks once shared the seed in an int64 MAX against
    zeros, which turned a negative seed into 0 and failed past 2**63 on rank 0 only."""
    return [sb.minimize(spin_problem(20, seed=14, integer=True), domain="spin", agents=5,
                        max_steps=100, best_only=False, seed=seed, process_group=group,
                        **COMMON)[0] for seed in (-2**63, -5, 2**63, 2**64 - 1)]


CASES = [dsb_integer_dense, dsb_all_agents, bsb_float64_dense, bsb_float64_sparse,
         integer_domain_no_early_stopping, fewer_agents_than_ranks, history_of_all_agents,
         polished_agents, seeds_at_the_range_ends]


# ── cases that only make sense across ranks ──
def timeout_on_rank_zero(group):
    """No step limit: rank 0's clock alone ends the run, on every rank at the same step."""
    if dist.get_rank() == 1:
        time.sleep(0.3)  # rank 1 starts late: its own clock would stop later
    return sb.minimize(spin_problem(30, seed=6, integer=True), domain="spin", agents=6,
                       max_steps=None, early_stopping=False, timeout=0.5, seed=8,
                       best_only=False, process_group=group, verbose=False)


def unseeded(group):
    """No seed: rank 0 draws one and every rank runs with it."""
    return sb.minimize(spin_problem(20, seed=11, integer=True), domain="spin", agents=6,
                       max_steps=100, best_only=False, process_group=group, **COMMON)


def mismatched_seeds(group):
    return sb.minimize(spin_problem(20, seed=7, integer=True), domain="spin", agents=4,
                       max_steps=50, seed=dist.get_rank(), process_group=group, **COMMON)


def failing_rank(group):
    """Rank 1's third chunk raises; rank 0 must raise too, not wait."""
    with failing_on_rank_one("sb_run", 3):
        return sb.minimize(spin_problem(20, seed=8, integer=True), domain="spin", agents=4,
                           max_steps=2000, early_stopping=False, seed=9, process_group=group,
                           verbose=False, backend="native")


def failing_callback(group):
    """Rank 1's callback raises at its second point; rank 0 must raise too, not wait."""
    def callback(point):
        if dist.get_rank() == 1 and point.step == 40:
            raise MemoryError("rank 1 ran out of memory")

    return sb.minimize(spin_problem(20, seed=8, integer=True), domain="spin", agents=4,
                       max_steps=2000, early_stopping=False, sampling_period=20, seed=9,
                       process_group=group, verbose=False, callback=callback)


def _worker(rank, world, port, directory, names):
    join_gloo(rank, world, port)
    record_cases(rank, directory, {name: functools.partial(globals()[name], True) for name in names})


def spawn(world, names, tmp_path):
    """Every rank's {name: ("ok", result) or ("error", type, message)}."""
    return spawn_ranks(_worker, world, tmp_path, names)


def assert_same(got, expected):
    for g, e in zip(got, expected):
        assert torch.equal(g, e)


@NATIVE_ONLY
@pytest.mark.parametrize("world", [1, 2, 3])
def test_agents_across_ranks_equal_one_process(world, tmp_path):
    ranks = spawn(world, [case.__name__ for case in CASES], tmp_path)
    for case in CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = case(None)
        for rank, results in enumerate(ranks):
            status, *value = results[case.__name__]
            assert status == "ok", (case.__name__, rank, value)
            assert_same(value[0], expected)


@NATIVE_ONLY
def test_timeout_mismatch_and_failure(tmp_path):
    names = ["timeout_on_rank_zero", "unseeded", "mismatched_seeds", "failing_rank",
             "failing_callback"]
    ranks = spawn(2, names, tmp_path)
    for name in ("timeout_on_rank_zero", "unseeded"):  # the ranks agree with each other
        results = [r[name] for r in ranks]
        assert results[0][0] == results[1][0] == "ok", results
        assert_same(results[0][1], results[1][1])
    assert_ranks_fail_together(ranks, "mismatched_seeds", "failing_rank")
    assert_ranks_fail_together(ranks, "mismatched_seeds", "failing_callback")


def test_process_group_errors_name_the_argument():
    with pytest.raises(TypeError, match="process_group should be a torch.distributed"):
        sb.minimize(torch.eye(3), domain="spin", process_group="world", verbose=False)
    if not dist.is_initialized():
        with pytest.raises(ValueError, match="process_group=True needs torch.distributed"):
            sb.minimize(torch.eye(3), domain="spin", process_group=True, verbose=False)


# ── NCCL, where two GPUs and the CUDA build exist (never here: no GPU) ──
def dsb_on_this_rank_gpu(group):
    Q = spin_problem(40, seed=1, integer=True)
    return sb.minimize(Q, domain="spin", mode="discrete", agents=10, max_steps=400, seed=3,
                       device="cuda", process_group=group, **COMMON)


def _nccl_worker(rank, world, port, directory):
    save_on_gpu_rank(rank, world, port, directory, lambda _: dsb_on_this_rank_gpu(True))


@TWO_GPUS_NCCL
def test_nccl_agents_across_gpus_equal_one_gpu(tmp_path):
    ranks = spawn_ranks(_nccl_worker, 2, tmp_path)
    vector, value = dsb_on_this_rank_gpu(None)
    for got in ranks:
        assert_same(got, (vector.cpu(), value.cpu()))
