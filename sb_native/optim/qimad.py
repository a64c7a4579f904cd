"""QIMADTorch: Quantum-Inspired Multi-Agent Descent as a torch.optim.Optimizer.

A swarm of `num_agents` copies of the weights. Every step evaluates `k_eval` agents (round
robin), then moves each evaluated agent by an RMSProp step, an attraction to the best-known
weights, a fidelity-weighted pull towards its topology neighbours and, when it stagnates, a
random tunnelling jump; the model is left holding the best-known weights. See docs/qimad.md for
the deliberate differences from the reference implementation.

Layout: the swarm of all parameters sharing a (device, dtype) is one contiguous
(agents, parameters) buffer, a "bucket"; a parameter tensor is a column range ("segment") of it.
The per-step swarm update is one native op per bucket (sb_native::qimad_update) and the work on
the angles (fidelity weights, attraction coefficients, random walk) one op for the swarm
(sb_native::qimad_angles); `backend="torch"` runs their pure-torch mirrors instead.
"""

import math
from typing import Callable, Dict, List, Optional

import torch

from .. import _ops
from . import _kernels
from ._stepping import collect_grad, functional_loss, loss_value, step_hooks
from ._swarm import _Bucket, _neighbours, temperature

_RMS_DECAY = 0.99
_EPS = 1e-8
_ATTRACTION = 0.2
_STAGNATION_LIMIT = 3
_TOPOLOGIES = ("complete", "ring", "grid", "random")
_COOLINGS = ("cosine", "linear", "exponential", None)
_BACKENDS = ("auto", "native", "torch")
# Settings of the swarm as a whole (its angles, schedule and evaluation order), which every
# parameter group must share; eta, gamma and k may differ per group.
_SWARM_KEYS = ("num_agents", "alpha_lr", "beta_lr", "topology", "k_eval", "cooling",
               "total_steps", "min_temp")


def _resolve_backend(backend: str, device: torch.device) -> str:
    chosen = _ops.resolve_backend(backend, device)
    if chosen == "native" and not _kernels.native_available(device):
        if backend == "native":
            raise RuntimeError("backend='native' was requested but this build of the extension "
                               f"has no QIMADTorch kernels for device {device}")
        chosen = "torch"
    return chosen


class QIMADTorch(torch.optim.Optimizer):
    """QUIMAD as a torch optimizer (population based: `k_eval` evaluations per step).

    Args: as the reference (see docs/qimad.md): params, num_agents=8, eta=0.05 (RMSProp rate),
    gamma=0.05 (communication strength), k=2 (fidelity exponent), alpha_lr=0.03, beta_lr=0.03
    (Bloch-angle random-walk rates), topology='complete'|'ring'|'grid'|'random', k_eval=None
    (agents evaluated per step, all by default), seed=None, cooling='cosine'|'linear'|
    'exponential'|None with total_steps and min_temp; plus backend='auto'|'native'|'torch'.
    eta, gamma and k may differ per parameter group; the other settings belong to the swarm and
    must be equal in every group.
    """

    def __init__(self, params, num_agents: int = 8, eta: float = 0.05, gamma: float = 0.05,
                 k: float = 2, alpha_lr: float = 0.03, beta_lr: float = 0.03,
                 topology: str = "complete", k_eval: Optional[int] = None,
                 seed: Optional[int] = None, cooling: Optional[str] = "cosine",
                 total_steps: Optional[int] = None, min_temp: float = 0.05, *,
                 backend: str = "auto"):
        if not isinstance(num_agents, int) or num_agents < 1:
            raise ValueError(f"num_agents must be a positive int, got {num_agents!r}")
        if topology not in _TOPOLOGIES:
            raise ValueError(f"topology must be one of {_TOPOLOGIES}, got {topology!r}")
        if cooling not in _COOLINGS:
            raise ValueError(f"cooling must be one of {_COOLINGS}, got {cooling!r}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        if k_eval is not None and k_eval < 1:
            raise ValueError(f"k_eval must be None or >= 1, got {k_eval!r}")
        k_eval = num_agents if k_eval is None else min(int(k_eval), num_agents)
        defaults = dict(num_agents=num_agents, eta=eta, gamma=gamma, k=k, alpha_lr=alpha_lr,
                        beta_lr=beta_lr, topology=topology, k_eval=k_eval, cooling=cooling,
                        total_steps=total_steps, min_temp=min_temp)
        self._backend = backend
        self._seed = seed
        self._swarm: Optional[dict] = None
        self._buckets: List[_Bucket] = []
        self._slots: list = []  # per agent: (parameter, position view, gradient view)
        self._hyper_key = None  # the groups' (eta, gamma, k) the buckets were built for
        self._ks: List[float] = []  # their distinct fidelity exponents
        self._current: Optional[int] = None  # the agent whose closure runs inside step()
        super().__init__(params, defaults)
        for p in self._trainable():  # fail now, not at the first step
            _resolve_backend(backend, p.device)
        self._track = False
        self._last_agent_losses: list = []
        self.reset_log()

    # ── Parameter groups ─────────────────────────────────────────────────────

    def add_param_group(self, param_group: dict) -> None:
        if getattr(self, "_swarm", None) is not None:
            raise RuntimeError("QIMADTorch cannot take new parameter groups after its first step")
        super().add_param_group(param_group)
        new, first = self.param_groups[-1], self.param_groups[0]
        bad = [key for key in _SWARM_KEYS if new[key] != first[key]]
        if bad:
            self.param_groups.pop()
            raise ValueError(f"parameter groups must share the swarm settings {bad}; only eta, "
                             "gamma and k may differ per group")

    def _trainable(self) -> List[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"] if p.requires_grad]

    # ── Swarm construction ───────────────────────────────────────────────────

    def _build_buckets(self) -> None:
        n = self.param_groups[0]["num_agents"]
        keyed: Dict[tuple, tuple] = {}
        for gi, g in enumerate(self.param_groups):
            for p in g["params"]:
                if p.requires_grad:
                    if p.is_sparse:
                        raise RuntimeError("QIMADTorch does not support sparse parameters")
                    ps, gs = keyed.setdefault((p.device, p.dtype), ([], []))
                    ps.append(p)
                    gs.append(gi)
        self._buckets = [_Bucket(ps, gs, n, _resolve_backend(self._backend, ps[0].device))
                         for ps, gs in keyed.values()]
        self._hyper_key = None  # per-segment hyperparameters not built yet
        # Per agent, every parameter with its views of the agent's position and gradient rows.
        self._slots = [[slot for b in self._buckets
                        for slot in zip(b.params, b.agent_views[i], b.grad_views[i])]
                       for i in range(n)]
        # Per-parameter state is views of the flat buffers, so state_dict() carries the swarm.
        self.state.clear()
        for b in self._buckets:
            for p, sw, sq, bs in zip(b.params, b.views(b.theta), b.views(b.square_avg),
                                     b.best_views):
                self.state[p] = {"swarm": sw, "square_avg": sq, "best": bs}

    def _init_swarm(self) -> None:
        params = self._trainable()
        if not params:
            raise ValueError("QIMADTorch got no parameters that require grad")
        group = self.param_groups[0]
        n = group["num_agents"]
        self._build_buckets()
        for b in self._buckets:
            b.best.copy_(torch.cat([p.detach().reshape(-1) for p in b.params]))
            b.theta.copy_(b.best.expand_as(b.theta))
        home = params[0].device
        gen = torch.Generator(device=home)
        if self._seed is None:
            gen.seed()  # a fresh nondeterministic seed; never the global RNG
        else:
            gen.manual_seed(self._seed)
        f64 = dict(device=home, dtype=torch.float64)
        alpha = torch.rand(n, generator=gen, **f64) * math.pi
        beta = torch.rand(n, generator=gen, **f64) * (2 * math.pi)
        nb = _neighbours(n, group["topology"], gen)
        self._swarm = dict(
            step=0, best_loss=math.inf, agent_best=[math.inf] * n, stagnation=[0] * n,
            cached_losses=[math.inf] * n, alpha=alpha, beta=beta, neighbours=nb, generator=gen)
        self._finish_swarm()

    def _finish_swarm(self) -> None:
        """Derived, unsaved swarm state: adjacency mask and attraction switch per agent."""
        sw = self._swarm
        n = self.param_groups[0]["num_agents"]
        home = sw["alpha"].device
        mask = torch.zeros(n, n, dtype=torch.bool)
        for i, row in enumerate(sw["neighbours"]):
            mask[i, row] = True
        sw["mask"] = mask.to(home)
        sw["has_nb"] = [bool(row) for row in sw["neighbours"]]
        # The attraction to best only acts in a swarm: a lone agent is plain RMSProp.
        sw["attract_on"] = torch.tensor([_ATTRACTION if h else 0.0 for h in sw["has_nb"]],
                                        dtype=torch.float64, device=home)
        sw["backend"] = _resolve_backend(self._backend, home)
        # W and the attraction come in the buckets' dtype when they share one (float64, the
        # angles' dtype, otherwise); "direct" marks the buckets that take them as they come.
        dtypes = {b.dtype for b in self._buckets}
        sw["dtype"] = dtypes.pop() if len(dtypes) == 1 else torch.float64
        sw["direct"] = [b.device == home and b.dtype == sw["dtype"] for b in self._buckets]
        sw["rows_cache"] = {}

    # ── Evaluation order ─────────────────────────────────────────────────────

    def _begin_step(self) -> List[int]:
        """Counts the step and returns the agents to evaluate (round robin over k_eval)."""
        if self._swarm is None:
            self._init_swarm()
        sw = self._swarm
        sw["step"] += 1
        n, k_eval = self.param_groups[0]["num_agents"], self.param_groups[0]["k_eval"]
        base = (sw["step"] - 1) * k_eval % n
        return sorted({(base + j) % n for j in range(k_eval)})

    def _rows(self, rows: List[int], device) -> torch.Tensor:
        cache = self._swarm["rows_cache"]
        key = (tuple(rows), device)
        if key not in cache:
            if len(cache) > 64:  # tunnel-row sets vary; keep only a few index tensors alive
                cache.clear()
            cache[key] = torch.tensor(rows, dtype=torch.int64, device=device)
        return cache[key]

    # ── Steps ────────────────────────────────────────────────────────────────

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self._current is None:
            return super().zero_grad(set_to_none)
        # Inside step(): the gradients accumulate straight into the swarm's gradient rows.
        agent = self._current
        for b in self._buckets:
            b.grad_rows[agent].zero_()
        for p, _, grad in self._slots[agent]:
            p.grad = grad

    @step_hooks
    def step(self, closure: Callable[[], torch.Tensor]) -> float:  # type: ignore[override]
        """One step: closure() once per evaluated agent (it must zero grads, compute the loss
        and call backward), then the swarm update. Returns the best loss seen so far."""
        if closure is None:
            raise RuntimeError("QIMADTorch.step needs a closure that returns the loss")
        rows = self._begin_step()
        losses = list(self._swarm["cached_losses"])
        for b in self._buckets:  # rows not evaluated this step are not read by the update
            b.grad.zero_()
        slots = self._slots
        own = [p.data for p, _, _ in slots[0]]
        try:
            # Grad mode is switched once around all closures rather than once per closure.
            with torch.enable_grad():
                for i in rows:
                    # The parameters are pointed at agent i's row of the swarm (no copy), and
                    # their gradients accumulate straight into its row of the gradient buffer.
                    for p, data, grad in slots[i]:
                        p.data = data
                        p.grad = grad
                    self._current = i  # for zero_grad; reset once, in the finally below
                    losses[i] = loss_value(closure())
                    for p, _, grad in slots[i]:
                        if p.grad is not grad:
                            collect_grad(p.grad, grad)
        finally:
            self._current = None
            for (p, _, _), data in zip(slots[0], own):
                p.data = data
        with torch.no_grad():
            return self._update(rows, losses)

    @torch.no_grad()
    def step_batched(self, loss_fn: Callable, module: Optional[torch.nn.Module] = None, *,
                     randomness: str = "error") -> float:
        """One step evaluating all agents due this step in one vectorised call.

        Without `module`, loss_fn(*params) takes the parameter tensors in the optimizer's order.
        With `module`, loss_fn(forward) takes a function running `module` on one agent's
        weights (torch.func.functional_call), e.g. lambda f: F.cross_entropy(f(X), y).
        Gradients come from torch.func.vmap(torch.func.grad_and_value(...)); randomness is
        vmap's ('error', 'different' or 'same'). Returns the best loss seen so far."""
        rows = self._begin_step()
        n = self.param_groups[0]["num_agents"]
        stacked, rows_by_bucket = [], []
        for b in self._buckets:
            if len(rows) == n:
                theta = b.theta
            else:
                rows_by_bucket.append(self._rows(rows, b.device))
                theta = b.theta.index_select(0, rows_by_bucket[-1])
            stacked.extend(b.views(theta))
        fn = loss_fn if module is None else functional_loss(
            loss_fn, module, [p for b in self._buckets for p in b.params])
        value_and_grads = torch.func.vmap(
            torch.func.grad_and_value(fn, argnums=tuple(range(len(stacked)))),
            randomness=randomness)
        with torch.enable_grad():
            grads, values = value_and_grads(*stacked)
        start = 0
        for bi, b in enumerate(self._buckets):
            flat = torch.cat([g.reshape(len(rows), -1)
                              for g in grads[start:start + len(b.params)]], dim=1)
            start += len(b.params)
            if len(rows) == n:
                b.grad.copy_(flat)
            else:
                b.grad.index_copy_(0, rows_by_bucket[bi], flat)
        losses = list(self._swarm["cached_losses"])
        for i, value in zip(rows, values.detach().reshape(-1).tolist()):
            losses[i] = value
        return self._update(rows, losses)

    def _exponents(self) -> List[float]:
        """The distinct fidelity exponents k, one matrix each. When a group's eta, gamma or k
        changed since the last step, the buckets' per-segment values are rebuilt first."""
        key = tuple((g["eta"], g["gamma"], g["k"]) for g in self.param_groups)
        if key != self._hyper_key:
            self._hyper_key = key
            self._ks = sorted({float(g["k"]) for g in self.param_groups})
            k_index = {k: i for i, k in enumerate(self._ks)}
            for b in self._buckets:
                b.set_hyper(self.param_groups, k_index)
        return self._ks

    def _update(self, rows: List[int], losses: List[float]) -> float:
        """Best/stagnation bookkeeping, random draws and the swarm update, after evaluation."""
        sw, group = self._swarm, self.param_groups[0]
        n = group["num_agents"]
        # An agent whose loss or gradient is not finite is sent back to the best weights and
        # sits this update out, so its values never reach the others through communication.
        grad_sums = [b.grad.sum(1).tolist() for b in self._buckets]
        bad = [i for i in rows
               if not math.isfinite(losses[i]) or not all(math.isfinite(s[i]) for s in grad_sums)]
        good = [i for i in rows if i not in bad] if bad else rows
        cached = sw["cached_losses"]
        for i in rows:
            cached[i] = math.inf if i in bad else losses[i]
        self._last_agent_losses = losses  # the caller's fresh list
        if self._track:
            self._log["losses"].append(list(losses))

        best = min(cached)
        if best < sw["best_loss"]:
            sw["best_loss"] = best
            best_i = cached.index(best)
            for b in self._buckets:
                b.best.copy_(b.theta_rows[best_i])
        for i in rows:  # stagnation counts this agent's evaluations without improvement
            if cached[i] < sw["agent_best"][i] - _EPS:
                sw["agent_best"][i] = cached[i]
                sw["stagnation"][i] = 0
            else:
                sw["stagnation"][i] += 1
        for i in bad:
            for b in self._buckets:
                b.theta_rows[i].copy_(b.best)
                b.grad_rows[i].zero_()

        temp = temperature(self._swarm["step"], self.param_groups[0])
        gen, home = sw["generator"], sw["alpha"].device
        normal = torch.randn(2, n, generator=gen, device=home, dtype=torch.float64)
        uniform = torch.rand(2, n, generator=gen, device=home, dtype=torch.float64)
        alphas, (jump_u, _) = sw["alpha"].tolist(), uniform.tolist()  # angles before the walk
        tunnels = [i for i in good if sw["has_nb"][i] and sw["stagnation"][i] > _STAGNATION_LIMIT
                   and jump_u[i] < math.sin(alphas[i] / 2) ** 2]
        for i in tunnels:
            sw["stagnation"][i] = 0
        # Fidelity matrices and attraction coefficients from the angles before the step, then
        # the angles' random walk (in place), in one call.
        W, attract = _kernels.angles(
            sw["backend"], sw["alpha"], sw["beta"], sw["mask"], self._exponents(), normal,
            uniform, sw["attract_on"], group["alpha_lr"] * temp, group["beta_lr"] * temp, _EPS,
            sw["dtype"])

        for b, direct in zip(self._buckets, sw["direct"]):
            if not direct:  # a bucket on another device or of another dtype than W
                W_b, attract_b = W.to(b.device, b.dtype), attract.to(b.device, b.dtype)
            else:
                W_b, attract_b = W, attract
            if tunnels:
                noise = torch.rand(len(tunnels), b.P, generator=gen, device=home,
                                   dtype=b.dtype).to(b.device)
            else:
                noise = b.no_tunnel_noise
            _kernels.update(b.backend, b.theta, b.square_avg, b.grad, b.best, W_b,
                            self._rows(good, b.device), attract_b, b.segments, b.seg_eta,
                            b.seg_gamma, b.seg_w, self._rows(tunnels, b.device), noise, temp,
                            _RMS_DECAY, _EPS)
            torch._foreach_copy_(b.params, b.best_views)

        if self._track:
            self._log["tunnels"].append(len(tunnels))
            self._log["alphas"].append(sw["alpha"].tolist())
            self._log["betas"].append(sw["beta"].tolist())
            self._log["temperature"].append(temp)
            b = self._buckets[0]
            self._log["diversity"].append(float(b.theta[:, :b.bounds[1]].var(dim=0).mean()))
        return sw["best_loss"]

    # ── Diagnostics (the reference's API) ────────────────────────────────────

    def get_agent_losses(self) -> list:
        """Losses of all agents at the last step (cached values for agents not evaluated)."""
        return list(self._last_agent_losses)

    def enable_tracking(self) -> None:
        self._track = True

    def reset_log(self) -> None:
        self._log = {"losses": [], "diversity": [], "tunnels": [], "alphas": [], "betas": [],
                     "temperature": []}

    def get_log(self) -> dict:
        return {k: list(v) for k, v in self._log.items()}

    # ── Checkpoints ──────────────────────────────────────────────────────────

    def state_dict(self) -> dict:
        """The torch.optim state dict (per parameter: its swarm, RMS state and best weights)
        plus "qimad": step, losses, stagnation, angles, topology and the generator state."""
        out = super().state_dict()
        sw = self._swarm
        if sw is not None:
            out["qimad"] = dict(
                step=sw["step"], best_loss=sw["best_loss"], agent_best=list(sw["agent_best"]),
                stagnation=list(sw["stagnation"]), cached_losses=list(sw["cached_losses"]),
                last_agent_losses=list(self._last_agent_losses), alpha=sw["alpha"].clone(),
                beta=sw["beta"].clone(), neighbours=[list(r) for r in sw["neighbours"]],
                generator=sw["generator"].get_state())
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        saved = state_dict.pop("qimad", None)
        super().load_state_dict(state_dict)
        if saved is None:
            self._swarm = None
            self.state.clear()
            return
        loaded = {p: dict(self.state[p]) for p in self._trainable()}
        self._build_buckets()  # fresh flat buffers; self.state now views them
        for p, st in loaded.items():
            for key in ("swarm", "square_avg", "best"):
                self.state[p][key].copy_(st[key])
        home = self._trainable()[0].device
        gen = torch.Generator(device=home)
        gen.set_state(saved["generator"])
        self._swarm = dict(
            step=saved["step"], best_loss=saved["best_loss"],
            agent_best=list(saved["agent_best"]), stagnation=list(saved["stagnation"]),
            cached_losses=list(saved["cached_losses"]),
            alpha=saved["alpha"].to(home, torch.float64, copy=True),  # updated in place
            beta=saved["beta"].to(home, torch.float64, copy=True),
            neighbours=[list(r) for r in saved["neighbours"]], generator=gen)
        self._last_agent_losses = list(saved["last_agent_losses"])
        self._finish_swarm()
