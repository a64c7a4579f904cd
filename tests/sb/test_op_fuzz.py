"""Differential fuzzing of every SB op against its torch reference (issue 19): sizes 0, 1 and
odd, the small-dense block kernel (n <= 256, partial agent blocks) and the paths above it,
float32 and float64, bSB and dSB, heated or not, with NaN, +-inf, +-HUGE, subnormals and signed
zeros planted in the state and the couplings (each tensor argument as a non-contiguous view,
written arguments sharing memory and out-of-range scalars: tests/sb/test_op_layout.py). Each
call must give the reference's result.

Paths that add the same terms in the reference's order, or exact terms, are compared bit for
bit; the others within rounding, NaN for NaN and inf for inf (which NaN and inf propagation
guarantees in any order) but for two cases no kernel that reorders a sum can match, left out
here (tests/sb/test_ops.py covers the finite ones):
- float32 sums of terms near FLT_MAX overflow in one order and not in another, so where the
  kernel sums in its own order (block kernel, CSR products) float32's HUGE is 1e30;
- dSB corrects its field per flip (csrc/sb/cpu/sb_discrete.h), exact with integer weights
  only: dSB couplings hold integers, zeros, subnormals and non-finite values (with which the
  kernels recompute the field every step), never 1e38 beside O(1) weights.
"""
import math

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sb_native.engine import reference
from tests.helpers import NATIVE_ONLY, csr_of, state, symmetric

pytestmark = NATIVE_ONLY
FUZZ = settings(derandomize=True, deadline=None, max_examples=100,
                suppress_health_check=[HealthCheck.too_slow])
OPS = torch.ops.sb_native
TOL = {torch.float64: dict(rtol=1e-9, atol=1e-9), torch.float32: dict(rtol=1e-4, atol=1e-4)}
SUBNORMAL = {torch.float32: 1e-40, torch.float64: 1e-310}
DTYPES = st.sampled_from([torch.float32, torch.float64])
# 0, 1, odd, a full and a partial block of agents, and above the small-dense size: 257 twice,
# since it is two paths (bSB's GEMM, dSB's agent-by-agent field).
SIZES = st.sampled_from([0, 1, 2, 7, 33, 257, 257])
AGENTS = st.sampled_from([0, 1, 5, 33, 65])


def extremes(dtype, huge=1e38):
    return [math.nan, math.inf, -math.inf, huge, -huge, SUBNORMAL[dtype], -SUBNORMAL[dtype],
            0.0, -0.0]


def plant(t, seed, values, density=0.15):
    """t with about density's share of its entries replaced by values drawn from values."""
    g = torch.Generator().manual_seed(seed)
    hit = torch.rand(t.shape, generator=g) < density
    pick = torch.tensor(values, dtype=t.dtype)[torch.randint(len(values), t.shape, generator=g)]
    return torch.where(hit, pick, t)


def agree(got, want, exact):
    """got is want: bit for bit (exact), or within rounding; NaN for NaN, inf for inf."""
    tol = dict(rtol=0, atol=0) if exact or not got.is_floating_point() else TOL[got.dtype]
    torch.testing.assert_close(got, want, equal_nan=True, **tol)


def both(op, args, written, exact):
    """op's native kernel and its reference on copies of args; the written ones agree."""
    native, ref = ([a.clone() if torch.is_tensor(a) else a for a in args] for _ in range(2))
    getattr(OPS, op)(*native)
    getattr(reference, op)(*ref)
    for i in written:
        agree(native[i], ref[i], exact)


def problem(n, agents, dtype, seed, discrete, planted, huge):
    """A coupling (integers for dSB), a state, and extremes planted where asked; never in
    both x and m of one element: x near 0 with m near 0 keeps x at the sign boundary, where a
    rounding difference (the reference's GEMM scales J by q before it sums) flips a dSB sign."""
    J = symmetric(n, dtype, seed=seed, integer=discrete)
    J = J if discrete else J / max(n, 1) ** 0.5
    x, m = state(n, agents, dtype, seed=seed + 1)
    if "J" in planted:
        J = plant(J, seed + 2, [v for v in extremes(dtype, huge) if abs(v) != huge or not discrete],
                  density=0.05)
    if "x" in planted:
        x = plant(x, seed + 3, extremes(dtype, huge))
    if "m" in planted:
        m = torch.where(x == state(n, agents, dtype, seed=seed + 1)[0],
                        plant(m, seed + 4, extremes(dtype, huge)), m)
    return J, x, m


PLANTED = st.sampled_from(["", "x", "m", "J", "xmJ"])


@FUZZ
@given(n=SIZES, agents=AGENTS, dtype=DTYPES, discrete=st.booleans(), heated=st.booleans(),
       planted=PLANTED, seed=st.integers(0, 2**20), steps=st.integers(1, 4))
# dSB with inf and NaN in J, which the kernels meet with a fresh field every step: the
# agent-by-agent path and the block kernel.
@example(n=257, agents=33, dtype=torch.float32, discrete=True, heated=True, planted="J",
         seed=1, steps=4)
@example(n=33, agents=65, dtype=torch.float64, discrete=True, heated=False, planted="xmJ",
         seed=2, steps=4)
def test_sb_step_and_sb_run(n, agents, dtype, discrete, heated, planted, seed, steps):
    # sb_step and sb_run above 256 bSB take the reference's GEMM; the block kernel and the
    # incremental dSB field sum in their own order (the module's docstring).
    gemm = not discrete and n > 256
    huge = 1e38 if dtype == torch.float64 or gemm else 1e30
    J, x, m = problem(n, agents, dtype, seed, discrete, planted, huge)
    heat = 0.05 if heated else 0.0
    both("sb_step", [J, x, m, -0.07, 0.1, 0.02, heat, discrete], [1, 2], False)
    both("sb_run", [J, x, m, seed % 50, steps, 0.1, 0.01, 0.02, heat, discrete], [1, 2], False)


@FUZZ
@given(n=SIZES, agents=AGENTS, dtype=DTYPES, discrete=st.booleans(), heated=st.booleans(),
       planted=PLANTED, seed=st.integers(0, 2**20), steps=st.integers(1, 4),
       stored_zeros=st.booleans())
@example(n=33, agents=65, dtype=torch.float32, discrete=True, heated=True, planted="J", seed=3,
         steps=4, stored_zeros=False)  # dSB with inf and NaN: an SpMM every step
def test_sb_run_csr(n, agents, dtype, discrete, heated, planted, seed, steps, stored_zeros):
    J, x, m = problem(n, agents, dtype, seed, discrete, planted, 1e38 if dtype == torch.float64
                      else 1e30)
    crow, col, values = csr_of(J)
    if stored_zeros:  # explicit zeros in the structure: 0 * inf is NaN on both sides
        values = torch.where(torch.arange(values.numel()) % 3 == 0, 0.0, values).to(dtype)
    args = [crow, col, values, x, m, 0, steps, 0.1, 0.01, 0.02, 0.05 if heated else 0.0,
            discrete]
    both("sb_run_csr", args, [3, 4], False)


@FUZZ
@given(n=SIZES, agents=AGENTS, dtype=DTYPES, heated=st.booleans(), planted=PLANTED,
       seed=st.integers(0, 2**20), scale=st.sampled_from([0.5, 1.0, 3.0, 2.0**-60, 1e-40]))
def test_sb_run_int8(n, agents, dtype, heated, planted, seed, scale):
    # K is exact, so the field is: the whole state may hold 1e38 even in float32.
    _, x, m = problem(n, agents, dtype, seed, True, planted.replace("J", ""), 1e38)
    K = symmetric(n, torch.float64, seed=seed, integer=True).to(torch.int8)
    K[0:1, 1:2] = K[1:2, 0:1] = -128  # the end of int8's range
    both("sb_run_int8", [K, scale, x, m, 3, 4, 0.1, 0.01, 0.02, 0.05 if heated else 0.0],
         [2, 3], False)


@FUZZ
@given(problems=st.integers(1, 3), n=SIZES, agents=AGENTS, dtype=DTYPES, discrete=st.booleans(),
       heated=st.booleans(), planted=PLANTED, seed=st.integers(0, 2**20))
@example(problems=3, n=33, agents=5, dtype=torch.float64, discrete=True, heated=True,
         planted="J", seed=4)  # beside a finite problem, whose field stays incremental
def test_sb_run_batched(problems, n, agents, dtype, discrete, heated, planted, seed):
    # Each problem's states are sb_run's on it alone, bit for bit, extremes and all; against
    # the reference, sb_run's comparison.
    huge = 1e38 if dtype == torch.float64 or (not discrete and n > 256) else 1e30
    made = [problem(n, agents, dtype, seed + 10 * b, discrete, planted if b == 0 else "", huge)
            for b in range(problems)]
    J, x, m = (torch.stack(t) for t in zip(*made))
    active = torch.tensor([b != 1 for b in range(problems)])
    q = torch.tensor([0.02 + 0.01 * b for b in range(problems)], dtype=torch.float64)
    heat = 0.05 if heated else 0.0
    args = [J, x, m, active, 2, 3, 0.1, 0.01, q, heat, discrete]
    both("sb_run_batched", args, [1, 2], False)
    bx, bm = x.clone(), m.clone()
    OPS.sb_run_batched(J, bx, bm, active, 2, 3, 0.1, 0.01, q, heat, discrete)
    for b in range(problems):
        if active[b]:
            OPS.sb_run(J[b], x[b], m[b], 2, 3, 0.1, 0.01, float(q[b]), heat, discrete)
    agree(bx, x, True)
    agree(bm, m, True)


@FUZZ
@given(n=SIZES, agents=AGENTS, dtype=DTYPES, seed=st.integers(0, 2**20), threshold=st.integers(1, 4),
       planted=st.booleans(), samplings=st.integers(1, 4))
def test_sb_sample(n, agents, dtype, seed, threshold, planted, samplings):
    # Integer fields (exact sums in any order) with planted NaN and +-inf, whose sums are
    # order-free too; the positions may hold anything (only their spins count). Random
    # streaks and flags, reachable or not: the kernel keeps the reference's bookkeeping.
    g = torch.Generator().manual_seed(seed)
    window = [torch.where(torch.rand(agents, generator=g) < 0.3, math.inf, 0.0).to(dtype),
              torch.randint(0, 4, (agents,), generator=g, dtype=torch.int16),
              torch.rand(agents, generator=g) < 0.3, torch.zeros(n, agents, dtype=dtype)]
    J = symmetric(n, dtype, seed=seed, integer=True)
    for k in range(samplings):
        x, _ = state(n, agents, dtype, seed=seed + k)
        x = plant(x, seed + k, extremes(dtype)) if planted else x
        field = J @ reference.sample_spins(x)
        field = plant(field, seed + k, [math.nan, math.inf, -math.inf], 0.05) if planted else field
        native = [t.clone() for t in window]
        OPS.sb_sample(x, field, *native, threshold)
        reference.sb_sample(x, field, *window, threshold)
        for got, want in zip(native, window):
            agree(got, want, True)


@FUZZ
@given(n=st.sampled_from([0, 1, 2, 7, 33]), agents=AGENTS, dtype=DTYPES,
       seed=st.integers(0, 2**20), planted=st.sampled_from(["", "J", "field", "spins"]),
       sweeps=st.sampled_from([0, 1, 3, 40]))
def test_sb_polish(n, agents, dtype, seed, planted, sweeps):
    # Bit for bit: each agent's flips and field updates run in the kernel's order, so even
    # 1e38 and subnormal weights agree; spins other than +-1 are refused.
    J = symmetric(n, dtype, seed=seed, integer=seed % 2 == 0, density=0.4)
    if planted == "J":
        J = torch.triu(plant(J, seed, extremes(dtype), 0.1), 1)
        J = J + J.t()
    spins = torch.where(torch.rand(n, agents, generator=torch.Generator().manual_seed(seed))
                        < 0.5, 1.0, -1.0).to(dtype)
    field = J @ spins
    if planted == "field":
        field = plant(field, seed, extremes(dtype))
    if planted == "spins" and spins.numel():
        spins = plant(spins, seed, extremes(dtype), 1.0)
        with pytest.raises(ValueError, match="spins must all be -1 or 1"):
            OPS.sb_polish(*csr_of(J), spins, field, sweeps)
        return
    both("sb_polish", [*csr_of(J), spins, field, sweeps], [3, 4], True)


def block(rows, columns, agents, dtype, seed, planted, weights, huge=1e38):
    """A rows x columns CSR block of integer weights, some replaced by those of weights when
    planted, a state and the gathered positions (extremes planted there too)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randint(-3, 4, (rows, columns), generator=g).to(dtype)
    values = values * (torch.rand(rows, columns, generator=g) < 0.4)
    x, m = state(rows, agents, dtype, seed=seed)
    gathered = 2 * torch.rand(columns, agents, generator=g, dtype=dtype) - 1
    if planted:
        values = torch.where(values != 0, plant(values, seed, weights, 0.1), 0)
        x = plant(x, seed + 1, extremes(dtype, huge))
        gathered = plant(gathered, seed + 2, extremes(dtype, huge))
    return csr_of(values), x, m, gathered


def packed(positions, spins):
    words = torch.zeros(positions.shape[0] + 1, (positions.shape[1] + 63) // 64,
                        dtype=torch.int64)
    reference.sb_rows_pack(positions, words, spins)
    return words


@FUZZ
@given(rows=st.sampled_from([0, 1, 7]), columns=st.sampled_from([0, 1, 9]),
       agents=st.sampled_from([0, 1, 63, 64, 65, 130]), dtype=DTYPES,
       form=st.sampled_from(["float", "int8", "packed", "zero plane"]), heated=st.booleans(),
       phase=st.sampled_from([(True, True), (True, False), (False, True), (False, False)]),
       planted=st.booleans(), kept=st.booleans(), seed=st.integers(0, 2**20))
def test_sb_rows_step(rows, columns, agents, dtype, form, heated, phase, planted, kept, seed):
    # kept: the product into a field (test_rows_field.py checks its corrections by flips).
    # The kernel sums in the CSR order, torch's CSR product in its own: float32's HUGE 1e30.
    huge = 1e38 if dtype == torch.float64 else 1e30
    csr, x, m, positions = block(rows, columns, agents, dtype, seed, planted,
                                 extremes(dtype, huge), huge)
    signs = torch.sign(positions)
    zero_plane = packed((signs == 0).to(dtype) - 1, True)[:-1]  # bit set where the sign is 0
    gathered = {"float": positions, "int8": signs.to(torch.int8),
                "packed": packed(positions, False)[:-1],
                "zero plane": torch.cat([packed(positions, False)[:-1], zero_plane], 1)}[form]
    m0 = 2 * torch.rand(rows, agents, dtype=dtype) - 1 if heated else torch.empty(0, dtype=dtype)
    args = [*csr, gathered, x, m, m0, -0.07, 0.1, 0.3, 0.01 if heated else 0.0, *phase]
    if kept:
        args.append(torch.full((rows, agents), 3.0, dtype=dtype))
    both("sb_rows_step", args, [4, 5, 6, 13] if kept else [4, 5, 6], False)


@FUZZ
@given(rows=st.sampled_from([0, 1, 7, 70]), columns=st.sampled_from([0, 1, 9]),
       agents=st.sampled_from([0, 1, 63, 64, 65, 130]), dtype=DTYPES, spins=st.booleans(),
       planted=st.booleans(), seed=st.integers(0, 2**20))
def test_sb_rows_pack_and_energy(rows, columns, agents, dtype, spins, planted, seed):
    # Packing is exact for any value; the energies add integer terms, NaN and +-inf, exact in
    # any order (the kernel's rows go in chunks of 64, torch's sum in its own order).
    weights = [math.nan, math.inf, -math.inf, 0.0, -0.0]
    csr, x, _, positions = block(rows, columns, agents, dtype, seed, planted, weights)
    words = torch.full((rows + 1, (agents + 63) // 64), -5, dtype=torch.int64)
    both("sb_rows_pack", [x, words, spins], [1], True)
    energies = torch.full((agents,), 7.0, dtype=dtype)
    both("sb_rows_energy", [*csr, packed(positions, True)[:-1], x, energies], [5], True)


# ── Non-contiguous and aliased arguments ─────────────────────────────────────
