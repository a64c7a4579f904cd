"""QIMADTorch's swarm state: the method's constants, qimad_step's arguments as one named tuple,
what a checkpoint saves of the swarm (SwarmState) and what is rebuilt from it and the buckets at
the first step and at every load (SwarmRuntime)."""

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import torch

from .. import _memory, _ops
from ._swarm import _Bucket, _neighbours

# The reference's constants (tests/oracles/qimad_seed_reference.py, the seed's), kept so that
# update_order='sequential' follows its trajectory exactly.
# RMSProp's running-average decay: the reference's, and torch.optim.RMSprop's default alpha, so
# that a lone agent is RMSprop (test_single_agent_is_rmsprop).
RMS_DECAY = 0.99
# The reference's epsilon, in its three roles: RMSProp's denominator, the fidelity rows'
# normalisation, and the least improvement of an agent's own best that resets its stagnation.
EPS = 1e-8
# An agent may tunnel once more than this many consecutive evaluations left its own best as it was.
STAGNATION_LIMIT = 3
# The random walk's normals and the coins are drawn for this many steps at a time: two generator
# calls per block instead of two per step, each a cold kernel call after the closures. 64 steps
# leave those calls next to nothing per step while the blocks, which the checkpoint carries,
# stay small (2 x 64 x 2 x agents float64: 16 KiB at 8 agents).
DRAW_BLOCK = 64


class QimadStepArgs(NamedTuple):
    """qimad_step's arguments by the schema's names, in its order (csrc/qimad/ops.cpp; a test ties
    them). The tensor lists hold one entry per bucket (params: one per parameter tensor); the
    records (agent_loss to best_loss) are host tensors, updated in place."""

    theta: List[torch.Tensor]  # (agents, P) positions
    square_avg: List[torch.Tensor]  # (agents, P) RMSProp state
    grad: List[torch.Tensor]  # (agents, P) gradients of the evaluated agents
    best: List[torch.Tensor]  # (P,) best-known weights
    params: List[torch.Tensor]  # the model's parameters, bucket after bucket
    bucket_params: List[int]  # how many of params each bucket holds
    segments: List[torch.Tensor]  # column bounds of each parameter tensor
    # None until set: the hyperparameters (seg_eta to k) by SwarmRuntime.set_hyper, the
    # per-step fields (step to beta_step) by each step (SwarmRuntime.args).
    seg_eta: Optional[List[torch.Tensor]]  # per segment: its group's eta
    seg_gamma: Optional[List[torch.Tensor]]  # per segment: its group's gamma
    seg_w: Optional[List[torch.Tensor]]  # per segment: the index in k of its fidelity exponent
    alpha: torch.Tensor  # (agents,) float64 Bloch angles, walked in place
    beta: torch.Tensor
    mask: torch.Tensor  # (agents, agents) bool topology
    attract_on: torch.Tensor  # (agents,) float64: the attraction with neighbours, else 0
    can_tunnel: List[int]  # per agent: 1 with neighbours, else 0
    k: Optional[List[float]]  # the distinct fidelity exponents, one matrix each
    dtype: torch.dtype  # of the fidelity matrices and attraction coefficients
    agent_loss: torch.Tensor  # (agents,) float64: last loss of each agent
    agent_best: torch.Tensor  # (agents,) float64: each agent's own best loss
    stagnation: torch.Tensor  # (agents,) int64: evaluations since it improved
    best_loss: torch.Tensor  # () float64: the swarm's best loss
    normal: torch.Tensor  # (DRAW_BLOCK, 2, agents) float64: the walk's draws
    uniform: torch.Tensor  # (DRAW_BLOCK, 2, agents) float64: the coins
    step: Optional[int]  # from 1
    rows: Optional[List[int]]  # the agents evaluated this step, increasing
    losses: Optional[List[float]]  # every agent's loss (the cached one for those not evaluated)
    generator: Optional[torch.Generator]
    temperature: Optional[float]
    alpha_step: Optional[float]
    beta_step: Optional[float]
    rms_decay: float
    eps: float
    stagnation_limit: int
    bounds: Optional[List[Optional[torch.Tensor]]]  # per bucket: its (2, P) box, or None
    global_stagnation: bool
    sequential: bool = False
    first: int = 0  # square_avg and grad hold the agents [first, first + their rows)


# QimadSession's constructor arguments after the slots (csrc/qimad/python/qimad_session.cpp), in its
# positional order: what qimad_step takes that holds from step to step, hyperparameters aside.
SESSION_FIELDS = ("theta", "square_avg", "grad", "best", "params", "bucket_params", "segments",
                  "alpha", "beta", "mask", "attract_on", "can_tunnel", "dtype", "agent_loss",
                  "agent_best", "stagnation", "best_loss", "normal", "uniform", "generator",
                  "rms_decay", "eps", "stagnation_limit", "global_stagnation", "sequential")
# QimadSession.set_hyper's arguments: rebuilt when a group's lr, gamma, k or bounds changes.
HYPER_FIELDS = ("seg_eta", "seg_gamma", "seg_w", "k", "bounds")


def _records(agent_loss, agent_best, stagnation, best_loss) -> dict:
    """The swarm's records as qimad_step keeps them: host tensors, updated in place."""
    f64: Dict[str, Any] = dict(dtype=torch.float64)
    return dict(agent_loss=torch.tensor(agent_loss, **f64),
                agent_best=torch.tensor(agent_best, **f64),
                stagnation=torch.tensor(stagnation, dtype=torch.int64),
                best_loss=torch.tensor(best_loss, **f64))


@dataclass
class SwarmState:
    """What a checkpoint saves of the swarm (state_dict()["qimad"]), besides the buckets, which
    the per-parameter state views. Its tensors are updated in place by every step."""

    step: int  # steps taken
    alpha: torch.Tensor  # (agents,) float64 on the angles' device (the first parameter's)
    beta: torch.Tensor
    neighbours: List[List[int]]  # the topology, as the reference lists it
    generator: torch.Generator  # the optimizer's own; never the global RNG
    normal: torch.Tensor  # this block's draws (QimadStepArgs)
    uniform: torch.Tensor
    agent_loss: torch.Tensor  # the records (QimadStepArgs)
    agent_best: torch.Tensor
    stagnation: torch.Tensor
    best_loss: torch.Tensor
    # (agents,) float64 CPU: each agent's moving average of its losses (loss_ema; NaN until its
    # first finite loss and after a non-finite one).
    loss_ema: torch.Tensor

    @classmethod
    def fresh(cls, n: int, topology: str, seed: Optional[int], device) -> "SwarmState":
        """A new swarm's angles, topology and first draws, from a generator seeded with seed."""
        gen = torch.Generator(device=device)
        if seed is None:
            gen.seed()  # a fresh nondeterministic seed; never the global RNG
        else:
            gen.manual_seed(seed)
        f64 = dict(device=device, dtype=torch.float64)
        alpha = torch.rand(n, generator=gen, **f64) * math.pi
        beta = torch.rand(n, generator=gen, **f64) * (2 * math.pi)
        neighbours = _neighbours(n, topology, gen)
        # Drawn now too, not only at each block's first step, so that a step whose closure
        # raised before its block was drawn leaves the next steps the last block's draws.
        normal = torch.randn(DRAW_BLOCK, 2, n, generator=gen, **f64)
        uniform = torch.rand(DRAW_BLOCK, 2, n, generator=gen, **f64)
        return cls(step=0, alpha=alpha, beta=beta, neighbours=neighbours, generator=gen,
                   normal=normal, uniform=uniform,
                   loss_ema=torch.full((n,), math.nan, dtype=torch.float64),
                   **_records([math.inf] * n, [math.inf] * n, [0] * n, math.inf))

    def smooth(self, rows: Sequence[int], losses: Sequence[float], decay: float) -> List[float]:
        """losses with each evaluated agent's replaced by its moving average (loss_ema), which
        it updates: a non-finite loss passes as it is (qimad_step resets the agent) and
        restarts the average."""
        out = list(losses)
        for i in rows:
            value, last = losses[i], self.loss_ema[i].item()
            if not math.isfinite(value):
                self.loss_ema[i] = math.nan
                continue
            self.loss_ema[i] = value if math.isnan(last) else decay * last + (1 - decay) * value
            out[i] = self.loss_ema[i].item()
        return out

    def to_dict(self, last_agent_losses: Sequence[float]) -> dict:
        """state_dict()["qimad"]. last_agent_losses (get_agent_losses()) is the optimizer's, as
        it outlives a reset, but is saved here."""
        return dict(
            step=self.step, best_loss=self.best_loss.item(),
            agent_best=self.agent_best.tolist(), stagnation=self.stagnation.tolist(),
            cached_losses=self.agent_loss.tolist(),
            last_agent_losses=list(last_agent_losses), alpha=self.alpha.clone(),
            beta=self.beta.clone(), normal=self.normal.clone(),
            uniform=self.uniform.clone(), neighbours=[list(r) for r in self.neighbours],
            generator=self.generator.get_state(), loss_ema=self.loss_ema.tolist())

    @classmethod
    def from_dict(cls, saved: dict, device) -> "SwarmState":
        """The state to_dict() saved (its last_agent_losses aside), on device."""
        gen = torch.Generator(device=device)
        gen.set_state(saved["generator"])
        # Copies: the state is updated in place.
        f64 = lambda key: saved[key].to(device, torch.float64, copy=True)  # noqa: E731
        return cls(step=saved["step"], alpha=f64("alpha"), beta=f64("beta"),
                   neighbours=[list(r) for r in saved["neighbours"]], generator=gen,
                   normal=f64("normal"), uniform=f64("uniform"),
                   # Checkpoints from before loss_ema have none: every average starts afresh.
                   loss_ema=torch.tensor(saved.get("loss_ema", [math.nan] * len(saved["alpha"])),
                                         dtype=torch.float64),
                   **_records(saved["cached_losses"], saved["agent_best"], saved["stagnation"],
                              saved["best_loss"]))


def session_class():
    """The extension's QimadSession (csrc/qimad/python/qimad_session.cpp), or None without it: it
    exists only in the Python build of the extension."""
    if not _ops.NATIVE:
        return None
    from .. import _C
    return getattr(_C, "QimadSession", None)


@dataclass
class SwarmRuntime:
    """Derived from a SwarmState and the buckets, never saved: rebuilt at the first step and at
    every load."""

    backend: str  # "native" or "torch", for the swarm as a whole
    # qimad_step's arguments that hold from step to step (the state's tensors themselves, so
    # they follow its in-place updates); the hyperparameters are set by the optimizer once
    # known (set_hyper), and the per-step fields (step, rows, losses, temperature, alpha_step,
    # beta_step) are None here: each step passes them with _replace.
    args: QimadStepArgs
    session: Any  # the native QimadSession, or None
    all_rows: List[int]  # every agent: the rows of a step that evaluates them all
    rows_cache: Dict[tuple, torch.Tensor] = field(default_factory=dict)  # (rows, device) -> index
    hyper_key: Optional[tuple] = None  # the groups' values the hyperparameters are built from
    structure: tuple = ()  # the swarm settings it was built for (_groups.structure_key)

    @classmethod
    def build(cls, state: SwarmState, buckets: List[_Bucket], slots: list, backend: str,
              sequential: bool, global_stagnation: bool, use_session: bool) -> "SwarmRuntime":
        """The adjacency mask, the tunnelling switches per agent, the buckets' buffers as
        qimad_step takes them and, on the native backend with use_session, the session.
        backend is the one requested ("auto", "native" or "torch")."""
        n = len(state.neighbours)
        home = state.alpha.device
        mask = torch.zeros(n, n, dtype=torch.bool)
        for i, row in enumerate(state.neighbours):
            mask[i, row] = True
        # The attraction to best and tunnelling only act in a swarm: a lone agent is RMSProp.
        can_tunnel = [int(bool(row)) for row in state.neighbours]
        # Filled in place by set_hyper from the groups' attraction, so the session sees it.
        attract_on = torch.zeros(n, dtype=torch.float64, device=home)
        # One call runs every bucket, so it is native only when every bucket's device is.
        backends = ({_ops.resolve_backend(backend, home, algorithm="qimad")}
                    | {b.backend for b in buckets})
        chosen = "native" if backends == {"native"} else "torch"
        if chosen == "torch":  # before the first step: the reference's temporaries
            for b in buckets:
                _memory.check_swarm_step(n, b.P, b.dtype, b.device, sequential)
        # W and the attraction come in the buckets' dtype when they share one (float64, the
        # angles' dtype, otherwise).
        dtypes = {b.dtype for b in buckets}
        args = QimadStepArgs(
            theta=[b.theta for b in buckets], square_avg=[b.square_avg for b in buckets],
            grad=[b.grad for b in buckets], best=[b.best for b in buckets],
            params=[p for b in buckets for p in b.params],
            bucket_params=[len(b.params) for b in buckets],
            segments=[b.segments for b in buckets], seg_eta=None, seg_gamma=None, seg_w=None,
            alpha=state.alpha, beta=state.beta, mask=mask.to(home), attract_on=attract_on,
            can_tunnel=can_tunnel, k=None,
            dtype=dtypes.pop() if len(dtypes) == 1 else torch.float64,
            agent_loss=state.agent_loss, agent_best=state.agent_best,
            stagnation=state.stagnation, best_loss=state.best_loss, normal=state.normal,
            uniform=state.uniform, step=None, rows=None, losses=None, generator=state.generator,
            temperature=None, alpha_step=None, beta_step=None, rms_decay=RMS_DECAY, eps=EPS,
            stagnation_limit=STAGNATION_LIMIT, bounds=None, global_stagnation=global_stagnation,
            sequential=sequential, first=buckets[0].first)
        # Native: step(closure) is one call into the extension (closure loop and qimad_step).
        session_cls = session_class() if chosen == "native" and use_session else None
        session = session_cls and session_cls(slots, *(getattr(args, f) for f in SESSION_FIELDS))
        return cls(backend=chosen, args=args, session=session, all_rows=list(range(n)))

    def set_hyper(self, seg_eta, seg_gamma, seg_w, k, bounds, attraction: float) -> None:
        """The buckets' per-segment hyperparameters, the distinct exponents k and the buckets'
        boxes into the arguments and the session; the attraction into attract_on, in place."""
        self.args = self.args._replace(seg_eta=seg_eta, seg_gamma=seg_gamma, seg_w=seg_w, k=k,
                                       bounds=bounds)
        on = torch.tensor(self.args.can_tunnel, dtype=torch.float64)
        self.args.attract_on.copy_(on * attraction)
        if self.session is not None:
            self.session.set_hyper(*(getattr(self.args, f) for f in HYPER_FIELDS))
