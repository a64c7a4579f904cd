"""The SB run: initial draws, the step loop in chunks, stopping criteria, progress bars.

The loop itself runs in chunks of steps: each chunk is one call of an op wrapper
(engine/ops.py: sb_run, sb_run_csr or sb_run_int8, by the coupling's storage), which runs
the whole chunk in one C++ call on the native backend and the same steps with torch
operations (engine/reference.py) on the torch backend. Between chunks the Python layer
only updates the progress bars, checks the timeout and, at each sampling point, updates
the early-stopping window (sb_sample).
"""

import time
import warnings
from typing import Dict, Optional, Protocol, Type, TypeVar

import torch
from tqdm.auto import tqdm

from .._env import current_env
from . import distributed, ops, reference
from .coupling import Coupling
from .history import ISING, Callback, HistoryPoint, Objective
from .polish import Polisher

INFINITY = float("inf")
# Wall time one chunk aims at, so progress bars, timeouts and Ctrl-C stay responsive
# without paying per-step Python overhead on the native path.
CHUNK_SECONDS = 0.1
MAX_CHUNK_STEPS = 1000


class ConvergenceWarning(Warning):
    """Early stopping was on but no agent froze before the run ended (max_steps, timeout):
    the run returns the signs of the final positions. More steps, or a smaller
    convergence_threshold or sampling_period, let agents freeze; early_stopping=False runs a
    fixed number of steps without the warning.

    >>> import warnings, torch, sb_native as sb
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = sb.minimize(torch.eye(2), domain="spin", agents=2, max_steps=10, seed=0,
    ...                     verbose=False)
    >>> [type(w.message).__name__ for w in caught]
    ['ConvergenceWarning']
    """

    def __str__(self) -> str:
        return "No agent has converged. Returned signs of final positions instead."


class StopWindow:
    """Early-stopping state: last energies, stability streaks, frozen (bifurcated) agents."""

    def __init__(self, n: int, agents: int, convergence_threshold: int, dtype, device,
                 verbose: bool):
        self.convergence_threshold = convergence_threshold
        self.energies = torch.full((agents,), INFINITY, dtype=dtype, device=device)
        self.stability = torch.zeros(agents, dtype=torch.int16, device=device)
        self.bifurcated = torch.zeros(agents, dtype=torch.bool, device=device)
        self.final_spins = torch.zeros((n, agents), dtype=dtype, device=device)
        self.progress = tqdm(total=agents, desc="🏁 Bifurcated agents", disable=not verbose,
                             smoothing=0, unit=" agents")

    def sample(self, position: torch.Tensor, field: torch.Tensor, backend: str) -> None:
        """One sampling point: the spins of position, with field = J @ spins."""
        before = int(torch.count_nonzero(self.bifurcated))
        ops.sb_sample(position, field, self.energies, self.stability, self.bifurcated,
                      self.final_spins, self.convergence_threshold, backend=backend)
        self.progress.update(int(torch.count_nonzero(self.bifurcated)) - before)

    def must_continue(self) -> bool:
        return bool(torch.any(self.stability < self.convergence_threshold - 1))

    def has_bifurcated_spins(self) -> bool:
        return bool(torch.any(self.bifurcated))

    def get_bifurcated_spins(self, spins: torch.Tensor) -> torch.Tensor:
        return torch.where(self.bifurcated, self.final_spins, spins)


def call_schedule(env: Dict[str, float], heated: bool) -> Dict[str, float]:
    """The run ops' schedule arguments from the environment (set_env), but the coupling's
    coefficient."""
    time_step = env["time_step"]
    return dict(time_step=time_step, pressure_slope=env["pressure_slope"],
                heat_coef=time_step * env["heat_coefficient"] if heated else 0.0)


class Stepper(Protocol):
    """What SBRunner._loop steps: _Stepper here, batched._BatchStepper for a batch."""

    # The grid op calls start on (Coupling.field_period), or None: calls sized by the clock.
    field_period: Optional[int]

    def advance(self, position: torch.Tensor, momentum: torch.Tensor, start: int,
                steps: int) -> None: ...

    def field(self, position: torch.Tensor) -> torch.Tensor: ...


class _Stepper:
    """Advances the state by k steps and computes J @ spins, on the coupling's storage."""

    def __init__(self, coupling: Coupling, backend: str, env: Dict[str, float], heated: bool,
                 discrete: bool, agents: int) -> None:
        self.coupling = coupling.for_run(backend, discrete)
        self.backend = backend
        self.discrete = discrete
        # agents: the run's, on every rank, so every world size splits its calls alike.
        self.field_period = self.coupling.field_period(agents, backend, discrete)
        self.schedule = dict(call_schedule(env, heated), quadratic_coef=float(
            env["time_step"] * self.coupling.quadratic_scale()))

    def advance(self, position, momentum, start: int, steps: int) -> None:
        coupling = self.coupling
        if coupling.integer is not None:
            ops.sb_run_int8(*coupling.integer, position, momentum, start, steps,
                            **self.schedule, backend=self.backend)
        elif coupling.csr is not None:
            ops.sb_run_csr(*coupling.csr, position, momentum, start, steps, **self.schedule,
                           discrete=self.discrete, backend=self.backend)
        else:
            ops.sb_run(coupling.matrix, position, momentum, start, steps, **self.schedule,
                       discrete=self.discrete, backend=self.backend)

    def field(self, position: torch.Tensor) -> torch.Tensor:
        spins = reference.sample_spins(position)
        # The int8 product is exact and cheap on the CPU; CUDA's _int_mm has size limits.
        if self.coupling.integer is not None and position.device.type == "cpu":
            K, scale = self.coupling.integer
            return torch._int_mm(K, spins.to(torch.int8)).to(position.dtype) * scale
        return self.coupling.matmul(spins)


def draw_oscillators(n: int, agents: int, dtype, device, generator) -> tuple:
    """Initial positions, then momenta, uniform in [-1, 1), shape (variables, agents): the
    2.0.0 draw order, so a seeded torch run reproduces the peer's."""
    def draw():
        return 2 * torch.rand(size=(n, agents), device=device, dtype=dtype,
                              generator=generator) - 1
    position = draw()
    return position, draw()


_Runner = TypeVar("_Runner", bound="SBRunner")  # SBRunner or a subclass (BatchRunner)


class SBRunner:
    """Runs SB on a coupling; same stopping rules and progress bars as the 2.0.0 package."""

    chunk_seconds = CHUNK_SECONDS  # the wall time one op call aims at

    def __init__(self, *, agents: int, max_steps: Optional[int], timeout: Optional[float],
                 mode: str, heated: bool, verbose: bool, early_stopping: bool,
                 sampling_period: int, convergence_threshold: int, backend: str,
                 generator: Optional[torch.Generator], group=None,
                 seed: Optional[int] = None, callback: Optional[Callback] = None,
                 objective: Objective = ISING, polish: bool = False) -> None:
        self.agents = agents
        self.max_steps = INFINITY if max_steps is None else max_steps
        self.timeout = INFINITY if timeout is None else timeout
        self.discrete = mode == "discrete"
        self.heated = heated
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.sampling_period = sampling_period
        self.convergence_threshold = convergence_threshold
        self.backend = backend
        self.generator = generator
        self.group = group  # a torch.distributed process group to share the agents with
        self.seed = seed
        self.callback = callback
        self.objective = objective  # the callback's values of the runner's energies
        self.polish = polish  # each agent's final spins polished by local search
        # Sampling points: early stopping's, or a callback's when early stopping is off.
        self.sampling = early_stopping or callback is not None
        self.shard: Optional[distributed.AgentShard] = None
        self.window: Optional[StopWindow] = None
        self.field_period: Optional[int] = None  # the stepper's, set by _loop

    @classmethod
    def from_options(cls: Type["_Runner"], options, backend: str, device: torch.device,
                     objective: Objective = ISING) -> "_Runner":
        """A runner for SolverOptions on a resolved backend ("native" or "torch"); objective
        gives the callback's values."""
        return cls(agents=options.agents, max_steps=options.max_steps, timeout=options.timeout,
                   mode=options.mode, heated=bool(options.heated),
                   verbose=bool(options.verbose), early_stopping=bool(options.early_stopping),
                   sampling_period=options.sampling_period,
                   convergence_threshold=options.convergence_threshold, backend=backend,
                   generator=options.generator(device),
                   group=distributed.resolve_group(options.process_group), seed=options.seed,
                   callback=options.callback, objective=objective, polish=bool(options.polish))

    def _chunk(self, step: int, last: Optional[tuple], first: Optional[tuple] = None) -> int:
        """Steps of the next call. last = (steps, seconds) of the longest call so far, or None;
        first = the same of the run's first call.

        A call costs a fixed set-up (the exact local field, buffers) plus a time per step, so
        the rate of a short call overstates the time per step: while the last call took under
        half of the budget (chunk_seconds) the chunk at least doubles, which keeps every call
        within the budget (t(2c) < 2 t(c)) and reaches the long chunks in a few calls. Once two
        calls of different lengths are known, the set-up and the time per step are told
        apart: a set-up of half the budget or more (an int8 GEMM on a large dense problem)
        gets calls of about twice the set-up, so it costs at most half of each call, instead
        of single steps that each pay it (bench/RESULTS.md, the K2000 dSB run).

        A run whose result depends on where calls start (a field_period) ignores the clock:
        its calls end at the next multiple of the period (or sampling point, or max_steps)."""
        limit = MAX_CHUNK_STEPS
        if self.sampling:
            limit = min(limit, self.sampling_period - step % self.sampling_period)
        if self.max_steps != INFINITY:
            limit = min(limit, int(self.max_steps) - step)  # an int here, not INFINITY
        if self.field_period is not None:
            return max(1, min(limit, self.field_period - step % self.field_period))
        if last is None:
            return 1  # a first single step measures the speed that sizes the next chunks
        steps, seconds = last
        budget = self.chunk_seconds
        chunk = int(budget * steps / max(seconds, 1e-9))
        if seconds < budget / 2:
            chunk = max(chunk, 2 * steps)
        if first is not None and steps > first[0]:
            per_step = (seconds - first[1]) / (steps - first[0])
            if per_step <= 0:
                # The longer call was no slower: the first one's set-up (or its costlier
                # early steps: dSB flips most signs at first) hid the per-step time.
                chunk = max(chunk, 2 * steps)
            else:
                setup = max(first[1] - first[0] * per_step, 0.0)
                if setup >= budget / 2:
                    chunk = max(chunk, int(setup / per_step))
        elif first is not None and steps == first[0] and seconds >= budget / 2:
            # Calls of this length take half the budget or more and no other length has
            # run: try twice as many steps, to tell the set-up apart (a batch of problems'
            # single dSB step can take that long, and repeating it repeats the set-up).
            chunk = max(chunk, 2 * steps)
        return max(1, min(limit, chunk))

    def run(self, coupling: Coupling) -> torch.Tensor:
        """SB spins, shape (variables, agents), values in {-1, 1}; with a process group, this
        rank runs its block of the agents and every rank returns all of them."""
        self._check_stopping_rule()
        # The environment (set_env, a preset's block) is read once, here: the run steps with
        # this copy, whatever another thread sets meanwhile (sb_native/_env.py).
        env = current_env()
        coupling.check_run(self.agents, self.max_steps, self.polish)  # before the state
        position, momentum = self._draw(coupling)
        self.window = StopWindow(coupling.n, position.shape[1], self.convergence_threshold,
                                 coupling.dtype, coupling.device,
                                 self.verbose and self.early_stopping)
        try:
            stepper = _Stepper(coupling, self.backend, env, self.heated, self.discrete,
                               self.agents)
            self._loop(stepper, position, momentum)
        except KeyboardInterrupt:
            if self.shard is not None:
                raise
            warnings.warn(RuntimeWarning(
                "Simulation interrupted by user. Current spins will be returned."), stacklevel=2)
        except distributed.RankFailed:
            raise
        except Exception:
            if self.shard is not None:
                self.shard.fail()
            raise
        finally:
            self.window.progress.close()
        spins = self.get_final_spins(reference.sample_spins(position), self.early_stopping)
        if self.polish:  # this rank's agents, before they are gathered
            spins, _ = Polisher(coupling, self.backend)(spins)
        return spins if self.shard is None else self.shard.gather_spins(spins)

    def _check_stopping_rule(self) -> None:
        if self.max_steps == INFINITY and self.timeout == INFINITY and not self.early_stopping:
            raise ValueError("No stopping criterion provided.")

    def _draw(self, coupling: Coupling) -> tuple:
        """This run's initial state: all agents', or this rank's block of the whole draw."""
        if self.group is None:
            return draw_oscillators(coupling.n, self.agents, coupling.dtype, coupling.device,
                                    self.generator)
        self.shard = shard = distributed.AgentShard.of(self.group, self.agents)
        self.verbose = self.verbose and shard.rank == 0  # one set of progress bars
        seed = shard.start(distributed.digest(coupling, self._settings()), self.seed)
        generator = torch.Generator(device=coupling.device).manual_seed(seed)
        position, momentum = draw_oscillators(coupling.n, self.agents, coupling.dtype,
                                              coupling.device, generator)
        return (position[:, shard.lo:shard.hi].contiguous(),
                momentum[:, shard.lo:shard.hi].contiguous())

    def _settings(self) -> tuple:
        return (self.agents, self.max_steps, self.timeout, self.discrete, self.heated,
                self.early_stopping, self.sampling_period, self.convergence_threshold,
                self.backend, self.seed)

    def _loop(self, stepper: Stepper, position: torch.Tensor, momentum: torch.Tensor) -> None:
        """Chunks of steps until a stopping rule holds (agreed by every rank)."""
        assert self.window is not None  # set by run (run_batch) before the loop
        self.field_period = stepper.field_period
        iterations = tqdm(total=self.max_steps, desc="🔁 Iterations       ",
                          disable=not self.verbose or self.max_steps == INFINITY,
                          smoothing=0.1, mininterval=0.5, unit=" steps")
        clock = tqdm(total=self.timeout, desc="⏳ Simulation time  ",
                     disable=not self.verbose or self.timeout == INFINITY, smoothing=0.1,
                     mininterval=0.5, bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} seconds")
        step, elapsed, first, last = 0, 0.0, None, None
        chunk = self._chunk(step, last)
        start = time.time()
        try:
            while True:
                chunk_start = time.time()
                stepper.advance(position, momentum, step, chunk)
                if position.is_cuda:
                    # Kernel launches return at once: wait for the work so chunks are sized
                    # (and timeouts checked) on real time.
                    torch.cuda.synchronize(position.device)
                seconds = time.time() - chunk_start
                first = first or (chunk, seconds)
                if last is None or chunk >= last[0]:  # the longest call estimates best
                    last = (chunk, seconds)
                step += chunk
                iterations.update(chunk)
                running, stopped = True, False
                if self.sampling and step % self.sampling_period == 0:
                    self.window.sample(position, stepper.field(position), self.backend)
                    if self.early_stopping:
                        running = self.window.must_continue()
                    if self.callback is not None:
                        stopped = self._report(step, time.time() - start)
                previous, elapsed = elapsed, time.time() - start
                clock.update(min(elapsed - previous, self.timeout - previous))
                # A callback's stop is decided like the timeout: rank 0's counts for all.
                timed_out = elapsed > self.timeout or stopped
                chunk = self._chunk(step, last, first) if step < self.max_steps else 0
                if self.shard is not None:
                    running, timed_out, chunk = self.shard.agree(
                        running=running, timed_out=timed_out, chunk=chunk)
                if not running or step >= self.max_steps or timed_out:
                    break
        finally:
            iterations.close()
            clock.close()

    def _report(self, step: int, seconds: float) -> bool:
        """Gives the callback this sampling point (every rank's agents); True: stop."""
        assert self.window is not None and self.callback is not None
        summary = self.objective.summary(self.window.energies)
        frozen = torch.count_nonzero(self.window.bifurcated).to(summary)
        row = torch.cat([summary, frozen.reshape(1)])
        if self.shard is not None:
            rows = torch.stack(self.shard.gather_rows(row)).cpu()
            best = rows[:, 0].max() if self.objective.maximize else rows[:, 0].min()
            row = torch.stack([best, rows[:, 2].sum() / rows[:, 3].sum(), rows[:, 2].sum(),
                               rows[:, 3].sum(), rows[:, 4].sum()])
        values = row.tolist()
        point = HistoryPoint(step=step, seconds=seconds, best=values[0], mean=values[1],
                             frozen=int(values[4]))
        return bool(self.callback(point))

    def get_final_spins(self, spins: torch.Tensor, early_stopping: bool) -> torch.Tensor:
        """The frozen agents' spins where they froze, the others' last spins."""
        if not early_stopping:
            return spins
        assert self.window is not None  # set by run
        frozen = self.window.has_bifurcated_spins()
        if self.shard is not None:
            frozen = self.shard.any(frozen)
        if not frozen:
            warnings.warn(ConvergenceWarning(), stacklevel=3)
        return self.window.get_bifurcated_spins(spins)
