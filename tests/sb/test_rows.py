"""SB variables across ranks (sb_native.RowBlock, engine/rows.py): the row-block ops against
their torch reference and opcheck; the row readers of sb_native.io against the whole-file
readers; and runs on 1, 2 and 3 gloo ranks (spawned on 127.0.0.1) against the single-process
run of the whole problem stored sparse: every rank must return exactly what one process
returns, uneven blocks and the extra spin of a linear term included."""

import functools
import gzip
import os
import time
import warnings

import pytest
import torch
import torch.distributed as dist

import sb_native as sb
from sb_native import io
from sb_native.engine import reference as torch_ref
from sb_native.models import QUBO, MaxCut
from tests.helpers import (
    NATIVE_ONLY,
    TWO_GPUS_NCCL,
    assert_ranks_fail_together,
    join_gloo,
    record_cases,
    save_on_gpu_rank,
    spawn_ranks,
)

COMMON = dict(verbose=False, sampling_period=20, convergence_threshold=5)
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}


def block(rows, gathered_rows, agents, dtype, *, integer, seed=0, density=0.3):
    """A random rectangular CSR block (rows x gathered_rows), a state and its gathered f(x)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand((rows, gathered_rows), generator=g) < density
    values = (torch.randint(-3, 4, (rows, gathered_rows), generator=g).to(dtype) if integer
              else torch.randn((rows, gathered_rows), generator=g, dtype=dtype)) * mask
    csr = values.to_sparse_csr()
    x = 2 * torch.rand((rows, agents), generator=g, dtype=dtype) - 1
    m = 2 * torch.rand((rows, agents), generator=g, dtype=dtype) - 1
    positions = 2 * torch.rand((gathered_rows, agents), generator=g, dtype=dtype) - 1
    return (csr.crow_indices().clone(), csr.col_indices().clone(), csr.values().clone()), x, m, \
        positions


def packed(positions, spins):
    words = torch.zeros((positions.shape[0] + 1, (positions.shape[1] + 63) // 64),
                        dtype=torch.int64)
    torch_ref.sb_rows_pack(positions, words, spins)
    return words


# ── the ops ──

def zero_plane(positions):
    """Packed signs, then the zero plane (1 where the sign is 0): the form of a step where
    some x is exactly 0."""
    zero = torch.where((positions > 0) | (positions < 0), -1.0, 0.0).to(positions.dtype)
    return torch.cat([packed(positions, False)[:-1], packed(zero, True)[:-1]], dim=1)


@NATIVE_ONLY
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("form", ["float", "int8", "packed", "zero plane"])
@pytest.mark.parametrize("agents", [1, 64, 70])
@pytest.mark.parametrize("heated", [False, True])
def test_rows_step_matches_reference(dtype, form, agents, heated):
    csr, x, m, positions = block(9, 23, agents, dtype, integer=form != "float", seed=agents)
    positions[::4, ::3] = 0.0  # signs 0: what the int8 and zero-plane forms carry
    signs = torch.sign(positions).to(torch.int8)
    gathered = {"float": positions, "int8": signs, "packed": packed(positions, False)[:-1],
                "zero plane": zero_plane(positions)}[form]
    m0 = torch.rand_like(m) if heated else torch.empty(0, dtype=dtype)
    heat = 0.01 if heated else 0.0
    for finish, begin in [(True, True), (True, False), (False, True)]:
        states = [(x.clone(), m.clone(), m0.clone()) for _ in range(2)]
        for op, (xs, ms, m0s) in zip([torch.ops.sb_native.sb_rows_step, torch_ref.sb_rows_step],
                                     states):
            op(*csr, gathered, xs, ms, m0s, -0.07, 0.1, 0.3, heat, finish, begin)
        for native, ref in zip(states[0], states[1]):
            torch.testing.assert_close(native, ref, **TOL[dtype])
        if form == "zero plane":  # the same step as int8 signs, bit for bit
            as_int8 = (x.clone(), m.clone(), m0.clone())
            torch.ops.sb_native.sb_rows_step(*csr, signs, *as_int8, -0.07, 0.1, 0.3, heat,
                                             finish, begin)
            assert all(torch.equal(a, b) for a, b in zip(states[0], as_int8))


@NATIVE_ONLY
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("agents", [1, 63, 64, 65, 130])
def test_rows_pack_and_energy_match_reference(dtype, agents):
    csr, x, _, positions = block(11, 30, agents, dtype, integer=True, seed=agents)
    x[3, 0] = 0.0  # a zero sign: counted in the header row
    for spins in (False, True):
        native = torch.full((12, (agents + 63) // 64), -5, dtype=torch.int64)
        torch.ops.sb_native.sb_rows_pack(x, native, spins)
        assert torch.equal(native, packed(x, spins))
        assert int(native[-1, 0]) == (0 if spins else 1)
    spins = packed(positions, True)[:-1]
    energies = [torch.full((agents,), 7.0, dtype=dtype) for _ in range(2)]
    torch.ops.sb_native.sb_rows_energy(*csr, spins, x, energies[0])
    torch_ref.sb_rows_energy(*csr, spins, x, energies[1])
    assert torch.equal(energies[0], energies[1])  # integer weights: exact sums


@NATIVE_ONLY
def test_rows_pack_without_agents_writes_nothing():
    for op in (torch.ops.sb_native.sb_rows_pack, torch_ref.sb_rows_pack):
        op(torch.zeros(3, 0), torch.empty(4, 0, dtype=torch.int64), False)


@NATIVE_ONLY
def test_rows_ops_opcheck_and_errors():
    csr, x, m, positions = block(5, 12, 70, torch.float64, integer=True)
    words = packed(positions, True)[:-1]
    torch.library.opcheck(torch.ops.sb_native.sb_rows_step.default,
                          (*csr, words, x.clone(), m.clone(), m.clone(), -0.1, 0.1, 0.2, 0.01,
                           True, True))
    torch.library.opcheck(torch.ops.sb_native.sb_rows_pack.default,
                          (x, torch.zeros((6, 2), dtype=torch.int64), False))
    torch.library.opcheck(torch.ops.sb_native.sb_rows_energy.default,
                          (*csr, words, x, torch.zeros(70, dtype=torch.float64)))
    step = torch.ops.sb_native.sb_rows_step
    empty = torch.empty(0, dtype=torch.float64)
    with pytest.raises(ValueError, match="is out of range for gathered's 1 rows"):
        step(*csr, words[:1], x, m, empty, -0.1, 0.1, 0.2, 0.0, True, True)
    with pytest.raises(ValueError, match="gathered .int64, packed. must have 2 words"):
        step(*csr, words[:, :1].contiguous(), x, m, empty, -0.1, 0.1, 0.2, 0.0, True, True)
    with pytest.raises(ValueError, match="start_momentum must have the shape of position"):
        step(*csr, words, x, m, empty, -0.1, 0.1, 0.2, 0.01, True, True)
    with pytest.raises(ValueError, match="position and gathered must not overlap"):
        step(*csr, x, x, m, empty, -0.1, 0.1, 0.2, 0.0, True, True)
    with pytest.raises(ValueError, match="packed must have shape"):
        torch.ops.sb_native.sb_rows_pack(x, torch.zeros((5, 2), dtype=torch.int64), True)
    with pytest.raises(TypeError, match="gathered must hold packed spins"):
        torch.ops.sb_native.sb_rows_energy(*csr, positions, x, torch.zeros(70, dtype=x.dtype))


# ── the row readers ──

def random_gset(path, n, edges, *, seed, integer=True, compress=False):
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (edges,), generator=g)
    j = (i + torch.randint(1, n, (edges,), generator=g)) % n
    w = (torch.randint(1, 4, (edges,), generator=g) * (2 * torch.randint(0, 2, (edges,),
                                                                         generator=g) - 1)
         if integer else torch.rand(edges, generator=g, dtype=torch.float64) + 0.5)
    text = f"{n} {edges}\n# a comment\n" + "".join(
        f"{a + 1} {b + 1} {v!r}\n" for a, b, v in zip(i.tolist(), j.tolist(), w.tolist()))
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def random_qubo(path, n, entries, *, seed):
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (entries,), generator=g)
    j = torch.randint(0, n, (entries,), generator=g)
    w = torch.randint(-4, 5, (entries,), generator=g)
    diagonal = [(a, b, v) for a, b, v in zip(i.tolist(), j.tolist(), w.tolist()) if a == b]
    couplers = [(a, b, v) for a, b, v in zip(i.tolist(), j.tolist(), w.tolist()) if a != b]
    lines = [f"c random\np qubo 0 {n} {len(diagonal)} {len(couplers)}\n"]
    lines += [f"{a} {b} {v}\n" for a, b, v in diagonal + couplers]
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("integer", [False, True])
def test_read_gset_rows_equals_the_whole_file(tmp_path, monkeypatch, compress, integer):
    """Exact for integer weights; an edge repeated three times or more may add up in another
    order (coalesce's), so non-integer weights agree to rounding."""
    from sb_native import _io_rows
    monkeypatch.setattr(_io_rows, "LINES_PER_PIECE", 7)  # many pieces
    path = random_gset(tmp_path / "g.txt", 20, 60, seed=1, integer=integer, compress=compress)
    whole = io.read_gset(path).to_dense()
    for lo, hi in [(0, 20), (0, 7), (7, 14), (14, 20), (5, 5)]:
        rows = io.read_gset_rows(path, (lo, hi)).to_dense()
        expected = torch.zeros_like(whole)
        expected[lo:hi] = whole[lo:hi]
        torch.testing.assert_close(rows, expected, rtol=0 if integer else 1e-15, atol=0)
    assert io.read_gset_rows(path, lambda n: (n - 3, n)).to_dense()[17:].equal(whole[17:])


def test_read_rows_errors_are_the_whole_readers(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("3 2\n1 2 1\n2 2 5\n")
    with pytest.raises(io.ProblemFileError, match=r"bad.txt:3: self-loop on node 2"):
        io.read_gset_rows(bad, (0, 2))
    with pytest.raises(ValueError, match=r"rows must be \(lo, hi\) with 0 <= lo <= hi <= 3"):
        io.read_gset_rows(random_gset(tmp_path / "g.txt", 3, 2, seed=0), (2, 5))
    qubo = tmp_path / "bad.qubo"
    qubo.write_text("p qubo 0 3 1 1\n0 0 1\n0 7 2\n")
    with pytest.raises(io.ProblemFileError, match=r"bad.qubo:3: variable id 7 out of range"):
        io.read_qubo_rows(qubo, (0, 1))


def test_read_qubo_rows_keeps_the_entries_of_its_rows(tmp_path):
    path = random_qubo(tmp_path / "q.qubo", 15, 50, seed=2)
    whole = io.read_qubo(path).to_dense()
    for lo, hi in [(0, 15), (0, 5), (5, 10), (10, 15)]:
        rows = io.read_qubo_rows(path, (lo, hi)).to_dense()
        touches = torch.zeros_like(whole, dtype=torch.bool)
        touches[lo:hi] = True
        touches[:, lo:hi] = True
        assert torch.equal(rows, whole * touches)


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
    from sb_native.engine import ops
    calls, original = [], ops.sb_rows_step

    def flaky(*args, **kwargs):
        calls.append(1)
        if dist.get_rank() == 1 and len(calls) == 10:
            raise MemoryError("rank 1 ran out of memory")
        return original(*args, **kwargs)

    ops.sb_rows_step = flaky
    try:
        return sb.RowBlock.from_gset(os.path.join(directory, "g.txt")).maximize(
            agents=4, max_steps=2000, early_stopping=False, seed=9, verbose=False)
    finally:
        ops.sb_rows_step = original


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
