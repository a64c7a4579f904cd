"""dSB's incremental field on a rank's rows (sb_rows_step's field and previous, engine/rows.py):
the op corrected by the flips alone equals the whole product step after step, and its
reference, for integer weights; the runner keeps a field where the block's sums are exact and
its runs stay those of one process, on 2 gloo ranks."""

import functools
import os
import warnings

import pytest
import torch
import torch.distributed as dist

from sb_native.engine import reference as torch_ref
from tests.helpers import NATIVE_ONLY, join_gloo, record_cases, spawn_ranks
from tests.sb.test_rows import TOL, block, packed
from tests.sb.test_rows_ranks import gset_dsb, qubo_heated_dsb, write_problems

COEFS = (-0.07, 0.1, 0.3)


def flipped(positions, generator, share):
    """positions with about `share` of its entries' signs flipped."""
    flips = torch.rand(positions.shape, generator=generator) < share
    return torch.where(flips, -positions, positions)


def with_padding(words, agents, generator):
    """Packed words with random bits past the agents in each row's last word: never agents."""
    tail = agents % 64
    if tail:
        noise = torch.randint(0, 2**62, (words.shape[0],), generator=generator) << tail
        words[:, -1] |= noise
    return words


@NATIVE_ONLY
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("agents", [1, 64, 70, 130])
@pytest.mark.parametrize("heated", [False, True])
def test_incremental_field_equals_the_whole_product(dtype, agents, heated):
    """Ten finishes on signs that change by 0-50% a step: the field corrected by the flips and
    the whole product kept in a field agree bit for bit, state included, and the field is
    the reference's product."""
    csr, x, m, positions = block(13, 41, agents, dtype, integer=True, seed=agents)
    g = torch.Generator().manual_seed(agents)
    m0 = torch.rand_like(m) if heated else torch.empty(0, dtype=dtype)
    heat = 0.01 if heated else 0.0
    states = [[x.clone(), m.clone(), m0.clone(), torch.full_like(x, 7.0)] for _ in range(3)]
    previous = None
    for share in (0.0, 0.5, 0.1, 0.01, 0.0, 0.3, 0.02, 0.2, 0.05, 0.001):
        positions = flipped(positions, g, share)
        now = with_padding(packed(positions, False)[:-1], agents, g)
        incremental, whole, ref = states
        torch.ops.sb_native.sb_rows_step(*csr, now, *incremental[:3], *COEFS, heat, True, True,
                                         incremental[3], previous)
        torch.ops.sb_native.sb_rows_step(*csr, now, *whole[:3], *COEFS, heat, True, True,
                                         whole[3])
        torch_ref.sb_rows_step(*csr, now, *ref[:3], *COEFS, heat, True, True, ref[3])
        for a, b in zip(incremental, whole):
            assert torch.equal(a, b)
        assert torch.equal(incremental[3], ref[3])  # integer weights: exact sums
        for a, b in zip(incremental[:3], ref[:3]):  # the step's own rounding (test_rows.py)
            torch.testing.assert_close(a, b, **TOL[dtype])
        ref[:3] = [t.clone() for t in incremental[:3]]
        previous = now
    expected = torch_ref._block_product(*csr, previous, agents)
    assert torch.equal(states[0][3], expected)


@NATIVE_ONLY
def test_a_finish_without_previous_takes_the_whole_product_into_field():
    """int8 signs and a begin-only call: the field is the product, then left as it is."""
    csr, x, m, positions = block(7, 20, 9, torch.float64, integer=True)
    signs = torch.sign(positions).to(torch.int8)
    field = torch.full_like(x, 3.0)
    empty = torch.empty(0, dtype=torch.float64)
    torch.ops.sb_native.sb_rows_step(*csr, signs, x, m, empty, *COEFS, 0.0, True, False, field)
    assert torch.equal(field, torch_ref._block_product(*csr, signs, 9))
    kept = field.clone()
    torch.ops.sb_native.sb_rows_step(*csr, signs, x, m, empty, *COEFS, 0.0, False, True, field)
    assert torch.equal(field, kept)


def overlapping(state, gathered):
    """int64 words of gathered's shape in the first bytes of state (float64)."""
    return state.view(torch.int64).reshape(-1)[:gathered.numel()].view(gathered.shape)


@NATIVE_ONLY
def test_field_opcheck_and_errors():
    csr, x, m, positions = block(5, 12, 70, torch.float64, integer=True)
    now = packed(positions, False)[:-1]
    before = packed(-positions, False)[:-1]
    step = torch.ops.sb_native.sb_rows_step
    torch.library.opcheck(step.default, (*csr, now, x.clone(), m.clone(), m.clone(), *COEFS,
                                         0.01, True, True, torch.zeros_like(x), before))
    empty = torch.empty(0, dtype=torch.float64)
    field = torch.zeros_like(x)
    cases = [
        ((now, x, m, empty, *COEFS, 0.0, True, True, None, before), ValueError,
         "previous needs a field"),
        ((torch.sign(positions).to(torch.int8), x, m, empty, *COEFS, 0.0, True, True, field,
          before), ValueError, "previous needs gathered as packed signs without a zero plane"),
        ((now, x, m, empty, *COEFS, 0.0, True, True, field, before[:3]), ValueError,
         "previous must have the shape of gathered"),
        ((now, x, m, empty, *COEFS, 0.0, True, True, field, before.to(torch.int32)), TypeError,
         "previous must be int64"),
        ((now, x, m, empty, *COEFS, 0.0, True, True, field.float()), TypeError,
         "field must have the dtype of position"),
        ((now, x, m, empty, *COEFS, 0.0, True, True, field[:2]), ValueError,
         "field must have the shape of position"),
        ((now, x, m, empty, *COEFS, 0.0, True, True, x), ValueError,
         "field and position must not overlap"),
        ((now, x, m, empty, *COEFS, 0.0, True, True, field, overlapping(x, now)), ValueError,
         "previous and position must not overlap"),
        ((now, x, m, empty, *COEFS, 0.0, True, True, field, overlapping(m, now)), ValueError,
         "previous and momentum must not overlap"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            step(*csr, *args)
    with pytest.raises(ValueError, match="previous needs a field"):
        torch_ref.sb_rows_step(*csr, now, x, m, empty, *COEFS, 0.0, True, True, None, before)


# ── the runner: a field where the sums are exact, the one-process run either way ──

def counting_corrections(case, directory, rows):
    """case on the ranks, counting the finishes that corrected the field by the flips."""
    from sb_native.engine import ops
    original, corrected = ops.sb_rows_step, []

    def counted(*args, **kwargs):
        corrected.append(args[14] is not None)
        return original(*args, **kwargs)

    ops.sb_rows_step = counted
    try:
        vector, value = case(directory, rows)
    finally:
        ops.sb_rows_step = original
    return vector, value, sum(corrected)


def non_integer_dsb(directory, rows):
    import sb_native as sb
    from sb_native.models import MaxCut
    path = os.path.join(directory, "w.txt")
    kwargs = dict(mode="discrete", agents=8, max_steps=200, seed=2, verbose=False,
                  early_stopping=False)
    if rows:
        return sb.RowBlock.from_gset(path, dtype=torch.float64).maximize(**kwargs)
    return MaxCut.from_gset(path, dtype=torch.float64, sparse=True).maximize(**kwargs)


CASES = {"gset_dsb": gset_dsb, "qubo_heated_dsb": qubo_heated_dsb,
         "non_integer_dsb": non_integer_dsb}


def _worker(rank, world, port, directory):
    join_gloo(rank, world, port)
    assert dist.get_world_size() == world
    record_cases(rank, directory, {name: functools.partial(counting_corrections, case,
                                                           directory, True)
                                   for name, case in CASES.items()})


@NATIVE_ONLY
def test_ranks_keep_a_field_where_the_sums_are_exact(tmp_path):
    write_problems(tmp_path)
    ranks = spawn_ranks(_worker, 2, tmp_path)
    for name, case in CASES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want_vector, want_value = case(str(tmp_path), False)
        for rank, results in enumerate(ranks):
            status, *value = results[name]
            assert status == "ok", (name, rank, value)
            vector, got_value, corrected = value[0]
            assert torch.equal(vector, want_vector), (name, rank)
            if name == "non_integer_dsb":  # the whole product every step, summed otherwise
                assert corrected == 0
                torch.testing.assert_close(got_value, want_value, rtol=1e-13, atol=0)
            else:  # every finish but the first corrects the field
                assert corrected > 100, (name, rank, corrected)
                assert torch.equal(got_value, want_value), (name, rank)
