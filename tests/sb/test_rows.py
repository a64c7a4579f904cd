"""SB variables across ranks (sb_native.RowBlock, engine/rows.py): the row-block ops against
their torch reference and opcheck, and the row readers of sb_native.io against the
whole-file readers. The runs across ranks are in test_rows_ranks.py."""

import gzip

import pytest
import torch

from sb_native import io
from sb_native.engine import reference as torch_ref
from tests.helpers import NATIVE_ONLY

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
