"""Differential fuzzing of the QIMADTorch ops against their torch reference (issue 19):
qimad_fidelity, qimad_angles, qimad_update and qimad_step over zero, one and many agents (the
update's fused and BLAS paths), parameter groups of zero width and buckets without
parameters, float32 and float64, with non-finite losses and gradients and NaN, +-inf, 1e38,
subnormals and signed zeros planted in the angles, the draws and the swarm's state; then every
tensor argument as a non-contiguous view, and every written argument sharing memory with
another. Each call must give the reference's result or a ValueError / TypeError naming the
argument. The ops propagate NaN and inf element by element, so the comparisons are those of
tests/qimad: within rounding where the kernels sum in their own order, NaN for NaN."""

import inspect
import itertools
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb_native import _ops
from sb_native.optim import _reference as reference
from tests.qimad.test_qimad_ops import angles_case, box_for, swarm_case
from tests.qimad.test_qimad_step import cloned

pytestmark = pytest.mark.skipif(not _ops.has_kernels(_ops.op_names("qimad"), "cpu"),
                                reason="extension built without the QIMADTorch ops")
FUZZ = settings(derandomize=True, deadline=None, max_examples=100,
                suppress_health_check=[HealthCheck.too_slow])
OPS = torch.ops.sb_native
TOL = {torch.float64: dict(rtol=1e-9, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}
DTYPES = st.sampled_from([torch.float32, torch.float64])
SEEDS = st.integers(0, 2**20)


def extremes(dtype):
    tiny = 1e-40 if dtype == torch.float32 else 1e-310
    return [math.nan, math.inf, -math.inf, 1e38, -1e38, tiny, -tiny, 0.0, -0.0]


def plant(t, seed, values, density=0.15):
    """t with about density's share of its entries replaced by values drawn from values."""
    g = torch.Generator().manual_seed(seed)
    hit = torch.rand(t.shape, generator=g) < density
    pick = torch.tensor(values, dtype=t.dtype)[torch.randint(len(values), t.shape, generator=g)]
    return torch.where(hit, pick, t)


def tensors(x):
    """The tensors of an argument list or a result, lists flattened, in order."""
    if torch.is_tensor(x):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for item in x for t in tensors(item)]
    return []


def agree(got, want, exact=False, tol=None):
    """Every tensor of got is want's: exactly, or within tol (by default its dtype's)."""
    for a, b in zip(tensors(got), tensors(want), strict=True):
        floating = a.is_floating_point() and not exact
        close = (tol or TOL[a.dtype]) if floating else dict(rtol=0, atol=0)
        torch.testing.assert_close(a, b, equal_nan=True, **close)


def both(op, args, tol=None):
    """op's native kernel and its reference on copies of args: arguments and results agree."""
    native, ref = cloned(args), cloned(args)
    got = getattr(OPS, op)(*native)
    want = getattr(reference, op)(*ref)
    agree(native, ref, tol=tol)
    agree(got, want, tol=tol)


@FUZZ
@given(n=st.sampled_from([0, 1, 2, 5, 33]), dtype=DTYPES, k=st.sampled_from([1.0, 2.0, 2.5]),
       planted=st.booleans(), seed=SEEDS)
def test_qimad_fidelity_and_angles(n, dtype, k, planted, seed):
    args = angles_case(max(n, 1), dtype, "cpu", seed=seed)
    if n == 0:
        args = [t[..., :0] if torch.is_tensor(t) else t for t in args]
        args[2] = args[2][:0]
    args[3][0] = k
    if planted:
        for i in (0, 1, 4, 5, 6):
            args[i] = plant(args[i], seed + i, extremes(dtype))
    args[-1] = dtype if seed % 2 else torch.float64  # W and attract in another dtype too
    both("qimad_fidelity", [args[0], args[1], args[2], k, 1e-8])
    both("qimad_angles", args, tol=TOL[dtype])  # computed in the angles' dtype


SIZES = st.sampled_from([[3], [0], [5, 0, 2], [0, 0], [40, 1], []])


@FUZZ
@given(n=st.sampled_from([0, 1, 2, 5, 40]), sizes=SIZES, dtype=DTYPES, sequential=st.booleans(),
       box=st.booleans(), planted=st.sampled_from(["", "grad", "theta", "all", "huge"]),
       seed=SEEDS)
def test_qimad_update(n, sizes, dtype, sequential, box, planted, seed):
    # 40 agents take the BLAS product, fewer the fused one; groups of width 0 and no groups.
    pick = torch.rand(2, n, generator=torch.Generator().manual_seed(seed)) < 0.7
    rows = pick[0].nonzero().flatten().tolist()
    tunnel_rows = (pick[0] & pick[1]).nonzero().flatten().tolist()
    ks = (1.0, 3.0) if len(sizes) > 1 else (2.0,)
    args = swarm_case(n, sizes, dtype, "cpu", seed=seed, rows=rows, tunnel_rows=tunnel_rows,
                      ks=ks, seg_w=[i % len(ks) for i in range(len(sizes))])
    if planted in ("grad", "all"):  # non-finite gradients among others
        args[2] = plant(args[2], seed, extremes(dtype), 0.2)
    if planted in ("theta", "all"):
        for i in (0, 1, 3, 12):  # theta, square_avg, best, tunnel_noise
            args[i] = plant(args[i], seed + i, extremes(dtype))
    if planted == "huge":  # rows whose float32 sum of |theta| overflows: the jump scales
        args[0] = plant(args[0], seed, [1e38, -1e38], 0.8)
    both("qimad_update", args + [sequential, box_for(args, seed) if box else None])


def step_args(n, buckets, seed, poison=False, box=False, global_stagnation=False,
              sequential=False, step=1):
    """qimad_step's arguments for n agents in buckets, each (parameter sizes, dtype); with
    poison, NaN and +-inf in some losses and gradients."""
    g = torch.Generator().manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    lists = theta, sq, grad, best, params, counts, segments, eta, gamma, seg_w, bounds = tuple(
        [] for _ in range(11))
    for sizes, dtype in buckets:
        p = sum(sizes)
        theta.append(torch.randn(n, p, generator=g, **f64).to(dtype))
        sq.append(torch.rand(n, p, generator=g, **f64).to(dtype))
        grad.append(torch.randn(n, p, generator=g, **f64).to(dtype))
        best.append(torch.randn(p, generator=g, **f64).to(dtype))
        params += [torch.zeros(s, dtype=dtype) for s in sizes]
        counts.append(len(sizes))
        segments.append(torch.tensor([0, *itertools.accumulate(sizes)]))
        eta.append(torch.full((len(sizes),), 0.05, dtype=dtype))
        gamma.append(torch.full((len(sizes),), 0.2, dtype=dtype))
        seg_w.append(torch.tensor([i % 2 for i in range(len(sizes))], dtype=torch.int64))
        bounds.append(torch.tensor([[-0.5] * p, [0.7] * p], dtype=dtype) if box else None)
    losses = (torch.rand(n, generator=g, **f64) * 2).tolist()
    if poison:
        losses = [[x, math.nan, math.inf, -math.inf][i % 4] for i, x in enumerate(losses)]
        grad[:] = [plant(t, seed, [math.nan, math.inf], 0.1) for t in grad]
    mask = (torch.rand(n, n, generator=g) < 0.6).fill_diagonal_(False)
    can_tunnel = [int(row.any()) for row in mask]
    rows = [i for i in range(n) if torch.rand(1, generator=g) < 0.7]
    return [*lists[:10], torch.rand(n, generator=g, **f64) * 3,
            torch.rand(n, generator=g, **f64) * 6, mask,
            torch.tensor(can_tunnel, **f64) * 0.2, can_tunnel, [2.0, 3.0], torch.float64,
            torch.rand(n, generator=g, **f64), torch.rand(n, generator=g, **f64) * 0.5,
            torch.randint(0, 6, (n,), generator=g), torch.tensor(0.3, **f64),
            torch.randn(2, 2, n, generator=g, **f64), torch.rand(2, 2, n, generator=g, **f64),
            step, rows, losses, torch.Generator().manual_seed(seed), 0.6, 0.03, 0.05, 0.99,
            1e-8, 2, bounds, global_stagnation, sequential]


@FUZZ
@given(n=st.sampled_from([0, 1, 2, 6]), buckets=st.sampled_from([
           [([3], torch.float64)], [([2, 0, 3], torch.float64), ([4], torch.float32)],
           [([0], torch.float32)], [([], torch.float64), ([1], torch.float64)]]),
       poison=st.booleans(), box=st.booleans(), global_stagnation=st.booleans(),
       sequential=st.booleans(), step=st.integers(1, 3), planted=st.booleans(), seed=SEEDS)
def test_qimad_step(n, buckets, poison, box, global_stagnation, sequential, step, planted, seed):
    args = step_args(n, buckets, seed, poison, box, global_stagnation, sequential, step)
    if planted:  # extremes in the positions too: they reach the others through W
        args[0] = [plant(t, seed, extremes(t.dtype), 0.05) for t in args[0]]
    native, ref = cloned(args), cloned(args)
    fates = OPS.qimad_step(*native)
    assert fates.tolist() == reference.qimad_step(*ref).tolist()
    agree([native[i] for i in (17, 18, 19, 20)], [ref[i] for i in (17, 18, 19, 20)],
          exact=True)  # the records
    agree(native, ref)


def test_qimad_step_without_agents():
    # No agent, so no best to take (the kernel read the first agent's loss out of bounds):
    # the records stay, and the model receives the best weights as after any step.
    args = step_args(0, [([2, 1], torch.float64)], seed=3)
    fates = OPS.qimad_step(*args)
    assert fates.shape == (0,) and args[20].item() == 0.3
    assert torch.equal(torch.cat(args[4]), args[3][0])


# ── Non-contiguous and aliased arguments ─────────────────────────────────────

def case(op):
    """Valid arguments of op, every tensor of two elements or more; fresh at every call."""
    if op == "qimad_fidelity":
        return angles_case(5, torch.float64, "cpu")[:3] + [2.0, 1e-8]
    if op == "qimad_angles":
        return angles_case(5, torch.float64, "cpu")
    if op == "qimad_update":
        args = swarm_case(5, [3, 2], torch.float64, "cpu", rows=[0, 2, 3], tunnel_rows=[2])
        return args + [False, box_for(args)]
    return step_args(4, [([2, 1], torch.float64)], seed=1, box=True)


WRITTEN = {"qimad_fidelity": (), "qimad_angles": ("alpha", "beta"),
           "qimad_update": ("theta", "square_avg"),
           "qimad_step": ("theta", "square_avg", "grad", "best", "params", "alpha", "beta",
                          "agent_loss", "agent_best", "stagnation", "best_loss", "normal",
                          "uniform")}


def slots(op):
    """(name, argument index, list index or None) of every tensor of case(op)."""
    names = list(inspect.signature(getattr(reference, op)).parameters)
    for i, (name, arg) in enumerate(zip(names, case(op))):
        if torch.is_tensor(arg):
            yield name, i, None
        elif isinstance(arg, list):
            yield from ((name, i, j) for j, t in enumerate(arg) if torch.is_tensor(t))


def put(args, slot, value):
    _, i, j = slot
    if j is None:
        args[i] = value
    else:
        args[i] = list(args[i])
        args[i][j] = value


def get(args, slot):
    _, i, j = slot
    return args[i] if j is None else args[i][j]


def expect_clear_error_or_reference(op, native, built, names):
    """native gives a ValueError or TypeError naming every one of names, or the reference's
    result on built(), the same arguments built afresh."""
    try:
        got = getattr(OPS, op)(*native)
    except (ValueError, TypeError) as error:
        assert all(name in str(error) for name in names), str(error)
        return
    ref = built()
    want = getattr(reference, op)(*ref)
    agree(native, ref)
    agree(got, want)


def non_contiguous(t):
    wide = t.new_zeros(*t.shape[:-1], 2 * t.shape[-1])
    wide[..., ::2] = t
    return wide[..., ::2]


NON_CONTIGUOUS = [(op, slot) for op in WRITTEN for slot in slots(op)
                  if get(case(op), slot).dim() >= 1
                  and not non_contiguous(get(case(op), slot)).is_contiguous()]


@pytest.mark.parametrize("op,slot", NON_CONTIGUOUS, ids=lambda x: x if isinstance(x, str)
                         else f"{x[0]}{'' if x[2] is None else x[2]}")
def test_non_contiguous_argument(op, slot):
    def built():
        args = case(op)
        put(args, slot, non_contiguous(get(args, slot)))
        return args

    native = built()
    expect_clear_error_or_reference(op, native, lambda: case(op), [slot[0]])


def shared(args, a_slot, b_slot, how):
    """args with b the very tensor a ("same"), or both in one buffer, b starting inside a."""
    args = list(args)
    a, b = get(args, a_slot), get(args, b_slot)
    if how == "same":
        put(args, b_slot, a)
        return args
    size, other = a.numel() * a.element_size(), b.numel() * b.element_size()
    start = size // 2 // 8 * 8  # inside a, aligned for every dtype
    buffer = torch.zeros(start + other + size, dtype=torch.uint8)
    put(args, b_slot, buffer[start:start + other].view(b.dtype).view(b.shape).copy_(b))
    put(args, a_slot, buffer[:size].view(a.dtype).view(a.shape).copy_(a))
    return args


def alias_pairs():
    for op, written in WRITTEN.items():
        every, args = list(slots(op)), case(op)
        for x, y in itertools.combinations(every, 2):
            if x[0] not in written and y[0] not in written:
                continue  # two arguments the op only reads
            if x[0] == y[0] == "params":
                continue  # each parameter receives its own slice of best, in order
            a_slot, b_slot = (x, y) if x[0] in written else (y, x)
            a, b = get(args, a_slot), get(args, b_slot)
            for how in ("same", "overlap"):
                if how == "overlap" or (a.shape == b.shape and a.dtype == b.dtype):
                    yield op, a_slot, b_slot, how


@pytest.mark.parametrize("op,written,other,how", list(alias_pairs()),
                         ids=lambda x: x if isinstance(x, str)
                         else f"{x[0]}{'' if x[2] is None else x[2]}")
def test_aliased_arguments(op, written, other, how):
    native = shared(case(op), written, other, how)
    expect_clear_error_or_reference(op, native, lambda: shared(case(op), written, other, how),
                                    [written[0], other[0]])
