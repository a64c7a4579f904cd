"""The row-block ops' CUDA kernels (csrc/sb/cuda/sb_rows_cuda.cu: sb_rows_step, sb_rows_pack,
sb_rows_energy) under the emulation (tests/emulation), each from its entry, against the CPU
ops, bit for bit: the kernels sum in the CPU kernel's order with its rounding (a floating
f(x)'s product fused, as the CPU's is on an x86 CPU with FMA; signs and bits exact; energies
in the CPU's chunks of 64 rows, then the chunks in order). Rows above 64 make several energy
chunks, 300 agents two agent tiles of 256 threads, and 300 x 65 positions more packed words
than the emulated 2 SMs' warps, so the pack kernel's grid-stride loop wraps."""

import re

import pytest
import torch

import sb_native  # noqa: F401  (registers torch.ops.sb_native, the CPU ops)
from tests.helpers import CPU_FUSED_PRODUCTS

DTYPES = [torch.float32, torch.float64]
GATHERED = ["floating", "int8", "packed", "zero plane"]
AGENTS = [1, 63, 64, 65, 130]
ROWS = [0, 1, 5, 37]
PHASES = [(True, True), (True, False), (False, True)]  # (finish, begin)
HEATS = [0.0, 0.006]
COEFS = (-0.0731, 0.1, 0.37)  # momentum_coef, position_coef, quadratic_coef
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def words(agents):
    return (agents + 63) // 64


def block(rows, gathered_rows, dtype, *, integer, seed, density=0.3):
    """(crow, col, values) of a random rows x gathered_rows CSR block, weights in [-3, 3] or
    N(0, 1); the middle row is empty."""
    g = torch.Generator().manual_seed(seed)
    dense = (torch.randint(-3, 4, (rows, gathered_rows), generator=g).to(dtype) if integer
             else torch.randn(rows, gathered_rows, generator=g, dtype=dtype))
    dense *= torch.rand(rows, gathered_rows, generator=g) < density
    if rows > 2:
        dense[rows // 2] = 0
    i, j = dense.nonzero(as_tuple=True)  # row-major: the CSR order
    crow = torch.zeros(rows + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(torch.bincount(i, minlength=rows), 0)
    return crow, j.contiguous(), dense[i, j]


def positions(rows, agents, dtype, seed):
    """Uniform in [-1.5, 1.5) (past the walls on both sides), about a quarter exactly +-0."""
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.rand(rows, agents, generator=g, dtype=dtype) - 1.5
    return x * (torch.rand(rows, agents, generator=g) > 0.25)


def gathered_of(kind, rows, agents, dtype, seed):
    """f(x) of rows variables as a rank gathers it; packed words carry random padding bits."""
    if kind == "floating":
        return positions(rows, agents, dtype, seed)
    g = torch.Generator().manual_seed(seed)
    if kind == "int8":
        return torch.randint(-1, 2, (rows, agents), generator=g, dtype=torch.int8)
    width = words(agents) * (2 if kind == "zero plane" else 1)  # signs, then 1 where 0
    return torch.randint(-2**63, 2**63 - 1, (rows, width), generator=g, dtype=torch.int64)


def both(op, emulated, before, outputs, after=()):
    """Runs the CPU op and its emulated CUDA twin as op(*before, *outputs, *after), each on
    its own copies of outputs (the tensors it writes); returns (emulated, CPU) outputs."""
    cpu, got = [t.clone() for t in outputs], [t.clone() for t in outputs]
    getattr(torch.ops.sb_native, op)(*before, *cpu, *after)
    getattr(emulated, op)(*before, *got, *after)
    return got, cpu


# ── sb_rows_step: rows_step_kernel ──────────────────────────────────────────────
def check_step(emulated, dtype, kind, rows, agents):
    gathered_rows = 2 * rows + 3
    gathered = gathered_of(kind, gathered_rows, agents, dtype, seed=rows + agents)
    exact = kind != "floating" or CPU_FUSED_PRODUCTS
    for integer in (False, True):
        J = block(rows, gathered_rows, dtype, integer=integer, seed=rows)
        for finish, begin in PHASES:
            for heat in HEATS:
                state = [positions(rows, agents, dtype, seed) for seed in (1, 2, 3)]
                if not heat:
                    state[2] = torch.empty(0)  # start_momentum is never touched
                got, cpu = both("sb_rows_step", emulated, (*J, gathered), state,
                                (*COEFS, heat, finish, begin))
                for g, c in zip(got, cpu):
                    if exact:
                        assert torch.equal(g, c), (integer, finish, begin, heat)
                    else:
                        torch.testing.assert_close(g, c, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", GATHERED)
@pytest.mark.parametrize("agents", AGENTS)
@pytest.mark.parametrize("rows", ROWS)
def test_sb_rows_step(emulated, dtype, kind, agents, rows):
    check_step(emulated, dtype, kind, rows, agents)


@pytest.mark.parametrize("kind", GATHERED)
def test_sb_rows_step_two_agent_tiles(emulated, kind):
    check_step(emulated, torch.float32, kind, 5, 300)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("agents", AGENTS + [300])
def test_sb_rows_step_field(emulated, dtype, agents):
    """A field kept over five finishes on integer weights (the sums a field is kept for): the
    first whole, then corrected by the flips since the signs before, few (the CPU corrects
    too) or half of them (the CPU takes the whole product; the same exact field)."""
    rows = 37
    J = block(rows, 2 * rows + 3, dtype, integer=True, seed=agents)
    state = [positions(rows, agents, dtype, seed) for seed in (1, 2, 3)]
    field = torch.full((rows, agents), 5.0, dtype=dtype)
    g = torch.Generator().manual_seed(agents)
    gathered, previous = gathered_of("packed", 2 * rows + 3, agents, dtype, seed=0), None
    for share in (0.0, 0.01, 0.5, 0.002, 0.03):
        flips = torch.zeros_like(gathered)
        for bit in range(64):  # each bit flips with probability share
            chosen = torch.rand(gathered.shape, generator=g) < share
            flips |= chosen.to(torch.int64) << bit
        gathered = gathered ^ flips
        got, cpu = both_with_field(emulated, J, gathered, state, field, previous)
        for emulated_out, cpu_out in zip(got, cpu):
            assert torch.equal(emulated_out, cpu_out), share
        state, field, previous = cpu[:3], cpu[3], gathered


def both_with_field(emulated, J, gathered, state, field, previous):
    """both() for sb_rows_step with a field, which follows the coefficients: the emulated and
    the CPU op each on its own copies of the state and the field; returns (emulated, CPU)."""
    runs = []
    for op in (emulated.sb_rows_step, torch.ops.sb_native.sb_rows_step):
        outputs = [t.clone() for t in (*state, field)]
        op(*J, gathered, *outputs[:3], *COEFS, HEATS[1], True, True, outputs[3], previous)
        runs.append(outputs)
    return runs


# ── sb_rows_pack: rows_pack_kernel, rows_pack_header_kernel ────────────────────────
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,agents", [(r, a) for r in ROWS for a in AGENTS] + [(300, 65)])
def test_sb_rows_pack(emulated, dtype, rows, agents):
    x = positions(rows, agents, dtype, seed=rows * agents)
    if rows:
        x[rows // 2, agents // 2] = float("nan")  # a sign one bit cannot carry, as 0 is
    for spins in (False, True):
        packed = torch.full((rows + 1, words(agents)), -1, dtype=torch.int64)
        got, cpu = both("sb_rows_pack", emulated, (x,), [packed], (spins,))
        assert torch.equal(got[0], cpu[0]), spins


@pytest.mark.parametrize("rows", [0, 3])
def test_sb_rows_pack_without_agents(emulated, rows):
    """No agents, no words: nothing is written (not even the header's count)."""
    packed = torch.empty(rows + 1, 0, dtype=torch.int64)
    emulated.sb_rows_pack(torch.zeros(rows, 0), packed, False)
    assert packed.shape == (rows + 1, 0)


# ── sb_rows_energy: rows_energy_kernel, rows_energy_sum_kernel ──────────────────────
def check_energy(emulated, dtype, rows, agents):
    gathered_rows = 2 * rows + 3
    gathered = gathered_of("packed", gathered_rows, agents, dtype, seed=rows + agents)
    x = positions(rows, agents, dtype, seed=rows)
    for integer in (False, True):
        J = block(rows, gathered_rows, dtype, integer=integer, seed=rows, density=0.1)
        energies = torch.full((agents,), 7.0, dtype=dtype)
        got, cpu = both("sb_rows_energy", emulated, (*J, gathered, x), [energies])
        assert torch.equal(got[0], cpu[0]), integer


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("agents", AGENTS)
@pytest.mark.parametrize("rows", ROWS + [130])  # 130: three chunks of 64 rows
def test_sb_rows_energy(emulated, dtype, agents, rows):
    check_energy(emulated, dtype, rows, agents)


def test_sb_rows_energy_two_agent_tiles(emulated):
    check_energy(emulated, torch.float64, 70, 300)


# ── the CSR structure, checked on the device before any launch ───────────────────────
def corrupt(J, what):
    crow, col, values = (t.clone() for t in J)
    if what == "col too large":
        col[3] = 9
        return (crow, col, values), r"col_indices[3] = 9 is out of range for gathered's 9 rows"
    if what == "col negative":
        col[5] = -1
        return (crow, col, values), r"col_indices[5] = -1 is out of range for gathered's 9 rows"
    if what == "crow decreasing":
        crow[2] = crow[3] + 1
        return (crow, col, values), "crow_indices must be non-decreasing"
    crow[-1] -= 1
    return (crow, col, values), f"crow_indices must start at 0 and end at nnz ({col.numel()})"


@pytest.mark.parametrize("what", ["col too large", "col negative", "crow decreasing", "crow end"])
def test_structure_errors_name_the_problem(emulated, what):
    J = block(4, 9, torch.float64, integer=True, seed=0, density=0.8)
    bad, message = corrupt(J, what)
    gathered = gathered_of("packed", 9, 3, torch.float64, seed=0)
    x, m, m0 = (positions(4, 3, torch.float64, seed) for seed in (1, 2, 3))
    for ops in (torch.ops.sb_native, emulated):
        with pytest.raises(ValueError, match=re.escape(message)):
            ops.sb_rows_step(*bad, gathered, x.clone(), m.clone(), m0.clone(), *COEFS, 0.006,
                             True, False)
        with pytest.raises(ValueError, match=re.escape(message)):
            ops.sb_rows_energy(*bad, gathered, x, torch.empty(3, dtype=torch.float64))
    # A step that only begins reads no coupling, so neither op checks it.
    got, cpu = both("sb_rows_step", emulated, (*bad, gathered), [x, m, m0],
                    (*COEFS, 0.006, False, True))
    assert all(torch.equal(g, c) for g, c in zip(got, cpu))
