"""QIMADTorch: Quantum-Inspired Multi-Agent Descent as a torch.optim.Optimizer.

A swarm of `num_agents` copies of the weights. Every step evaluates `k_eval` agents (round
robin), then moves each evaluated agent by an RMSProp step, an attraction to the best-known
weights, a fidelity-weighted pull towards its topology neighbours and, when it stagnates, a
random tunnelling jump; the model is left holding the best-known weights. See docs/qimad.md for
the deliberate differences from the reference implementation.

Layout: the swarm of all parameters sharing a (device, dtype) is one contiguous
(agents, parameters) buffer, a "bucket"; a parameter tensor is a column range ("segment") of it.
Everything after a step's closures is one native call, sb_native::qimad_step: the finiteness
test, the loss and stagnation records, the random draws, the tunnelling choice, the work on the
angles (sb_native::qimad_angles: fidelity weights, attraction coefficients, random walk), the
swarm update of each bucket (sb_native::qimad_update) and the copy of the best weights into the
model; `backend="torch"` runs their torch references instead (ops.py picks one per op).
The swarm's saved state and what is derived from it live in _state.py.
"""

import math
from typing import Callable, Dict, List, Optional, Set

import torch

from .. import _checks, _distributed, _ops
from . import ops
from ._groups import (
    GROUP_NUMBERS,
    SWARM_NUMBERS,
    check_bounds,
    check_numbers,
    check_options,
    check_swarm_options,
    check_uniform_init,
    hyper_key,
    spread,
    structure_key,
    take_eta,
)
from ._ranks import RankSteps
from ._records import Records
from ._state import SwarmRuntime, SwarmState
from ._stepping import collect_grad, loss_value, session_step, step_hooks
from ._swarm import _Bucket, temperature
from ._vectorised import VectorisedSteps

# Settings of the swarm as a whole (its angles, schedule, evaluation order, attraction, start,
# stagnation rule and best tracking), which every parameter group must share; lr, gamma, k and
# bounds may differ per group.
_SWARM_KEYS = ("num_agents", "alpha_lr", "beta_lr", "topology", "k_eval", "cooling",
               "total_steps", "min_temp", "attraction", "init", "stagnation", "loss_ema")


def _resolve_backend(backend: str, device: torch.device) -> str:
    return _ops.resolve_backend(backend, device, algorithm="qimad")


class QIMADTorch(VectorisedSteps, Records, RankSteps, torch.optim.Optimizer):
    """QUIMAD as a torch optimizer (population based: `k_eval` evaluations per step).

    Args: as the reference (see docs/qimad.md): params, num_agents=8, eta=0.05 (the RMSProp
    learning rate, also given as lr=: the group key is "lr", so torch.optim.lr_scheduler
    drives it), gamma=0.05 (communication strength), k=2 (fidelity exponent), alpha_lr=0.03,
    beta_lr=0.03 (Bloch-angle random-walk rates), topology='complete'|'ring'|'grid'|'random',
    k_eval=None (agents evaluated per step, all by default), seed=None,
    cooling='cosine'|'linear'|'exponential'|None with total_steps and min_temp. Keyword only:
    - bounds=None or (lower, upper), floats or tensors broadcasting to each parameter: a box
      every agent is clipped to after each move; a tunnelling jump in a bounded coordinate is
      U(-1, 1) * 0.4 * (upper - lower) * temperature (the QIMAD authors' dynamics);
    - init='model' (every agent starts at the model's weights) or 'uniform' (uniform in the
      bounds, which every parameter must then have);
    - attraction=0.2: the pull towards the best weights is attraction * U(0, 1) per step;
    - stagnation='personal' (an agent stagnates while its own best does not improve; its count
      restarts when it jumps) or 'global' (while the swarm's best does not; the count restarts
      at every chance to jump: the authors' rule);
    - loss_ema=None or a decay in [0, 1): agents are ranked, and the best weights chosen, by a
      moving average of each agent's losses instead of its last loss (for mini-batch losses);
    - update_order='sequential' (agents move one after another in index order, each seeing the
      moves before it: the reference's order and the better one on the digits benchmark,
      bench/RESULTS.md) or 'synchronous' (every agent moves from the positions before the step:
      independent of how agents are numbered);
    - backend='auto'|'native'|'torch' and process_group (a torch.distributed group, True for the
      default one): the ranks share out the agents' evaluations in contiguous blocks. With
      update_order='synchronous' the swarm is sharded: each rank keeps and moves only its
      block's RMSProp state, and each rank broadcasts its block's moved positions every step;
      with 'sequential' each broadcasts its block's gradients and every rank makes the whole
      update (_ranks.py, docs/distributed.md).
    lr, gamma, k and bounds may differ per parameter group; the other settings belong to the
    swarm and must be equal in every group.

    >>> import torch, sb_native as sb
    >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
    >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
    >>> def closure():
    ...     optimizer.zero_grad()
    ...     loss = (weights ** 2).sum()
    ...     loss.backward()
    ...     return loss
    >>> best = [optimizer.step(closure) for _ in range(20)]
    >>> best[0], best[-1] < 0.1, float((weights.detach() ** 2).sum()) == best[-1]
    (5.0, True, True)
    """

    def __init__(self, params, num_agents: int = 8, eta: Optional[float] = None,
                 gamma: float = 0.05, k: float = 2, alpha_lr: float = 0.03,
                 beta_lr: float = 0.03, topology: str = "complete",
                 k_eval: Optional[int] = None, seed: Optional[int] = None,
                 cooling: Optional[str] = "cosine", total_steps: Optional[int] = None,
                 min_temp: float = 0.05, *, lr: Optional[float] = None, bounds=None,
                 init: str = "model", attraction: float = 0.2, stagnation: str = "personal",
                 loss_ema: Optional[float] = None, backend: str = "auto",
                 update_order: str = "sequential", process_group=None):
        if eta is not None and lr is not None and eta != lr:
            raise ValueError(f"QIMADTorch got lr={lr!r} and eta={eta!r}; eta is the old name "
                             "of lr: give one of them")
        lr = 0.05 if lr is None and eta is None else (lr if lr is not None else eta)
        defaults = dict(num_agents=num_agents, lr=lr, gamma=gamma, k=k, alpha_lr=alpha_lr,
                        beta_lr=beta_lr, topology=topology, k_eval=k_eval, cooling=cooling,
                        total_steps=total_steps, min_temp=min_temp, bounds=bounds,
                        attraction=attraction, init=init, stagnation=stagnation,
                        loss_ema=loss_ema)
        check_options(defaults, backend=backend, update_order=update_order)
        _checks.check_seed(seed)
        defaults.update(k_eval=num_agents if k_eval is None else min(k_eval, num_agents),
                        attraction=float(attraction))
        _checks.check_process_group(process_group)
        self._group = _distributed.resolve_group(process_group)
        self._backend = backend
        self._sequential = update_order == "sequential"
        self._seed = seed
        self._gather_pending = False  # see _ranks.py
        self._swarm: Optional[SwarmState] = None  # saved by state_dict()
        self._runtime: Optional[SwarmRuntime] = None  # derived from it and the buckets
        self._buckets: List[_Bucket] = []
        self._slots: list = []  # per agent: (parameter, position view, gradient view)
        self._current: Optional[int] = None  # the agent whose closure runs inside step()
        super().__init__(params, defaults)
        for p in self._trainable():  # fail now, not at the first step
            _resolve_backend(backend, p.device)
        self._check_init()
        self._track = False
        self._last_agent_losses: list = []
        self.reset_log()

    # ── Parameter groups ─────────────────────────────────────────────────────

    def add_param_group(self, param_group: dict) -> None:
        """torch.optim's add_param_group, before the first step only (RuntimeError after);
        param_group may set its own lr (or eta), gamma, k and bounds, not the swarm's settings
        (ValueError).

        >>> import torch, sb_native as sb
        >>> first, second = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
        >>> optimizer = sb.QIMADTorch([first], num_agents=4, seed=0)
        >>> optimizer.add_param_group({"params": [second], "eta": 0.1})
        >>> [group["lr"] for group in optimizer.param_groups]
        [0.05, 0.1]
        """
        if getattr(self, "_swarm", None) is not None:
            raise RuntimeError("QIMADTorch cannot take new parameter groups after its first step")
        param_group = dict(param_group)
        take_eta(param_group, "add_param_group")
        super().add_param_group(param_group)
        new, first = self.param_groups[-1], self.param_groups[0]
        bad = [key for key in _SWARM_KEYS if new[key] != first[key]]
        try:
            check_numbers(new, GROUP_NUMBERS + SWARM_NUMBERS)
            check_bounds(new["bounds"])
            if bad:
                raise ValueError(f"parameter groups must share the swarm settings {bad}; only "
                                 "lr, gamma, k and bounds may differ per group")
        except ValueError:
            self.param_groups.pop()
            raise

    def _trainable(self) -> List[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"] if p.requires_grad]

    def _check_init(self) -> None:
        if self.param_groups[0]["init"] == "uniform":
            check_uniform_init(self.param_groups)

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
        owned = self._shard_of()
        self._buckets = [_Bucket(ps, gs, n, _resolve_backend(self._backend, ps[0].device), owned)
                         for ps, gs in keyed.values()]
        # Per agent of [first, end) (all but on a rank of a sharded swarm), every parameter with
        # its views of the agent's position and gradient rows.
        first, end = owned or (0, n)
        self._slots = [[slot for b in self._buckets
                        for slot in zip(b.params, b.agent_views[i], b.grad_views[i - first])]
                       for i in range(first, end)]
        # Per-parameter state is views of the flat buffers, so state_dict() carries the swarm
        # (a rank of a sharded swarm: its agents').
        self.state.clear()
        for b in self._buckets:
            for p, sw, sq, bs in zip(b.params, b.views(b.own_theta), b.views(b.square_avg),
                                     b.best_views):
                self.state[p] = {"swarm": sw, "square_avg": sq, "best": bs}

    def _init_swarm(self) -> None:
        params = self._trainable()
        if not params:
            raise ValueError("QIMADTorch got no parameters that require grad")
        group = self.param_groups[0]
        self._check_init()
        self._build_buckets()
        for b in self._buckets:
            b.best.copy_(torch.cat([p.detach().reshape(-1) for p in b.params]))
            b.theta.copy_(b.best.expand_as(b.theta))
        seed = self._seed
        if self._group is not None:  # the same weights, settings and seed on every rank
            settings = (sorted((k, str(v)) for k, v in group.items() if k != "params"),
                        self._backend, self._sequential, seed)
            seed = _distributed.handshake(
                self._group, _distributed.checksum([b.best for b in self._buckets], settings),
                seed, "build the same model and optimizer")
        self._swarm = SwarmState.fresh(group["num_agents"], group["topology"], seed,
                                       params[0].device)
        if group["init"] == "uniform":  # after the swarm's own draws: other runs keep their streams
            spread(self._buckets, self.param_groups, self._swarm.generator)
        self._runtime = self._build_runtime()

    def _build_runtime(self) -> SwarmRuntime:
        assert self._swarm is not None
        group = self.param_groups[0]
        # loss_ema smooths the losses between the closures and qimad_step, which the native
        # session's single call leaves no room for: step(closure) then loops in Python.
        runtime = SwarmRuntime.build(self._swarm, self._buckets, self._slots, self._backend,
                                     self._sequential, group["stagnation"] == "global",
                                     use_session=group["loss_ema"] is None
                                     and self._shard_of() is None)
        runtime.structure = structure_key(group)
        return runtime

    # ── Evaluation order ─────────────────────────────────────────────────────

    def _begin_step(self) -> List[int]:
        """Counts the step and returns the agents to evaluate (round robin over k_eval)."""
        if self._swarm is None:
            self._init_swarm()
        assert self._swarm is not None and self._runtime is not None  # built above, or loaded
        group = self.param_groups[0]
        if self._runtime.structure != structure_key(group):  # stagnation or loss_ema written
            check_swarm_options(group)
            self._runtime = self._build_runtime()
        self._swarm.step += 1
        n, k_eval = self.param_groups[0]["num_agents"], self.param_groups[0]["k_eval"]
        if k_eval == n:
            return self._runtime.all_rows
        base = (self._swarm.step - 1) * k_eval % n
        return sorted({(base + j) % n for j in range(k_eval)})

    def _rows(self, rows: List[int], device) -> torch.Tensor:
        assert self._runtime is not None  # built by _begin_step
        cache = self._runtime.rows_cache
        key = (tuple(rows), device)
        if key not in cache:
            if len(cache) > 64:  # tunnel-row sets vary; keep only a few index tensors alive
                cache.clear()
            cache[key] = torch.tensor(rows, dtype=torch.int64, device=device)
        return cache[key]

    # ── Steps ────────────────────────────────────────────────────────────────

    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch.optim's zero_grad; inside step() (from the closure) it points the gradients at
        the evaluated agent's zeroed row of the swarm's gradient buffer instead. set_to_none:
        as torch.optim's, outside step()."""
        if self._current is None:
            return super().zero_grad(set_to_none)
        # Inside step(): the gradients accumulate straight into the swarm's gradient rows.
        slot = self._current - self._buckets[0].first  # the buckets share their first agent
        for b in self._buckets:
            b.grad_rows[slot].zero_()
        for p, _, grad in self._slots[slot]:
            p.grad = grad

    # The ignore: unlike Optimizer.step, the closure is required and the best loss returned.
    @step_hooks
    def step(self, closure: Callable[[], torch.Tensor]) -> float:  # type: ignore[override]
        """One step: closure() once per evaluated agent (it must zero grads, compute the loss
        and call backward), then the swarm update. Returns the best loss seen so far.

        See the class docstring for an example."""
        if closure is None:
            raise RuntimeError("QIMADTorch.step needs a closure that returns the loss")
        rows = self._begin_step()
        assert self._swarm is not None and self._runtime is not None  # built by _begin_step
        step, group, session = self._swarm.step, self.param_groups[0], self._runtime.session
        if self._group is not None:
            return self._step_shared(
                lambda mine, losses: self._evaluate(closure, mine, losses), rows)
        if session is not None:  # the loop below and _update, in one native call
            temp = temperature(step, group)
            self._hyper()
            losses, fates, best = session_step(session, closure, self, rows, step, temp,
                                               group["alpha_lr"] * temp, group["beta_lr"] * temp)
            self._finish_step(losses, fates, temp)
            return best
        losses = self._swarm.agent_loss.tolist()
        self._evaluate(closure, rows, losses)
        with torch.no_grad():
            return self._update(rows, losses)

    def _evaluate(self, closure: Callable[[], torch.Tensor], rows: List[int],
                  losses: List[float]) -> None:
        """closure() for each agent of rows, its loss into losses and its gradient into the
        swarm's gradient rows (rows: agents of this process's slots, from the buckets' first)."""
        if not rows:  # none here (a rank of more ranks than agents may own none)
            return
        first = self._buckets[0].first
        slots = [self._slots[i - first] for i in rows]
        own = [p.data for p, _, _ in slots[0]]
        try:
            # Grad mode is switched once around all closures rather than once per closure.
            with torch.enable_grad():
                for i, slot in zip(rows, slots):
                    # The parameters are pointed at agent i's row of the swarm (no copy). Their
                    # gradients accumulate straight into its row of the gradient buffer once the
                    # closure calls zero_grad(); a closure that does not gets fresh gradients,
                    # copied into the row below, so a row never keeps an older step's values.
                    for p, data, _ in slot:
                        p.data = data
                        p.grad = None
                    self._current = i  # for zero_grad; reset once, in the finally below
                    losses[i] = loss_value(closure())
                    for p, _, grad in slot:
                        if p.grad is not grad:
                            collect_grad(p.grad, grad)
        finally:
            self._current = None
            for (p, _, _), data in zip(slots[0], own):
                p.data = data

    def _hyper(self) -> None:
        """The buckets' per-segment lr, gamma and fidelity-matrix index and boxes, the distinct
        fidelity exponents k (one matrix each) and the attraction, into the runtime; rebuilt
        when a group's value changed since the last step (an "eta" written is taken as lr)."""
        runtime = self._runtime
        assert runtime is not None  # built by _begin_step
        key = hyper_key(self.param_groups)
        if key != runtime.hyper_key:
            for g in self.param_groups:
                check_bounds(g["bounds"])
            runtime.hyper_key = key
            ks = sorted({float(g["k"]) for g in self.param_groups})
            k_index = {k: i for i, k in enumerate(ks)}
            for b in self._buckets:
                b.set_hyper(self.param_groups, k_index)
            bs = self._buckets
            runtime.set_hyper([b.seg_eta for b in bs], [b.seg_gamma for b in bs],
                              [b.seg_w for b in bs], ks, [b.box for b in bs],
                              self.param_groups[0]["attraction"])

    def _update(self, rows: List[int], losses: List[float],
                unfit: Optional[Set[int]] = None) -> float:
        """Records, random draws and the swarm update after evaluation: one qimad_step call.
        A sharded swarm's step (_ranks.py) passes the agents whose gradients their owners found
        not finite (unfit): they go to qimad_step with a NaN loss, and are reset alike on
        every rank; then the ranks gather the moved positions."""
        state, group = self._swarm, self.param_groups[0]
        assert state is not None and self._runtime is not None  # built by _begin_step
        temp = temperature(state.step, group)
        self._hyper()
        raw = losses
        if group["loss_ema"] is not None:
            losses = state.smooth(rows, losses, group["loss_ema"])
        if unfit:
            losses = [math.nan if i in unfit else value for i, value in enumerate(losses)]
        args = self._runtime.args._replace(
            step=state.step, rows=rows, losses=losses, temperature=temp,
            alpha_step=group["alpha_lr"] * temp, beta_step=group["beta_lr"] * temp)
        # An agent whose loss or gradient is not finite is sent back to the best weights and
        # sits this update out, so its values never reach the others through communication.
        fates = ops.qimad_step(*args, backend=self._runtime.backend)
        if self._shard_of() is not None:
            self._gather_positions()
        self._finish_step(raw, fates, temp)
        return state.best_loss.item()
