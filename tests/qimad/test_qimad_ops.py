"""QIMADTorch kernels: the pure-torch mirrors against explicit per-agent loops written from the
reference's formulas, the native ops against the mirrors from the same state and draws (and
qimad_angles' CPU kernel against its composite), opcheck, the ops' argument checks, and the
Python wrappers, references and argument tuple against the registered schemas."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sb_native import _ops
from sb_native.optim import _reference, ops
from sb_native.optim._state import HYPER_FIELDS, SESSION_FIELDS, QimadStepArgs
from tests.helpers import DEVICES, load_reference

QIMAD_OPS = _ops.op_names("qimad")
NATIVE_OPS = pytest.mark.skipif(not _ops.has_kernels(QIMAD_OPS, torch.device("cpu")),
                                reason="extension built without the QIMADTorch ops")
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


@pytest.fixture
def reference_qimad():
    return load_reference()


def native_or_skip(device):
    if not _ops.has_kernels(QIMAD_OPS, torch.device(device)):
        pytest.skip(f"no native QIMADTorch kernels for {device}")


def angles(n, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, generator=g, dtype=torch.float64) * math.pi
    b = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    return a.to(device, dtype), b.to(device, dtype)


def ring_mask(n, device):
    m = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        m[i, (i + 1) % n] = m[i, (i - 1) % n] = True
    m.fill_diagonal_(False)
    return m.to(device)


def fidelity_loops(a, b, mask, k, eps):
    """The reference's _fidelity and normalisation, scalar by scalar in Python floats."""
    a, b, mask = a.tolist(), b.tolist(), mask.tolist()
    n = len(a)
    W = [[0.0] * n for _ in range(n)]
    for i in range(n):
        nb = [j for j in range(n) if mask[i][j]]
        raw = []
        for j in nb:
            re = (math.cos(a[i] / 2) * math.cos(a[j] / 2)
                  + math.cos(b[j] - b[i]) * math.sin(a[i] / 2) * math.sin(a[j] / 2))
            im = math.sin(b[j] - b[i]) * math.sin(a[i] / 2) * math.sin(a[j] / 2)
            raw.append((re ** 2 + im ** 2) ** (k / 2))
        for j, w in zip(nb, raw):
            W[i][j] = w / (sum(raw) + eps)
    return torch.tensor(W, dtype=torch.float64)


def swarm_case(n, sizes, dtype, device, seed=0, rows=None, tunnel_rows=(), ks=(2.0,),
               seg_w=None):
    """A random swarm state and the full qimad_update argument list for it."""
    g = torch.Generator().manual_seed(seed)
    p = sum(sizes)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    theta, grad, best = rnd(n, p), rnd(n, p), rnd(p)
    square_avg = torch.rand(n, p, generator=g, dtype=torch.float64)
    a, b = angles(n, torch.float64, "cpu", seed)
    mask = torch.ones(n, n, dtype=torch.bool).fill_diagonal_(False)
    W = torch.stack([_reference.qimad_fidelity(a, b, mask, k, 1e-8) for k in ks])
    rows = list(range(n)) if rows is None else rows
    seg_w = [0] * len(sizes) if seg_w is None else seg_w
    segments = [0]
    for s in sizes:
        segments.append(segments[-1] + s)
    attract = 0.2 * torch.rand(n, generator=g, dtype=torch.float64)
    noise = torch.rand(len(tunnel_rows), p, generator=g, dtype=torch.float64)
    seg_eta = 0.01 + 0.05 * torch.rand(len(sizes), generator=g, dtype=torch.float64)
    seg_gamma = 0.3 * torch.rand(len(sizes), generator=g, dtype=torch.float64)
    f = lambda t: t.to(device, dtype)  # noqa: E731
    i64 = lambda v: torch.tensor(list(v), dtype=torch.int64, device=device)  # noqa: E731
    return [f(theta), f(square_avg), f(grad), f(best), f(W), i64(rows), f(attract), i64(segments),
            f(seg_eta), f(seg_gamma), i64(seg_w), i64(tunnel_rows), f(noise), 0.7, 0.99, 1e-8]


def box_for(args, seed=0):
    """A (2, parameters) box for swarm_case's args, tight enough that the update leaves it
    often: columns bounded on both sides, then bounded above only, then unbounded, in turn."""
    theta = args[0]
    p = theta.shape[1]
    g = torch.Generator().manual_seed(seed)
    width = 0.3 + 0.5 * torch.rand(2, p, generator=g, dtype=torch.float64)
    lower, upper = -width[0], width[1]
    kind = torch.arange(p) % 4
    lower[kind >= 2] = -math.inf
    upper[kind == 3] = math.inf
    return torch.stack([lower, upper]).to(theta.device, theta.dtype)


def cloned(args):
    return [x.clone() if torch.is_tensor(x) else x for x in args]


def update_loops(args, sequential=False, box=None):
    """One step written agent by agent and neighbour by neighbour, as the reference's Phase 3:
    synchronous, the communication reads every position from before the step; sequential, as
    the reference, it reads the positions of the agents moved before this one. With box, as
    the QIMAD authors' loop: a jump in a column of finite span is U(-1, 1) * 0.4 * span * temp,
    and each moved row is clipped to the box."""
    (theta, sq, grad, best, W, rows, attract, segments, seg_eta, seg_gamma, seg_w, trows, noise,
     temp, decay, eps) = [x.double().cpu() if torch.is_tensor(x) and x.is_floating_point()
                          else (x.cpu() if torch.is_tensor(x) else x) for x in args]
    old = theta.clone()
    new_theta, new_sq = theta.clone(), sq.clone()
    seen = new_theta if sequential else old
    bounds = segments.tolist()
    trows = trows.tolist()
    for i in rows.tolist():
        for s in range(len(bounds) - 1):
            c = slice(bounds[s], bounds[s + 1])
            Wk = W[seg_w[s]]
            g = grad[i, c]
            v = sq[i, c] * decay + (1 - decay) * g * g
            delta = -(seg_eta[s] / (v.sqrt() + eps)) * g
            delta += attract[i] * (best[c] - old[i, c])
            comm = torch.zeros_like(delta)
            for j in range(W.shape[1]):
                if Wk[i, j] != 0:
                    comm += Wk[i, j] * (seen[j, c] - seen[i, c])
            delta += seg_gamma[s] * comm
            new_theta[i, c] = old[i, c] + delta
            if i in trows:
                t = trows.index(i)
                scale = torch.full_like(delta, (float(old[i, c].abs().mean()) * 0.8 + 0.1) * temp)
                if box is not None:
                    span = box[1, c].double() - box[0, c].double()
                    scale = torch.where(torch.isfinite(span), 0.4 * span * temp, scale)
                new_theta[i, c] += (noise[t, c] * 2 - 1) * scale
            if box is not None:
                new_theta[i, c] = torch.minimum(torch.maximum(new_theta[i, c], box[0, c].double()),
                                                box[1, c].double())
            new_sq[i, c] = v
    return new_theta, new_sq


# ── qimad_fidelity ───────────────────────────────────────────────────────────

@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("topology", ["complete", "ring", "none"])
def test_fidelity_torch_matches_reference_formula(k, topology):
    a, b = angles(9, torch.float64, "cpu")
    mask = {"complete": torch.ones(9, 9, dtype=torch.bool).fill_diagonal_(False),
            "ring": ring_mask(9, "cpu"), "none": torch.zeros(9, 9, dtype=torch.bool)}[topology]
    W = _reference.qimad_fidelity(a, b, mask, k, 1e-8)
    torch.testing.assert_close(W, fidelity_loops(a, b, mask, k, 1e-8), rtol=1e-13, atol=1e-15)
    assert bool((W[~mask] == 0).all())


def test_fidelity_matches_seed_reference_staticmethod(reference_qimad):
    a, b = angles(6, torch.float64, "cpu", seed=4)
    mask = torch.ones(6, 6, dtype=torch.bool).fill_diagonal_(False)
    W = _reference.qimad_fidelity(a, b, mask, 2, 1e-8)
    f = reference_qimad.QIMADTorch._fidelity
    al, bl = a.tolist(), b.tolist()
    for i in range(6):
        raw = [f(al[i], bl[i], al[j], bl[j], 2) for j in range(6) if j != i]
        expected = [w / (sum(raw) + 1e-8) for w in raw]
        got = [W[i, j].item() for j in range(6) if j != i]
        assert got == pytest.approx(expected, rel=1e-13)


@NATIVE_OPS
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1.0, 2.0, 2.5])
def test_fidelity_native_matches_torch(device, dtype, k):
    native_or_skip(device)
    a, b = angles(13, dtype, device, seed=2)
    mask = ring_mask(13, device) | (torch.rand(13, 13, generator=torch.Generator().manual_seed(1))
                                    < 0.4).to(device)
    mask.fill_diagonal_(False)
    W = torch.ops.sb_native.qimad_fidelity(a, b, mask, k, 1e-8)
    torch.testing.assert_close(W, _reference.qimad_fidelity(a, b, mask, k, 1e-8), **TOL[dtype])


# ── qimad_angles ─────────────────────────────────────────────────────────────

def angles_case(n, dtype, device, seed=0):
    """Angles near both ends of their ranges, draws that push them across, and the rest of
    the qimad_angles arguments (two exponents, output in float32)."""
    a, b = angles(n, dtype, device, seed)
    a[0], b[0], b[-1] = 0.01, 6.28, 0.005
    g = torch.Generator().manual_seed(seed + 1)
    normal = (torch.randn(2, n, generator=g, dtype=torch.float64) * 3).to(device, dtype)
    uniform = torch.rand(2, n, generator=g, dtype=torch.float64).to(device, dtype)
    attract_on = torch.full((n,), 0.2, dtype=dtype, device=device)
    attract_on[-1] = 0.0
    mask = ring_mask(n, device)
    return [a, b, mask, [2.0, 3.5], normal, uniform, attract_on, 0.03, 0.05, 1e-8,
            torch.float32]


@NATIVE_OPS
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float64])
def test_angles_native_matches_torch(device, dtype, out_dtype):
    """The walk and the attraction bit for bit; W as the fidelity ops agree."""
    native_or_skip(device)
    args = angles_case(9, dtype, device, seed=3)
    args[-1] = out_dtype
    reference = cloned(args)
    W, attract = torch.ops.sb_native.qimad_angles(*args)
    W_ref, attract_ref = _reference.qimad_angles(*reference)
    assert W.dtype == attract.dtype == out_dtype and W.shape == (2, 9, 9)
    torch.testing.assert_close(W, W_ref, **TOL[torch.float32 if torch.float32 in (dtype, out_dtype)
                                                 else torch.float64])
    assert torch.equal(attract, attract_ref)
    assert torch.equal(args[0], reference[0]) and torch.equal(args[1], reference[1])
    assert bool(((args[0] >= 0) & (args[0] <= math.pi)).all())
    assert bool(((args[1] >= 0) & (args[1] < 2 * math.pi)).all())


@NATIVE_OPS
def test_angles_cpu_kernel_matches_its_composite():
    """The fused CPU kernel and the composite that other devices run: bit for bit."""
    args = angles_case(7, torch.float64, "cpu")
    composite = cloned(args)
    op = torch.ops.sb_native.qimad_angles.default
    fused = op(*args)
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
    other = op.redispatch(keys, *composite)
    for x, y in zip(list(fused) + args[:2], list(other) + composite[:2]):
        assert torch.equal(x, y)


@NATIVE_OPS
def test_angles_argument_checks():
    args = angles_case(5, torch.float64, "cpu")
    for index, bad, error, match in [
            (3, [], ValueError, "k must hold at least one"),
            (4, torch.zeros(2, 4, dtype=torch.float64), ValueError, r"normal must be \(2, agents\)"),
            (5, torch.zeros(2, 5, dtype=torch.float32), TypeError, "uniform must have the dtype"),
            (6, torch.zeros(5, 1, dtype=torch.float64), ValueError, r"attract_on must be \(agents,\)"),
            (10, torch.int64, TypeError, "dtype must be float32 or float64")]:
        bad_args = cloned(args)
        bad_args[index] = bad
        with pytest.raises(error, match=match):
            torch.ops.sb_native.qimad_angles(*bad_args)


# ── qimad_update ─────────────────────────────────────────────────────────────

CASES = {
    "all rows": dict(),
    "subset with tunnels": dict(rows=[0, 2, 3, 6], tunnel_rows=[2, 6]),
    "two fidelity matrices": dict(ks=(1.0, 3.0), seg_w=[1, 1, 0, 1], tunnel_rows=[1]),
    "no rows": dict(rows=[]),
    "large swarm (BLAS path)": dict(n=40, rows=list(range(0, 40, 3)), tunnel_rows=[3, 9]),
    "large swarm, two matrices": dict(n=40, ks=(1.0, 3.0), seg_w=[1, 1, 0, 1]),
}


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("box", [False, True])
def test_update_torch_matches_explicit_loops(case, sequential, box):
    case = dict(CASES[case])
    args = swarm_case(case.pop("n", 7), [5, 12, 1, 9], torch.float64, "cpu", seed=3, **case)
    bounds = box_for(args) if box else None
    expected = update_loops(args, sequential, bounds)
    _reference.qimad_update(*args, sequential, bounds)
    torch.testing.assert_close(args[0], expected[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(args[1], expected[1], rtol=1e-12, atol=1e-12)


@NATIVE_OPS
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("box", [False, True])
def test_update_native_matches_torch(device, dtype, case, sequential, box):
    native_or_skip(device)
    case = dict(CASES[case])
    if "seg_w" in case:
        case["seg_w"] = [1, 1, 0, 0, 1]
    args = swarm_case(case.pop("n", 7), [5, 12, 1, 0, 900], dtype, device, seed=5, **case)
    bounds = box_for(args, seed=1) if box else None
    reference = cloned(args)
    torch.ops.sb_native.qimad_update(*args, sequential, bounds)
    _reference.qimad_update(*reference, sequential, bounds)
    torch.testing.assert_close(args[0], reference[0], **TOL[dtype])
    torch.testing.assert_close(args[1], reference[1], **TOL[dtype])


@NATIVE_OPS
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), sizes=st.lists(st.integers(0, 700), min_size=1, max_size=4),
       seed=st.integers(0, 2**16), sequential=st.booleans(), box=st.booleans(),
       data=st.data())
def test_update_native_matches_torch_hypothesis(n, sizes, seed, sequential, box, data):
    rows = sorted(data.draw(st.sets(st.integers(0, n - 1))))
    tunnel_rows = sorted(data.draw(st.sets(st.sampled_from(rows)))) if rows else []
    args = swarm_case(n, sizes, torch.float64, "cpu", seed=seed, rows=rows, tunnel_rows=tunnel_rows)
    bounds = box_for(args, seed) if box else None
    reference = cloned(args)
    torch.ops.sb_native.qimad_update(*args, sequential, bounds)
    _reference.qimad_update(*reference, sequential, bounds)
    torch.testing.assert_close(args[0], reference[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(args[1], reference[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_update_is_synchronous(backend):
    """Relabelling the agents relabels the result: no agent sees another's new position."""
    if backend == "native" and not _ops.has_kernels(QIMAD_OPS, torch.device("cpu")):
        pytest.skip("no native kernels")
    args = swarm_case(6, [20, 7], torch.float64, "cpu", seed=8, tunnel_rows=[1, 4])
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    inv = torch.argsort(perm)
    permuted = cloned(args)
    for idx in (0, 1, 2, 6):  # theta, square_avg, grad, attract: one entry per agent
        permuted[idx] = args[idx][perm].contiguous()
    permuted[4] = args[4][:, perm][:, :, perm].contiguous()
    # Old agent j now sits at position inv[j]; tunnel rows stay sorted with their noise rows.
    new_rows = inv[args[11]]
    order = torch.argsort(new_rows)
    permuted[11], permuted[12] = new_rows[order].contiguous(), args[12][order].contiguous()
    ops.qimad_update(*args, backend=backend)
    ops.qimad_update(*permuted, backend=backend)
    torch.testing.assert_close(permuted[0], args[0][perm], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(permuted[1], args[1][perm], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_sequential_update_is_the_rows_moved_one_at_a_time(backend):
    """sequential=True is the synchronous update of rows[0] alone, then of rows[1] alone
    (reading rows[0] moved), and so on, bit for bit; it differs from the synchronous update."""
    if backend == "native" and not _ops.has_kernels(QIMAD_OPS, torch.device("cpu")):
        pytest.skip("no native kernels")
    args = swarm_case(7, [300, 7, 0, 40], torch.float64, "cpu", seed=9, rows=[0, 2, 3, 6],
                      tunnel_rows=[2, 6], ks=(1.0, 3.0), seg_w=[1, 0, 0, 1])
    one_at_a_time, synchronous = cloned(args), cloned(args)
    ops.qimad_update(*args, True, backend=backend)
    tunnels = args[11].tolist()
    for r in args[5].tolist():
        t = [tunnels.index(r)] if r in tunnels else []
        step = cloned(one_at_a_time)
        step[5], step[11] = (torch.tensor(v, dtype=torch.int64) for v in ([r], [r] * len(t)))
        step[12] = args[12][t]
        ops.qimad_update(*step, backend=backend)
        one_at_a_time[0], one_at_a_time[1] = step[0], step[1]
    assert torch.equal(args[0], one_at_a_time[0]) and torch.equal(args[1], one_at_a_time[1])
    ops.qimad_update(*synchronous, backend=backend)
    assert torch.equal(args[1], synchronous[1]), "the RMSProp state reads no other agent"
    torch.testing.assert_close(args[0][0], synchronous[0][0], rtol=1e-14, atol=1e-14,
                               msg="the first row sees no move")
    assert not torch.allclose(args[0][2:], synchronous[0][2:], rtol=1e-9, atol=1e-9)


@NATIVE_OPS
def test_opcheck():
    a, b = angles(5, torch.float64, "cpu")
    mask = torch.ones(5, 5, dtype=torch.bool).fill_diagonal_(False)
    torch.library.opcheck(torch.ops.sb_native.qimad_fidelity.default, (a, b, mask, 2.0, 1e-8))
    args = swarm_case(5, [6, 3], torch.float64, "cpu", rows=[0, 1, 3], tunnel_rows=[3])
    torch.library.opcheck(torch.ops.sb_native.qimad_update.default, tuple(args))
    torch.library.opcheck(torch.ops.sb_native.qimad_update.default, tuple(args) + (True,))
    torch.library.opcheck(torch.ops.sb_native.qimad_update.default,
                          tuple(args) + (False, box_for(args)))
    torch.library.opcheck(torch.ops.sb_native.qimad_angles.default,
                          tuple(angles_case(5, torch.float64, "cpu")))


@NATIVE_OPS
@pytest.mark.parametrize("index, bad, error, match", [
    (0, torch.zeros(7, 5, dtype=torch.float64), ValueError,
     r"square_avg must be \(rows, parameters\) with parameters = 5 and rows <= agents - "),
    (2, torch.zeros(27, 7, dtype=torch.float64).t(), ValueError, "grad must be contiguous"),
    (1, torch.zeros(7, 27, dtype=torch.float32), TypeError, "square_avg must have the dtype"),
    (3, torch.zeros(26, dtype=torch.float64), ValueError, "best must be 1-D of length 27"),
    (4, torch.zeros(7, 7, dtype=torch.float64), ValueError, "W must be"),
    (5, torch.tensor([2, 1]), ValueError, "rows must be strictly increasing"),
    (5, torch.tensor([0, 7]), ValueError, r"rows must lie in \[0, 7\)"),
    (5, torch.tensor([0.0]), TypeError, "rows must be int64"),
    (7, torch.tensor([0, 5, 20, 26]), ValueError, "segments must run from 0 to 27"),
    (10, torch.tensor([0, 0, 3]), ValueError, "seg_w must index"),
    (11, torch.tensor([1]), ValueError, "tunnel_noise must be"),
    (17, torch.zeros(2, 26, dtype=torch.float64), ValueError,
     r"bounds must be \(2, parameters\) = \(2, 27\)"),
    (17, torch.zeros(2, 27), TypeError, "bounds must have the dtype of theta"),
    (17, torch.zeros(27, 2, dtype=torch.float64).t(), ValueError, "bounds must be contiguous"),
])
def test_update_argument_checks(index, bad, error, match):
    args = swarm_case(7, [5, 12, 10], torch.float64, "cpu") + [False, None]
    args[index] = bad
    with pytest.raises(error, match=match):
        torch.ops.sb_native.qimad_update(*args)


@NATIVE_OPS
def test_update_rejects_a_tunnel_row_that_is_not_updated():
    args = swarm_case(4, [3], torch.float64, "cpu", rows=[0, 2])
    args[11] = torch.tensor([1])
    args[12] = torch.zeros(1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="tunnel_rows must be among rows"):
        torch.ops.sb_native.qimad_update(*args)


@NATIVE_OPS
def test_fidelity_argument_checks():
    a, b = angles(4, torch.float64, "cpu")
    mask = torch.ones(4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="alpha must be 1-D"):
        torch.ops.sb_native.qimad_fidelity(a[None], b, mask, 2.0, 1e-8)
    with pytest.raises(TypeError, match="beta must have the dtype of alpha"):
        torch.ops.sb_native.qimad_fidelity(a, b.float(), mask, 2.0, 1e-8)
    with pytest.raises(TypeError, match="mask must be bool"):
        torch.ops.sb_native.qimad_fidelity(a, b, mask.double(), 2.0, 1e-8)
    with pytest.raises(ValueError, match="mask must be"):
        torch.ops.sb_native.qimad_fidelity(a, b, mask[:3], 2.0, 1e-8)
    with pytest.raises(TypeError, match="alpha must be float32 or float64"):
        torch.ops.sb_native.qimad_fidelity(a.long(), b.long(), mask, 2.0, 1e-8)


# ── The Python side against the schemas ─────────────────────────────────────
# (every wrapper and reference against its schema: tests/interfaces/test_op_table.py)

def schema_names(name):
    if not _ops.defined(name):
        pytest.skip(f"the extension is not loaded or lacks {name}")
    return [a.name for a in getattr(torch.ops.sb_native, name).default._schema.arguments]


def test_step_args_are_the_schema_arguments():
    assert list(QimadStepArgs._fields) == schema_names("qimad_step")


def test_session_fields_are_step_args():
    """QimadSession's constructor and set_hyper take their arguments from a QimadStepArgs."""
    for names in (SESSION_FIELDS, HYPER_FIELDS):
        assert len(set(names)) == len(names)
        assert all(name in QimadStepArgs._fields for name in names), names
