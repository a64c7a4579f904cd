"""qimad_step, everything a QIMADTorch step does after its closures: the CPU kernel against the
pure-torch mirror and against the composite other devices run, from the same state and
generator (records, resets of non-finite agents, tunnelling, block draws, two buckets of
different dtypes), opcheck, and the argument checks."""

import math

import pytest
import torch

from sb_native.optim import _reference
from tests.helpers import DEVICES
from tests.qimad.test_qimad_ops import NATIVE_OPS, native_or_skip

N = 6


# The float64 bucket's box: bounded columns, a half-bounded one and two without bounds.
BOX_LOWER = [-0.5, -1.0, -0.2, -2.0, -0.6, -math.inf, -math.inf, -math.inf]
BOX_UPPER = [0.7, 0.1, 0.3, 2.0, 0.6, 0.5, math.inf, math.inf]


def step_case(device, step=1, block=3, seed=0, poison=True, box=False,
              global_stagnation=False):
    """A swarm of N agents in two buckets (float64: parameters of 5 and 3 elements; float32:
    one of 4), every qimad_step argument as QIMADTorch passes them, but sequential. Agents 0,
    2, 3 and 5 are evaluated; with poison, agent 2's loss is NaN and agent 3's float32
    gradient holds an inf. Agents 0 and 5 stagnate on their own bests with neighbours; agent 5
    improves on the swarm's best loss (which restarts its count under global_stagnation).
    After the first step of a block (step > 1) the blocks are filled and agent 5's coin, not
    agent 0's, lands under its jump odds. With box, the float64 bucket has the box above."""
    g = torch.Generator().manual_seed(seed)
    buckets = []
    for sizes, dtype in (([5, 3], torch.float64), ([4], torch.float32)):
        p = sum(sizes)
        rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        theta, grad, best = rnd(N, p), rnd(N, p), rnd(p)
        sq = torch.rand(N, p, generator=g, dtype=torch.float64)
        params = [torch.zeros(s, dtype=dtype, device=device) for s in sizes]
        bounds = [0]
        for s in sizes:
            bounds.append(bounds[-1] + s)
        f = lambda t: t.to(device, dtype)  # noqa: E731
        buckets.append(dict(theta=f(theta), sq=f(sq), grad=f(grad), best=f(best), params=params,
                            segments=torch.tensor(bounds, device=device),
                            eta=torch.full((len(sizes),), 0.05, dtype=dtype, device=device),
                            gamma=torch.tensor([0.1, 0.3][:len(sizes)], dtype=dtype, device=device),
                            seg_w=torch.tensor([0, 1][:len(sizes)], device=device)))
    rows = [0, 2, 3, 5]
    losses = [0.9, 7.0, 0.4, 0.8, 5.0, 0.3]
    if poison:
        losses[2] = math.nan
        buckets[1]["grad"][3, 1] = math.inf
    f64 = dict(dtype=torch.float64)
    alpha = torch.linspace(0.5, 3.0, N, **f64).to(device)
    beta = torch.linspace(0.1, 6.0, N, **f64).to(device)
    mask = torch.ones(N, N, dtype=torch.bool).fill_diagonal_(False)
    mask[1] = mask[:, 1] = False  # agent 1 has no neighbours
    can_tunnel = [int(bool(row.any())) for row in mask]
    attract_on = torch.tensor([0.2 * c for c in can_tunnel], **f64)
    gen = torch.Generator(device=device).manual_seed(seed + 7)
    b0, b1 = buckets
    normal = torch.randn(block, 2, N, generator=g, **f64)
    uniform = torch.rand(block, 2, N, generator=g, **f64)
    uniform[(step - 1) % block, 0] = torch.tensor([0.99, 0.5, 0.5, 0.5, 0.5, 0.01])
    return [[b["theta"] for b in buckets], [b["sq"] for b in buckets],
            [b["grad"] for b in buckets], [b["best"] for b in buckets],
            b0["params"] + b1["params"], [2, 1], [b["segments"] for b in buckets],
            [b["eta"] for b in buckets], [b["gamma"] for b in buckets],
            [b["seg_w"] for b in buckets], alpha, beta, mask.to(device), attract_on.to(device),
            can_tunnel, [2.0, 3.0], torch.float64,
            torch.tensor([0.5, 2.0, math.inf, 0.45, 4.0, 0.2], **f64),  # agent_loss
            torch.tensor([0.5, 2.0, 1.0, 0.45, 4.0, 0.2], **f64),  # agent_best
            torch.tensor([9, 0, 1, 0, 2, 9]),  # stagnation
            torch.tensor(0.35, **f64),  # best_loss
            normal.to(device), uniform.to(device), step, rows, losses, gen, 0.6, 0.03, 0.05, 0.99,
            1e-8, 3,
            [torch.tensor([BOX_LOWER, BOX_UPPER], **f64).to(device) if box else None, None],
            global_stagnation]


def cloned(args):
    out = []
    for x in args:
        if torch.is_tensor(x):
            out.append(x.clone())
        elif isinstance(x, list) and x and torch.is_tensor(x[0]):
            out.append([None if t is None else t.clone() for t in x])
        elif isinstance(x, torch.Generator):
            out.append(torch.Generator(device=x.device).set_state(x.get_state()))
        else:
            out.append(x)
    return out


def assert_same_state(a, b, tol):
    for x, y in zip(a, b):
        if isinstance(x, list) and x and torch.is_tensor(x[0]):
            for u, v in zip(x, y):
                if u is not None:
                    torch.testing.assert_close(u, v, **tol)
        elif torch.is_tensor(x):
            torch.testing.assert_close(x, y, **tol)


@NATIVE_OPS
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("step", [1, 2, 3])  # a block's first step draws it afresh
@pytest.mark.parametrize("poison", [True, False])
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("global_stagnation", [False, True])
def test_step_native_matches_torch(device, step, poison, sequential, box, global_stagnation):
    native_or_skip(device)
    args = step_case(device, step=step, poison=poison, box=box,
                     global_stagnation=global_stagnation) + [sequential]
    reference = cloned(args)
    fates = torch.ops.sb_native.qimad_step(*args)
    fates_ref = _reference.qimad_step(*reference)
    assert fates.tolist() == fates_ref.tolist()
    if step > 1:  # agent 5 jumps unless it improved on the swarm's best (global_stagnation)
        jump = 1 if global_stagnation else 2
        assert fates.tolist() == ([1, 0, -1, -1, 0, jump] if poison else [1, 0, 1, 1, 0, jump])
        # Agent 0 had its chance and did not jump: its count restarts only under the global rule.
        assert args[19].tolist()[0] == (0 if global_stagnation else 10)
    assert_same_state(args, reference, dict(rtol=1e-6, atol=1e-6))
    # The records exactly, and each reset agent holds the best weights (it was not updated).
    for index in (17, 18, 19, 20):
        assert torch.equal(args[index], reference[index])
    assert args[17].tolist()[2] == (math.inf if poison else 0.4)
    assert args[19].tolist()[5] == 0, "a tunnelling or improving agent's stagnation restarts"
    assert args[19].tolist()[3] == 1, "0.8 improves neither agent 3's best nor the swarm's"
    assert args[20].item() == 0.3, "agent 5 improved on the swarm's best"
    if poison:
        for th, bs in zip(args[0], args[3]):
            assert torch.equal(th[2], bs) and torch.equal(th[3], bs)
    if box:  # every updated row inside the box, the others as they were
        lower, upper = (torch.tensor(b, dtype=torch.float64) for b in (BOX_LOWER, BOX_UPPER))
        moved = args[0][0][[i for i, f in enumerate(fates.tolist()) if f > 0]].cpu()
        assert bool(((moved >= lower) & (moved <= upper)).all())
    # The model holds the best weights, in each parameter's shape.
    flat = torch.cat([p.reshape(-1).double() for p in args[4][:2]])
    assert torch.equal(flat, args[3][0])
    assert torch.equal(args[4][2].double(), args[3][1].double())


@NATIVE_OPS
@pytest.mark.parametrize("step", [1, 5])
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("box", [False, True])
def test_step_cpu_kernel_matches_its_composite(step, sequential, box):
    args = step_case("cpu", step=step, block=4, box=box, global_stagnation=box) + [sequential]
    composite = cloned(args)
    op = torch.ops.sb_native.qimad_step.default
    fates = op(*args)
    keys = torch._C.DispatchKeySet(torch._C.DispatchKey.CompositeExplicitAutograd)
    fates_composite = op.redispatch(keys, *composite)
    assert torch.equal(fates, fates_composite)
    assert_same_state(args, composite, dict(rtol=1e-6, atol=1e-6))


@NATIVE_OPS
def test_step_draws_a_block_once():
    """The normals and coins are drawn at the first step of each block only; the steps in
    between read their rows, so the generator stays put."""
    args = step_case("cpu", step=1, block=3, poison=False)
    args[14] = [0] * N  # no tunnelling, whose noise would come from the generator
    gen = args[26]
    op = torch.ops.sb_native.qimad_step.default
    op(*args)
    drawn = args[21].clone(), args[22].clone()
    state = gen.get_state()
    for step in (2, 3):
        args[23] = step
        op(*args)
        assert torch.equal(gen.get_state(), state)
    assert torch.equal(args[21], drawn[0]) and torch.equal(args[22], drawn[1])
    args[23] = 4
    op(*args)
    assert not torch.equal(args[21], drawn[0])


@NATIVE_OPS
def test_step_opcheck():
    torch.library.opcheck(torch.ops.sb_native.qimad_step.default, tuple(step_case("cpu")))
    torch.library.opcheck(torch.ops.sb_native.qimad_step.default,
                          tuple(step_case("cpu", box=True, global_stagnation=True)) + (True,))


@NATIVE_OPS
@pytest.mark.parametrize("index, bad, error, match", [
    (25, [0.1] * 5, ValueError, r"losses must hold one loss per agent \(6\)"),
    (24, [3, 2], ValueError, "rows must be strictly increasing"),
    (24, [0, 6], ValueError, r"rows must lie in \[0, 6\)"),
    (19, torch.zeros(6), TypeError, "stagnation must be Long"),
    (17, torch.zeros(5, dtype=torch.float64), ValueError, "agent_loss must be"),
    (21, torch.zeros(3, 2, 5, dtype=torch.float64), ValueError, "normal must be a contiguous"),
    (5, [2, 2], ValueError, "bucket_params must split params"),
    (5, [1, 2], ValueError, "the params of bucket 0 hold 5 elements, its theta has 8"),
    (14, [1] * 5, ValueError, r"can_tunnel must hold one flag per agent \(6\)"),
    (23, 0, ValueError, "step must be >= 1"),
    (10, torch.zeros(6, dtype=torch.float32), ValueError, "alpha must be a contiguous 1-D float64"),
    (33, [None], ValueError, r"bounds must hold one entry per bucket \(2\), got 1"),
    (33, [torch.zeros(2, 7, dtype=torch.float64), None], ValueError,
     r"bounds must be \(2, parameters\) = \(2, 8\)"),
    (33, [torch.zeros(2, 8), None], TypeError, "bounds must have the dtype of theta"),
    (33, [None, torch.zeros(4, 2).t()], ValueError, "bounds must be contiguous"),
])
def test_step_argument_checks(index, bad, error, match):
    args = step_case("cpu")
    args[index] = bad
    with pytest.raises(error, match=match):
        torch.ops.sb_native.qimad_step(*args)


@NATIVE_OPS
def test_step_checks_the_buckets_before_touching_the_records():
    args = step_case("cpu")
    args[6][1] = torch.tensor([0, 3])  # the float32 bucket has 4 columns
    records = [args[i].clone() for i in (17, 18, 19, 20)]
    with pytest.raises(ValueError, match="segments must run from 0 to 4"):
        torch.ops.sb_native.qimad_step(*args)
    for before, i in zip(records, (17, 18, 19, 20)):
        assert torch.equal(before, args[i])
