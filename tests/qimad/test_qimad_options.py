"""QIMADTorch's options beyond the seed: the lr key and torch's schedulers, box bounds and the
uniform start, the attraction, loss_ema, the sequential default and step_vectorized. The ops'
arithmetic under these options is tested in test_qimad_ops.py and test_qimad_step.py."""

import math

import pytest
import torch

from sb_native import _ops
from sb_native.optim import QIMADTorch
from tests.qimad.test_qimad import bumpy, closure_for, make_params, run
from tests.qimad.test_qimad_ops import QIMAD_OPS

BACKENDS = ["torch", pytest.param("native", marks=pytest.mark.skipif(
    not _ops.has_kernels(QIMAD_OPS, torch.device("cpu")), reason="no native QIMAD kernels"))]


def positions(opt):
    return torch.cat([opt.state[p]["swarm"].reshape(opt.param_groups[0]["num_agents"], -1)
                      for g in opt.param_groups for p in g["params"]], 1)


def rastrigin(x):
    return 10 * x.shape[-1] + (x * x - 10 * torch.cos(2 * math.pi * x)).sum(-1)


# ── lr, eta and the schedulers ───────────────────────────────────────────────

def test_lr_is_the_group_key_and_eta_its_old_name():
    p = make_params("cpu")
    assert QIMADTorch(p).param_groups[0]["lr"] == 0.05
    assert QIMADTorch(p, eta=0.1).param_groups[0]["lr"] == 0.1
    assert QIMADTorch(p, 8, 0.2).param_groups[0]["lr"] == 0.2  # the seed's positional eta
    assert QIMADTorch(p, lr=0.3, eta=0.3).param_groups[0]["lr"] == 0.3
    assert "eta" not in QIMADTorch(p).param_groups[0]
    with pytest.raises(ValueError, match="lr=0.1 and eta=0.2"):
        QIMADTorch(p, lr=0.1, eta=0.2)
    opt = QIMADTorch(p[:1])
    with pytest.raises(ValueError, match="add_param_group sets both lr=0.1 and eta=0.2"):
        opt.add_param_group({"params": p[1:], "lr": 0.1, "eta": 0.2})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_written_eta_is_taken_as_lr(backend):
    """Code written for the seed sets group["eta"] between steps: it must act as lr does."""
    runs = []
    for key in ("eta", "lr"):
        params = make_params("cpu", seed=2)
        opt = QIMADTorch(params, num_agents=4, seed=1, backend=backend)
        run(opt, params, 3)
        opt.param_groups[0][key] = 0.2
        run(opt, params, 3)
        assert opt.param_groups[0]["lr"] == 0.2 and "eta" not in opt.param_groups[0]
        runs.append(positions(opt))
    assert torch.equal(runs[0], runs[1])


SCHEDULERS = {
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30),
    # QIMADTorch has no momentum for OneCycleLR to cycle.
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=40,
                                                                cycle_momentum=False),
    "ReduceLROnPlateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
        o, factor=0.5, patience=2, threshold=0.5, threshold_mode="abs"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SCHEDULERS)
def test_schedulers_drive_the_learning_rate(backend, name):
    """A lone agent is RMSprop: with the same scheduler on both, QIMADTorch and
    torch.optim.RMSprop follow the same learning rates and the same trajectory."""
    params = make_params("cpu", seed=1)
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt = QIMADTorch(params, num_agents=1, lr=0.05, seed=0, backend=backend)
    rms = torch.optim.RMSprop(twin, lr=0.05, alpha=0.99, eps=1e-8)
    ours, theirs = SCHEDULERS[name](opt), SCHEDULERS[name](rms)
    closure = closure_for(opt, params, bumpy)
    rates = set()
    for _ in range(40):
        value = opt.step(closure)
        rms.zero_grad()
        loss = bumpy(*twin)
        loss.backward()
        rms.step()
        for scheduler in (ours, theirs):
            if name == "ReduceLROnPlateau":
                scheduler.step(loss.item())
            else:
                scheduler.step()
        assert opt.param_groups[0]["lr"] == rms.param_groups[0]["lr"]
        rates.add(opt.param_groups[0]["lr"])
        for p, q in zip(params, twin):
            torch.testing.assert_close(opt.state[p]["swarm"][0], q.detach(), rtol=0, atol=1e-12)
    assert len(rates) > 2, "the scheduler changed the rate"
    assert math.isfinite(value)


# ── Box bounds and the uniform start ─────────────────────────────────────────

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("update_order", ["sequential", "synchronous"])
def test_agents_stay_in_the_box(backend, update_order):
    x = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    lower = torch.tensor([-1.0, -2.0, -0.5, -5.12, -5.12, 0.0], dtype=torch.float64)
    upper = torch.tensor([1.0, 0.5, 0.5, 5.12, 5.12, 3.0], dtype=torch.float64)
    opt = QIMADTorch([x], num_agents=6, seed=4, bounds=(lower, upper), init="uniform",
                     cooling=None, backend=backend, update_order=update_order)
    start = None
    for step in range(80):
        opt.step_vectorized(rastrigin)
        theta = positions(opt)
        if step == 0:
            start = theta.clone()
        assert bool(((theta >= lower) & (theta <= upper)).all())
    assert start is not None and float(start.std(0).min()) > 0.05, "the agents start spread out"
    assert opt.get_log() is not None and bool(((x >= lower) & (x <= upper)).all())


def test_uniform_start_is_uniform_in_the_box_and_seeded():
    def first_positions(seed):
        x = torch.nn.Parameter(torch.zeros(4000, dtype=torch.float64))
        opt = QIMADTorch([x], num_agents=3, seed=seed, bounds=(-2.0, 6.0), init="uniform")
        opt._init_swarm()
        return positions(opt)

    a, b, c = first_positions(1), first_positions(1), first_positions(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= -2.0 and float(a.max()) <= 6.0
    assert abs(float(a.mean()) - 2.0) < 0.05 and abs(float(a.var()) - 64 / 12) < 0.1


def test_bounds_per_group_and_broadcast_tensors():
    """A group's bounds may be tensors broadcasting to each of its parameters; a group
    without bounds is not clipped."""
    boxed = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    free = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    lower = torch.tensor([-0.1, -0.2])  # broadcasts over boxed's rows
    opt = QIMADTorch([{"params": [boxed], "bounds": (lower, 0.1)}, {"params": [free]}],
                     num_agents=4, seed=0, lr=0.5)
    steep = lambda a, b: ((a - 3) ** 2).sum() + ((b - 3) ** 2).sum()  # noqa: E731
    for _ in range(30):
        opt.step_batched(steep)
    swarm = opt.state[boxed]["swarm"]
    assert float(swarm.max()) <= 0.1 and float(swarm[..., 1].min()) >= -0.2
    assert torch.equal(swarm.amax(0), torch.full((3, 2), 0.1, dtype=torch.float64))
    assert float(opt.state[free]["swarm"].max()) > 1.0


@pytest.mark.parametrize("bounds, match", [
    ((1.0, -1.0), "lower <= upper"),
    ((0.0, math.nan), "must not hold NaN"),
    ((0.0,), "a pair"),
    ((torch.zeros(3), torch.ones(2)), "do not broadcast"),
])
def test_bad_bounds_are_refused(bounds, match):
    with pytest.raises(ValueError, match=match):
        QIMADTorch(make_params("cpu"), bounds=bounds)


def test_uniform_start_needs_finite_bounds():
    with pytest.raises(ValueError, match="init='uniform' needs finite bounds"):
        QIMADTorch(make_params("cpu"), init="uniform")
    with pytest.raises(ValueError, match="init='uniform' needs finite bounds"):
        QIMADTorch(make_params("cpu"), init="uniform", bounds=(-math.inf, 1.0))
    opt = QIMADTorch(make_params("cpu")[:1], init="uniform", bounds=(-1.0, 1.0))
    opt.add_param_group({"params": make_params("cpu")[1:], "bounds": None})
    with pytest.raises(ValueError, match="init='uniform' needs finite bounds"):
        opt.step_batched(bumpy)


@pytest.mark.parametrize("keyword, value, match", [
    ("stagnation", "own", "stagnation must be one of"),
    ("init", "zeros", "init must be one of"),
    ("attraction", -0.1, "attraction must be a finite number >= 0"),
    ("loss_ema", 1.0, r"loss_ema must be None or a float in \[0, 1\)"),
])
def test_option_validation(keyword, value, match):
    with pytest.raises(ValueError, match=match):
        QIMADTorch(make_params("cpu"), **{keyword: value})


# ── Attraction, stagnation, order ────────────────────────────────────────────

@pytest.mark.parametrize("backend", BACKENDS)
def test_attraction_is_a_group_setting_read_every_step(backend):
    params = make_params("cpu", seed=3)
    opt = QIMADTorch(params, num_agents=4, seed=0, attraction=0.0, backend=backend)
    run(opt, params, 2)
    assert torch.equal(opt._runtime.args.attract_on, torch.zeros(4, dtype=torch.float64))
    opt.param_groups[0]["attraction"] = 0.7
    run(opt, params, 1)
    assert torch.equal(opt._runtime.args.attract_on, torch.full((4,), 0.7, dtype=torch.float64))
    with pytest.raises(ValueError, match="share the swarm settings"):
        opt2 = QIMADTorch(params[:1], attraction=0.2)
        opt2.add_param_group({"params": params[1:], "attraction": 0.5})


@pytest.mark.parametrize("backend", BACKENDS)
def test_sequential_is_the_default_order(backend):
    finals = []
    for kw in ({}, {"update_order": "sequential"}, {"update_order": "synchronous"}):
        params = make_params("cpu", seed=5)
        opt = QIMADTorch(params, num_agents=5, seed=2, backend=backend, **kw)
        run(opt, params, 8)
        finals.append(positions(opt))
    assert torch.equal(finals[0], finals[1]) and not torch.equal(finals[0], finals[2])


@pytest.mark.parametrize("stagnation", ["personal", "global"])
def test_native_and_torch_agree_with_the_options(stagnation):
    if not _ops.has_kernels(QIMAD_OPS, torch.device("cpu")):
        pytest.skip("no native kernels")
    finals = []
    for backend in ("native", "torch"):
        x = torch.nn.Parameter(torch.zeros(10, dtype=torch.float64))
        opt = QIMADTorch([x], seed=11, bounds=(-5.12, 5.12), init="uniform", cooling=None,
                         stagnation=stagnation, backend=backend)
        opt.enable_tracking()
        for _ in range(150):
            best = opt.step_vectorized(rastrigin)
        finals.append((best, positions(opt), opt.get_log()["tunnels"]))
    assert finals[0][0] == finals[1][0] and finals[0][2] == finals[1][2]
    assert sum(finals[0][2]) > 0, "agents tunnelled"
    torch.testing.assert_close(finals[0][1], finals[1][1], rtol=0, atol=1e-12)


# ── loss_ema ─────────────────────────────────────────────────────────────────

def noisy(calls):
    """A loss whose every call adds its own offset, as a mini-batch changes the loss."""
    def loss(*ps):
        calls.append(None)
        return bumpy(*ps) + 0.5 * math.sin(1.7 * len(calls))
    return loss


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_ema_ranks_by_the_moving_average(backend):
    params = make_params("cpu", seed=6)
    opt = QIMADTorch(params, num_agents=4, seed=3, loss_ema=0.8, backend=backend)
    closure = closure_for(opt, params, noisy([]))
    ema, best_seen = [math.nan] * 4, math.inf
    for _ in range(25):
        best = opt.step(closure)
        raw = opt.get_agent_losses()  # the closures' own values
        ema = [r if math.isnan(e) else 0.8 * e + 0.2 * r for e, r in zip(ema, raw)]
        best_seen = min(best_seen, *ema)
        assert best == pytest.approx(best_seen, rel=1e-12)
    assert opt._swarm.loss_ema.tolist() == pytest.approx(ema, rel=1e-12)


def test_loss_ema_zero_is_the_plain_rule():
    finals = []
    for ema in (None, 0.0):
        params = make_params("cpu", seed=6)
        opt = QIMADTorch(params, num_agents=4, seed=3, loss_ema=ema)
        run(opt, params, 10, noisy([]))
        finals.append((positions(opt), opt._swarm.best_loss.item()))
    assert torch.equal(finals[0][0], finals[1][0]) and finals[0][1] == finals[1][1]


def test_loss_ema_survives_a_checkpoint():
    params = make_params("cpu", seed=6)
    opt = QIMADTorch(params, num_agents=4, seed=3, loss_ema=0.9)
    run(opt, params, 5, noisy([]))
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = QIMADTorch(twin, num_agents=4, seed=3, loss_ema=0.9)
    resumed.load_state_dict(opt.state_dict())
    assert torch.equal(resumed._swarm.loss_ema, opt._swarm.loss_ema)
    run(opt, params, 5, noisy([None] * 20))
    run(resumed, twin, 5, noisy([None] * 20))
    assert torch.equal(positions(opt), positions(resumed))


def test_a_checkpoint_from_before_the_new_keys_loads():
    params = make_params("cpu", seed=1)
    opt = QIMADTorch(params, num_agents=3, seed=0)
    run(opt, params, 3)
    saved = opt.state_dict()
    for group in saved["param_groups"]:  # as saved before lr, bounds and attraction existed
        group["eta"] = group.pop("lr")
        del group["bounds"], group["attraction"]
    del saved["qimad"]["loss_ema"]
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    resumed = QIMADTorch(twin, num_agents=3, seed=0)
    resumed.load_state_dict(saved)
    run(opt, params, 3)
    run(resumed, twin, 3)
    assert torch.equal(positions(opt), positions(resumed))
    assert resumed.param_groups[0]["lr"] == 0.05


# ── step_vectorized ──────────────────────────────────────────────────────────

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k_eval", [None, 3])
def test_step_vectorized_matches_step_batched(backend, k_eval):
    finals = []
    for mode in ("vectorized", "batched", "jac"):
        x = torch.nn.Parameter(torch.linspace(-2, 2, 7, dtype=torch.float64))
        opt = QIMADTorch([x], num_agents=5, seed=8, k_eval=k_eval, backend=backend)
        for _ in range(20):
            if mode == "batched":
                opt.step_batched(rastrigin)
            elif mode == "vectorized":
                opt.step_vectorized(rastrigin)
            else:
                opt.step_vectorized(rastrigin, lambda X: 2 * X + 20 * math.pi
                                    * torch.sin(2 * math.pi * X))
        finals.append(positions(opt))
    torch.testing.assert_close(finals[0], finals[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(finals[0], finals[2], rtol=0, atol=1e-12)


def test_step_vectorized_checks_what_the_loss_returns():
    x = torch.nn.Parameter(torch.zeros(3))
    opt = QIMADTorch([x], num_agents=4, seed=0)
    with pytest.raises(ValueError, match=r"one value per agent evaluated \(4, got 1\)"):
        opt.step_vectorized(lambda X: X.sum())


def test_swarm_options_are_group_settings_saved_and_read_at_the_next_step():
    params = make_params("cpu", seed=2)
    opt = QIMADTorch(params, num_agents=4, seed=0, stagnation="personal", loss_ema=None)
    run(opt, params, 2)
    saved = opt.state_dict()["param_groups"][0]
    assert (saved["stagnation"], saved["loss_ema"], saved["init"]) == ("personal", None, "model")
    assert not opt._runtime.args.global_stagnation
    opt.param_groups[0]["stagnation"] = "global"
    opt.param_groups[0]["loss_ema"] = 0.5
    run(opt, params, 1)
    assert opt._runtime.args.global_stagnation and opt._runtime.session is None
    assert not math.isnan(opt._swarm.loss_ema[0].item())
    opt.param_groups[0]["stagnation"] = "sometimes"
    with pytest.raises(ValueError, match="stagnation must be one of"):
        run(opt, params, 1)
