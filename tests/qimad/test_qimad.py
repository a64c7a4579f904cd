"""QIMADTorch the optimizer: against torch.optim.RMSprop (one agent), against the seed's
reference class with its random draws scripted to ours, against an explicit synchronous step,
and each deliberate fix (own generator, per-group hyperparameters, checkpoints, non-finite
agents, stagnation under k_eval, native = torch backends, step_batched = step)."""

import copy
import io
import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import sb_native
from sb_native import _ops
from sb_native.optim import QIMADTorch, _reference, ops
from tests.helpers import load_reference
from tests.qimad.test_qimad_ops import NATIVE_OPS, QIMAD_OPS, update_loops

LOG_KEYS = {"losses", "diversity", "tunnels", "alphas", "betas", "temperature"}


def bumpy(*params):
    """Rastrigin on all coordinates: many local minima, so agents stagnate and tunnel."""
    return sum((p * p - 3 * torch.cos(2 * math.pi * p)).sum() for p in params) + 0.0


def bowl(*params):
    """A convex bowl: agents reach it, oscillate at RMSProp's step size, stagnate and tunnel,
    without the chaos that would amplify rounding differences between implementations."""
    return sum(((p - 0.5) ** 2).sum() for p in params)


def make_params(device, dtype=torch.float64, seed=0, shapes=((3, 4), (5,))):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter((torch.rand(*s, generator=g, dtype=dtype) * 4 - 2).to(device))
            for s in shapes]


def closure_for(opt, params, loss=bumpy, calls=None):
    def closure():
        opt.zero_grad()
        value = loss(*params)
        value.backward()
        if calls is not None:
            calls.append([p.detach().clone() for p in params])
        return value
    return closure


def swarm(opt):
    """Per parameter: the (agents, *shape) positions, as the state_dict carries them."""
    return [opt.state[p]["swarm"].clone() for g in opt.param_groups for p in g["params"]]


def run(opt, params, steps, loss=bumpy):
    closure = closure_for(opt, params, loss)
    return [opt.step(closure) for _ in range(steps)]


class DrawRecorder:
    """Records every draw the optimizer makes from its own generator, in order, with each
    step's row of the blocks of normals and coins recorded as that step's randn and rand."""

    def __init__(self, monkeypatch):
        self.draws = []
        draw_slot = _reference.draw_slot

        def slot_wrapper(normal, uniform, step, generator):
            slot = draw_slot(normal, uniform, step, generator)
            self.draws += [("randn", normal[slot].clone()), ("rand", uniform[slot].clone())]
            return slot
        monkeypatch.setattr(_reference, "draw_slot", slot_wrapper)
        for name in ("rand", "randn"):
            original = getattr(torch, name)

            def wrapper(*size, _original=original, _name=name, **kw):
                out = _original(*size, **kw)
                # (steps, 2, agents) blocks: their rows are recorded step by step above.
                if kw.get("generator") is not None and out.dim() < 3:
                    self.draws.append((_name, out.clone()))
                return out
            monkeypatch.setattr(torch, name, wrapper)


class ScriptedTorch:
    """Stands in for `torch` inside the reference module and serves each of its random draws
    from the draws our optimizer made, in the order the reference consumes them (per agent:
    two random-walk normals, then for an evaluated agent the jump coin if it stagnates, the
    tunnelling noise per parameter, and the attraction coin)."""

    def __init__(self, draws, n):
        self.n = n
        self.init = [d for _, d in draws[:2]]
        self.steps = []
        for name, d in draws[2:]:
            if name == "randn":
                self.steps.append({"normal": d})
            elif d.shape == (2, n):
                self.steps[-1]["uniform"] = d
            else:
                self.steps[-1]["noise"] = d
        self.normals = 0
        self.served_jump = set()
        self.noise_taken = {}
        self.optimizer = None

    def __getattr__(self, name):
        return getattr(torch, name)

    def randn(self, *size, generator=None, **kw):
        step, k = divmod(self.normals, 2 * self.n)
        self.normals += 1
        return self.steps[step]["normal"][k % 2, k // 2].reshape(1)

    def rand(self, *size, generator=None, **kw):
        if generator is not None and self.init:
            return self.init.pop(0)
        step, k = divmod(self.normals - 1, 2 * self.n)
        draws, agent = self.steps[step], k // 2
        if generator is None:  # tunnelling noise, one parameter tensor at a time
            flat = draws["noise"].reshape(-1)
            numel = math.prod(size[0] if len(size) == 1 and not isinstance(size[0], int) else size)
            taken = self.noise_taken.get(step, 0)
            self.noise_taken[step] = taken + numel
            return flat[taken:taken + numel].reshape(*size)
        if self.optimizer._stagnation[agent] > 3 and (step, agent) not in self.served_jump:
            self.served_jump.add((step, agent))
            return draws["uniform"][0, agent].reshape(1)
        return draws["uniform"][1, agent].reshape(1)


def against_reference(monkeypatch, steps, update_order="synchronous", **kw):
    """Runs ours (torch backend, recording its draws) and the reference (served those draws)
    from the same start; returns both optimizers and parameter lists."""
    ours_params = make_params("cpu", seed=2)
    ours = QIMADTorch(ours_params, seed=5, backend="torch", update_order=update_order, **kw)
    ours.enable_tracking()
    with monkeypatch.context() as m:
        recorder = DrawRecorder(m)
        ours_best = run(ours, ours_params, steps, bowl)
    n = ours.param_groups[0]["num_agents"]
    scripted = ScriptedTorch(recorder.draws, n)
    reference = load_reference(scripted)
    ref_params = make_params("cpu", seed=2)
    ref = reference.QIMADTorch(ref_params, **kw)
    scripted.optimizer = ref
    ref.enable_tracking()
    ref_best = run(ref, ref_params, steps, bowl)
    return ours, ours_params, ours_best, ref, ref_params, ref_best


def test_matches_reference_without_communication(monkeypatch):
    """gamma=0 makes the reference's one-by-one update order irrelevant, so everything else
    (RMSProp, attraction, best, stagnation, tunnelling, angles, cooling) must agree exactly."""
    steps = 40
    ours, ours_params, ours_best, ref, ref_params, ref_best = against_reference(
        monkeypatch, steps, num_agents=5, eta=0.3, gamma=0.0, total_steps=60)
    assert sum(ours.get_log()["tunnels"]) > 0, "the run must exercise tunnelling"
    assert ours_best == pytest.approx(ref_best, rel=1e-12, abs=1e-12)
    for p, q in zip(ours_params, ref_params):
        torch.testing.assert_close(ours.state[p]["swarm"], torch.stack(ref.state[q]["agents_theta"]),
                                   rtol=1e-11, atol=1e-11)
        torch.testing.assert_close(ours.state[p]["square_avg"], torch.stack(ref.state[q]["agents_v"]),
                                   rtol=1e-11, atol=1e-11)
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-11, atol=1e-11)
    ours_log, ref_log = ours.get_log(), ref.get_log()
    assert set(ours_log) == set(ref_log) == LOG_KEYS
    assert ours_log["tunnels"] == ref_log["tunnels"]
    for key in ("losses", "alphas", "betas", "temperature", "diversity"):
        assert torch.tensor(ours_log[key]).flatten().tolist() == pytest.approx(
            torch.tensor(ref_log[key]).flatten().tolist(), rel=1e-10, abs=1e-10), key
    assert ours._swarm.stagnation.tolist() == ref._stagnation


def test_matches_reference_communication_one_round(monkeypatch):
    """With k_eval=1 only one agent moves per step, so the reference's order cannot matter:
    over the first round (no tunnelling yet) fidelity weights and communication must agree."""
    ours, ours_params, _, ref, ref_params, _ = against_reference(
        monkeypatch, 5, num_agents=5, eta=0.1, gamma=0.4, k=3, k_eval=1)
    for p, q in zip(ours_params, ref_params):
        torch.testing.assert_close(ours.state[p]["swarm"], torch.stack(ref.state[q]["agents_theta"]),
                                   rtol=1e-11, atol=1e-11)
    assert ours.get_log()["tunnels"] == [0] * 5


def test_sequential_order_is_the_reference_exactly(monkeypatch):
    """update_order='sequential' reproduces the reference exactly with full communication
    and tunnelling, so the update order is the only difference between the two
    (bench/qimad/qimad_update_order.py measures what it costs); the synchronous default must
    differ from the reference on the same draws."""
    kw = dict(num_agents=5, eta=0.3, gamma=0.4, k=3, total_steps=60)
    ours, ours_params, ours_best, ref, ref_params, ref_best = against_reference(
        monkeypatch, 40, update_order="sequential", **kw)
    assert sum(ours.get_log()["tunnels"]) > 0, "the run must exercise tunnelling"
    assert ours_best == pytest.approx(ref_best, rel=1e-12, abs=1e-12)
    for p, q in zip(ours_params, ref_params):
        torch.testing.assert_close(ours.state[p]["swarm"], torch.stack(ref.state[q]["agents_theta"]),
                                   rtol=1e-10, atol=1e-10)
    assert ours.get_log()["tunnels"] == ref.get_log()["tunnels"]
    sync, sync_params, _, ref_sync, ref_sync_params, _ = against_reference(monkeypatch, 2, **kw)
    assert not torch.allclose(sync.state[sync_params[0]]["swarm"],
                              torch.stack(ref_sync.state[ref_sync_params[0]]["agents_theta"]),
                              rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["native", "torch"])
@pytest.mark.parametrize("batched", [False, True])
def test_single_agent_is_rmsprop(device, backend, batched):
    if backend == "native" and not _ops.has_kernels(QIMAD_OPS, device):
        pytest.skip("no native kernels here")
    params = make_params(device, seed=1)
    twin = [torch.nn.Parameter(p.detach().clone()) for p in params]
    # Two groups with their own eta: each must follow its own RMSprop learning rate.
    opt = QIMADTorch([{"params": params[:1]}, {"params": params[1:], "eta": 0.02}],
                     num_agents=1, eta=0.05, seed=0, backend=backend)
    rms = torch.optim.RMSprop([{"params": twin[:1]}, {"params": twin[1:], "lr": 0.02}],
                              lr=0.05, alpha=0.99, eps=1e-8)
    loss = lambda *ps: sum(((p - 0.3) ** 2 * (1 + p.abs())).sum() for p in ps)  # noqa: E731
    closure = closure_for(opt, params, loss)
    seen = []
    for _ in range(60):
        ours = opt.step_batched(loss) if batched else opt.step(closure)
        rms.zero_grad()
        value = loss(*twin)
        value.backward()
        assert opt.get_agent_losses()[0] == pytest.approx(value.item(), rel=1e-12, abs=1e-12)
        seen.append(value.item())
        # step() returns the best loss so far: the lone agent's lowest.
        assert ours == pytest.approx(min(seen), rel=1e-12, abs=1e-12)
        rms.step()
        for p, q in zip(params, twin):
            torch.testing.assert_close(opt.state[p]["swarm"][0], q.detach(), rtol=0, atol=1e-12)


def test_explicit_synchronous_step_with_per_group_hyperparameters(monkeypatch):
    """One step from a spread-out swarm, recomputed agent by agent (all positions from before
    the step) with each group's own eta, gamma and fidelity exponent k."""
    params = make_params("cpu", seed=3, shapes=((4, 3), (6,), (2,)))
    groups = [{"params": params[:1], "eta": 0.03, "gamma": 0.3, "k": 1},
              {"params": params[1:2], "eta": 0.07, "gamma": 0.0, "k": 2},
              {"params": params[2:], "gamma": 0.5, "k": 4}]
    opt = QIMADTorch(groups, num_agents=4, eta=0.05, seed=7, backend="torch",
                     update_order="synchronous")
    quadratic = lambda *ps: sum(((p - 1.5) ** 2).sum() for p in ps)  # noqa: E731
    run(opt, params, 6, quadratic)  # spread the agents out (the first step starts them equal)
    sw = opt._swarm
    before = torch.cat([opt.state[p]["swarm"].reshape(4, -1) for p in params], 1)
    square_avg = torch.cat([opt.state[p]["square_avg"].reshape(4, -1) for p in params], 1)
    grad = torch.func.vmap(torch.func.grad(lambda x: quadratic(x)))(before)
    alpha, beta = sw.alpha.clone(), sw.beta.clone()
    with monkeypatch.context() as m:
        recorder = DrawRecorder(m)
        run(opt, params, 1, quadratic)
    names = [name for name, _ in recorder.draws]
    assert names == ["randn", "rand"], "no tunnelling expected on a convex bowl"
    uniform = recorder.draws[1][1]
    best = torch.cat([opt.state[p]["best"].reshape(-1) for p in params])
    mask = torch.ones(4, 4, dtype=torch.bool).fill_diagonal_(False)
    W = torch.stack([_reference.qimad_fidelity(alpha, beta, mask, k, 1e-8)
                     for k in (1.0, 2.0, 4.0)])
    i64 = lambda v: torch.tensor(v, dtype=torch.int64)  # noqa: E731
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    expected, _ = update_loops([
        before, square_avg, grad, best, W, i64([0, 1, 2, 3]), 0.2 * uniform[1], i64([0, 12, 18, 20]),
        f64([0.03, 0.07, 0.05]), f64([0.3, 0.0, 0.5]), i64([0, 1, 2]), i64([]),
        torch.zeros(0, 20, dtype=torch.float64), 1.0, 0.99, 1e-8])
    after = torch.cat([opt.state[p]["swarm"].reshape(4, -1) for p in params], 1)
    torch.testing.assert_close(after, expected, rtol=1e-12, atol=1e-12)


def test_seed_repeats_and_global_rng_is_untouched(device):
    results = []
    for seed in (11, 11, 12):
        params = make_params(device, seed=0)
        opt = QIMADTorch(params, num_agents=6, eta=0.3, topology="random", seed=seed)
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        best = run(opt, params, 25)
        assert torch.equal(torch.get_rng_state(), cpu_state)
        if cuda_state is not None:
            assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), cuda_state))
        assert sum(opt.get_agent_losses()) < math.inf
        results.append((best, swarm(opt), opt._swarm.neighbours))
    assert results[0][0] == results[1][0]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))
    assert results[0][2] == results[1][2]
    assert not all(torch.equal(a, b) for a, b in zip(results[0][1], results[2][1]))


@pytest.mark.parametrize("topology", ["complete", "ring", "grid", "random"])
def test_topologies(topology):
    params = make_params("cpu")
    opt = QIMADTorch(params, num_agents=7, topology=topology, seed=3)
    run(opt, params, 2)
    nb = opt._swarm.neighbours
    assert all(nb[i] for i in range(7)) and all(i not in nb[i] for i in range(7))
    assert all(i in nb[j] for i in range(7) for j in nb[i])  # symmetric
    expected = {"complete": 6, "ring": 2}.get(topology)
    if expected:
        assert all(len(row) == expected for row in nb)
    if topology == "grid":  # 3 x 3 grid, 7 cells filled
        assert nb[0] == [3, 1] and nb[4] == [1, 3, 5]


@pytest.mark.parametrize("backend", ["native", "torch"])
@pytest.mark.parametrize("update_order", ["synchronous", "sequential"])
def test_checkpoint_resume_is_identical(device, backend, update_order, tmp_path):
    if backend == "native" and not _ops.has_kernels(QIMAD_OPS, device):
        pytest.skip("no native kernels here")
    kw = dict(num_agents=6, eta=0.3, k_eval=4, topology="random", seed=9, total_steps=40,
              backend=backend, update_order=update_order)
    params = make_params(device)
    opt = QIMADTorch(params, **kw)
    run(opt, params, 15)
    buffer = io.BytesIO()
    torch.save({"model": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buffer)
    uninterrupted = run(opt, params, 15)
    assert sum(opt.get_log()["tunnels"] or [0]) == 0  # tracking is off: log stays empty

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    resumed_params = [torch.nn.Parameter(t) for t in saved["model"]]
    resumed = QIMADTorch(resumed_params, **{**kw, "seed": 1234})  # the seed must not matter
    resumed.load_state_dict(saved["opt"])
    assert run(resumed, resumed_params, 15) == uninterrupted
    for a, b in zip(swarm(opt), swarm(resumed)):
        assert torch.equal(a, b)
    for p, q in zip(params, resumed_params):
        assert torch.equal(p, q)
        for key in ("square_avg", "best"):
            assert torch.equal(opt.state[p][key], resumed.state[q][key])
    assert resumed._swarm.stagnation.tolist() == opt._swarm.stagnation.tolist()
    assert resumed.get_agent_losses() == opt.get_agent_losses()


def test_state_dict_before_first_step_and_reload_resets():
    params = make_params("cpu")
    opt = QIMADTorch(params, seed=0)
    empty = opt.state_dict()
    assert "qimad" not in empty and not empty["state"]
    run(opt, params, 3)
    opt.load_state_dict(empty)
    assert opt._swarm is None
    run(opt, params, 1)  # starts a fresh swarm from the current weights


@pytest.mark.parametrize("backend", ["native", "torch"])
@pytest.mark.parametrize("poison", ["loss", "grad"])
def test_non_finite_agent_is_reset_and_never_spreads(device, backend, poison):
    if backend == "native" and not _ops.has_kernels(QIMAD_OPS, device):
        pytest.skip("no native kernels here")
    params = make_params(device)
    opt = QIMADTorch(params, num_agents=5, eta=0.1, gamma=0.5, seed=0, backend=backend)
    calls = []

    def closure():
        opt.zero_grad()
        calls.append(None)
        value = bumpy(*params)
        if len(calls) % 5 == 3:  # agent 2 of every step
            if poison == "loss":
                value = value * float("nan")
            else:
                value = value + (params[0] * float("inf")).sum() * 0
        value.backward()
        return value

    for _ in range(6):
        before = [opt.state[p]["square_avg"][2].clone() for p in params] if opt._swarm else None
        best = opt.step(closure)
        assert math.isfinite(best)
        for i, p in enumerate(params):
            positions = opt.state[p]["swarm"]
            assert bool(torch.isfinite(positions).all())
            assert torch.equal(positions[2], opt.state[p]["best"])
            assert torch.equal(p.detach(), opt.state[p]["best"])
            if before is not None:  # its gradient was ignored: RMS state untouched
                assert torch.equal(opt.state[p]["square_avg"][2], before[i])
    losses = opt.get_agent_losses()
    assert math.isfinite(losses[0]) and (not math.isfinite(losses[2]) or poison == "grad")


def test_k_eval_round_robin_and_stagnation_counts_evaluations():
    params = make_params("cpu")
    opt = QIMADTorch(params, num_agents=6, k_eval=4, eta=0.3, gamma=0.0, seed=1)
    seen = []
    closure = closure_for(opt, params, bumpy, calls=seen)
    evaluations = [0] * 6
    for step in range(12):
        positions_before = swarm(opt) if opt._swarm else None
        stagnation_before = opt._swarm.stagnation.tolist() if opt._swarm else [0] * 6
        seen.clear()
        opt.step(closure)
        expected = sorted({(step * 4 + j) % 6 for j in range(4)})
        assert len(seen) == 4
        if positions_before is not None:  # the closure saw exactly the due agents' weights
            for agent, weights in zip(expected, seen):
                for w, pos in zip(weights, positions_before):
                    assert torch.equal(w, pos[agent])
        for i in range(6):
            if i in expected:
                evaluations[i] += 1
                assert opt._swarm.stagnation[i] in (0, stagnation_before[i] + 1)
            else:  # an agent not evaluated neither moves nor stagnates
                assert opt._swarm.stagnation[i] == stagnation_before[i]
        assert all(s <= e for s, e in zip(opt._swarm.stagnation.tolist(), evaluations))


@NATIVE_OPS
@pytest.mark.parametrize("update_order", ["synchronous", "sequential"])
def test_native_and_torch_backends_agree(update_order):
    results = []
    for backend in ("native", "torch"):
        params = make_params("cpu", seed=4)
        groups = [{"params": params[:1], "k": 3, "gamma": 0.2}, {"params": params[1:]}]
        opt = QIMADTorch(groups, num_agents=7, eta=0.3, k_eval=5, topology="random", seed=3,
                         total_steps=50, cooling="linear", backend=backend,
                         update_order=update_order)
        opt.enable_tracking()
        best = run(opt, params, 30, bowl)
        results.append((best, swarm(opt), opt.get_log()))
    assert sum(results[0][2]["tunnels"]) > 0
    assert results[0][2]["tunnels"] == results[1][2]["tunnels"]
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-10, abs=1e-10)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k_eval", [None, 3])
def test_step_batched_matches_step(k_eval):
    """Same seed, same objective: N closures and one vmapped evaluation give one trajectory,
    for a plain function of the parameters and for a module through functional_call."""
    torch.manual_seed(0)
    X, y = torch.randn(40, 6, dtype=torch.float64), torch.randint(0, 3, (40,))
    template = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
                                   torch.nn.Linear(8, 3)).double()
    runs = []
    for mode in ("closure", "batched", "batched-module"):
        model = copy.deepcopy(template)
        opt = QIMADTorch(model.parameters(), num_agents=5, eta=0.05, k_eval=k_eval, seed=3)
        ce = torch.nn.functional.cross_entropy
        names = [n for n, _ in model.named_parameters()]
        for _ in range(8):
            if mode == "closure":
                best = opt.step(closure_for(opt, list(model.parameters()),
                                            lambda *_: ce(model(X), y)))
            elif mode == "batched":
                best = opt.step_batched(lambda *ps: ce(torch.func.functional_call(
                    model, dict(zip(names, ps)), (X,)), y))
            else:
                best = opt.step_batched(lambda forward: ce(forward(X), y), module=model)
        runs.append((best, swarm(opt), opt.get_agent_losses(), [p.detach() for p in model.parameters()]))
    for other in runs[1:]:
        assert other[0] == pytest.approx(runs[0][0], rel=1e-12)
        assert other[2] == pytest.approx(runs[0][2], rel=1e-12)
        for a, b in zip(other[1] + other[3], runs[0][1] + runs[0][3]):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_model_holds_best_weights_and_best_loss_is_monotone():
    params = make_params("cpu")
    opt = QIMADTorch(params, num_agents=4, eta=0.3, seed=0)
    opt.enable_tracking()
    best = run(opt, params, 20)
    assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))
    assert bumpy(*params).item() == pytest.approx(best[-1], rel=1e-12)
    assert best[-1] == min(min(row) for row in opt.get_log()["losses"])


def test_logging_api():
    params = make_params("cpu")
    opt = QIMADTorch(params, num_agents=3, seed=0, total_steps=10)
    run(opt, params, 2)
    assert opt.get_log() == {key: [] for key in LOG_KEYS}
    opt.enable_tracking()
    run(opt, params, 4)
    log = opt.get_log()
    assert set(log) == LOG_KEYS and all(len(v) == 4 for v in log.values())
    assert all(len(row) == 3 for row in log["losses"] + log["alphas"] + log["betas"])
    assert log["temperature"][0] == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 0.3)))
    assert len(opt.get_agent_losses()) == 3
    opt.reset_log()
    assert opt.get_log() == {key: [] for key in LOG_KEYS}


def test_backend_and_argument_validation(monkeypatch):
    params = make_params("cpu")
    with pytest.raises(ValueError, match="backend"):
        QIMADTorch(params, backend="cuda")
    with pytest.raises(ValueError, match="topology"):
        QIMADTorch(params, topology="star")
    with pytest.raises(ValueError, match="update_order must be one of"):
        QIMADTorch(params, update_order="gauss-seidel")
    with pytest.raises(ValueError, match="num_agents"):
        QIMADTorch(params, num_agents=0)
    with pytest.raises(ValueError, match="swarm settings"):
        QIMADTorch([{"params": params[:1]}, {"params": params[1:], "num_agents": 3}])
    opt = QIMADTorch(params[:1], seed=0)
    run(opt, params[:1], 1)
    with pytest.raises(RuntimeError, match="after its first step"):
        opt.add_param_group({"params": params[1:]})
    monkeypatch.setattr(_ops, "NATIVE", False)
    monkeypatch.setattr(_ops, "_REASON", "disabled for the test")
    with pytest.raises(RuntimeError, match="native"):
        QIMADTorch(params, backend="native")
    opt = QIMADTorch(params, backend="auto", seed=0)
    run(opt, params, 2)
    assert opt._buckets[0].backend == "torch"


def test_step_hooks_and_profiler_range():
    """step() skips Optimizer's record_function only when nothing would observe it: hooks run
    and a profiler sees the step's range as for any torch optimizer."""
    params = make_params("cpu")
    opt = QIMADTorch(params, num_agents=3, seed=0)
    calls = []
    handles = [opt.register_step_pre_hook(lambda *_: calls.append("pre")),
               opt.register_step_post_hook(lambda *_: calls.append("post")),
               register_optimizer_step_post_hook(
                   lambda *_: calls.append("global post"))]
    run(opt, params, 2)
    assert calls == ["pre", "post", "global post"] * 2
    for handle in handles:
        handle.remove()
    run(opt, params, 1)
    assert len(calls) == 6
    with torch.profiler.profile() as prof:
        run(opt, params, 1)
    assert "Optimizer.step#QIMADTorch.step" in {event.name for event in prof.events()}


def test_mixed_dtypes_make_one_bucket_each():
    a = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    b = torch.nn.Parameter(torch.randn(3, dtype=torch.float32))
    frozen = torch.nn.Parameter(torch.randn(2), requires_grad=False)
    opt = QIMADTorch([a, b, frozen], num_agents=3, seed=0)
    run(opt, [a, b], 5, lambda x, y: (x ** 2).sum() + (y.double() ** 2).sum())
    assert [(bk.dtype, bk.P) for bk in opt._buckets] == [(torch.float64, 4), (torch.float32, 3)]
    assert frozen not in opt.state


def test_exports():
    from sb_native.optim import QIMADTorch as exported
    assert exported is QIMADTorch and issubclass(QIMADTorch, torch.optim.Optimizer)
    if not hasattr(sb_native, "QIMADTorch"):
        pytest.skip("sb_native.QIMADTorch is exported by sb_native/__init__.py (lead's file)")
    assert sb_native.QIMADTorch is QIMADTorch


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_closures_that_zero_grads_otherwise_give_the_same_steps(backend):
    """A closure that calls the optimizer's zero_grad, one that sets the gradients to None
    itself and one that never zeroes them see the same gradients: a gradient row never keeps
    an earlier step's values, whichever way the closure leaves p.grad."""
    results = []
    for mode in ("optimizer", "none", "never"):
        params = make_params("cpu", seed=6)
        opt = QIMADTorch(params, num_agents=4, eta=0.2, k_eval=3, seed=1, backend=backend)

        def closure():
            if mode == "optimizer":
                opt.zero_grad()
            elif mode == "none":
                for p in params:
                    p.grad = None
            value = bumpy(*params)
            value.backward()
            return value
        best = [opt.step(closure) for _ in range(6)]
        results.append((best, swarm(opt)))
    for best, positions in results[1:]:
        assert best == results[0][0]
        for a, b in zip(positions, results[0][1]):
            assert torch.equal(a, b)


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_a_failing_closure_leaves_the_parameters_in_their_own_storage(backend):
    params = make_params("cpu", seed=3)
    own = [p.data_ptr() for p in params]
    opt = QIMADTorch(params, num_agents=4, seed=0, backend=backend)
    calls = []

    def closure():
        calls.append(1)
        if len(calls) == 6:  # the second agent of the second step
            raise ArithmeticError("closure failed")
        opt.zero_grad()
        value = bumpy(*params)
        value.backward()
        return value
    opt.step(closure)
    with pytest.raises(ArithmeticError, match="closure failed"):
        opt.step(closure)
    assert [p.data_ptr() for p in params] == own
    assert opt._current is None
    opt.zero_grad()  # outside step(): the parameters' own gradients again
    assert all(p.grad is None for p in params)
    assert math.isfinite(opt.step(closure))


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_closure_losses_of_any_numeric_form(backend):
    """A 0-dim tensor, a one-element float32 tensor and a Python float give the same steps."""
    results = []
    for form in ("tensor", "float32", "float"):
        params = make_params("cpu", seed=6)
        opt = QIMADTorch(params, num_agents=3, eta=0.2, seed=1, backend=backend)

        def closure():
            opt.zero_grad()
            value = bumpy(*params)
            value.backward()
            if form == "float32":
                return value.detach().float().reshape(1)
            return value.item() if form == "float" else value
        best = [opt.step(closure) for _ in range(5)]
        results.append((best, opt.get_agent_losses()))
    assert results[0][1] == results[2][1]
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-6)
    assert results[0][0] == results[2][0]


@NATIVE_OPS
def test_native_step_is_one_call_into_the_extension(monkeypatch):
    """With the native backend, step(closure) runs its closure loop and qimad_step in the
    extension's QimadSession: the Python loop's helpers are never called."""
    from sb_native.optim import qimad
    params = make_params("cpu", seed=3)
    opt = QIMADTorch(params, num_agents=4, seed=0, backend="native")
    monkeypatch.setattr(qimad, "loss_value", lambda loss: pytest.fail("Python loop ran"))
    monkeypatch.setattr(ops, "qimad_step",
                        lambda *a, **kw: pytest.fail("qimad_step called from Python"))
    assert math.isfinite(opt.step(closure_for(opt, params)))
    assert opt._runtime.session is not None



@pytest.mark.parametrize("backend", ["native", "torch"])
def test_step_counts_its_writes_to_the_parameters(backend):
    """Autograd sees the best weights' copy into the model as an in-place change."""
    params = make_params("cpu", seed=3)
    opt = QIMADTorch(params, num_agents=3, seed=0, backend=backend)
    before = [p._version for p in params]
    opt.step(closure_for(opt, params))
    assert all(p._version > v for p, v in zip(params, before))
