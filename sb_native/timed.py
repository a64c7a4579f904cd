"""The best answer within a time limit: SB runs with fresh seeds until the budget is spent.

`solve_within(problem, time_limit)` sizes one run to the budget (a short calibration run
gives the time per step), ramps the pressure over each run (slope = 1 / (time_step *
steps), as sb_native.presets do), polishes every agent's spins with a greedy single-flip
descent (engine/polish.py), restarts with fresh seeds drawn from the user's seed and keeps
the best. The settings (mode, agents, time step, steps) come from the problem's class
(`settings_for`), chosen by measurement (bench/RESULTS.md, "Settings by problem class").

The peer-compatible `timeout` of minimize/maximize keeps its meaning (stop one run); this
is the "best in T seconds" of simulated annealing codes, Gurobi's TimeLimit or D-Wave's
hybrid time_limit.
"""

import math
import time
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from tqdm.auto import tqdm

from . import _checks, _ops
from ._env import override_env
from .core.ising import Ising
from .core.polynomial import DomainLike, QuadraticPolynomial
from .engine import SPARSE_DENSITY, Coupling, SBRunner
from .engine.history import Callback, HistoryPoint, Objective
from .engine.polish import Polisher

# Steps of the calibration run, and the fewest steps worth a run: a shorter ramp gives
# cuts far below a full one's (bench/RESULTS.md, "Settings by problem class").
CALIBRATION_STEPS = 20
MIN_STEPS = 50
# Variables above which settings_for's runs are twice as long (bench/RESULTS.md, "Settings by
# problem class": 16,000 steps win at 5,000 and 10,000 variables, tie at 2,000).
LONG_RUNS_ABOVE = 3000


@dataclass(frozen=True)
class Settings:
    """One run's settings: mode, agents, time_step, the most steps of a run (fewer when a run
    would not fit the budget), heated, and whether the agents are polished.

    >>> import sb_native as sb
    >>> sb.Settings(mode="discrete", agents=64, time_step=0.5, max_steps=2000).polish
    True
    """

    mode: str
    agents: int
    time_step: float
    max_steps: int
    heated: bool = False
    polish: bool = True

    def __post_init__(self) -> None:
        _checks.check_run_settings(self.mode, self.agents, self.max_steps, self.time_step,
                                   self.heated)
        _checks.check_bool("polish", self.polish)


def settings_for(problem: Union["Problem", Coupling], domain: Optional[DomainLike] = None
                 ) -> Settings:
    """The settings of a problem's class, from its size, density and linear terms: problem
    is a QuadraticPolynomial or model (domain: as solve_within's), an Ising, or an SB
    Coupling (taken as having no linear terms). The measurements behind each rule:
    bench/RESULTS.md, "Settings by problem class".

    Max-Cut-like problems (no linear terms) take dSB with few agents and long runs: at equal
    time 16 agents of 8,000 steps beat 128 of 2,000 on every G-set class, and above 3,000
    variables runs of 16,000 steps beat 8,000 on random, toroidal and planar graphs alike.
    Dense problems (K2000) take the smaller time step of the maxcut-dense preset, sparse ones
    the maxcut-sparse preset's 0.5. Problems with linear terms (QUBO; SB runs them with one
    extra spin coupled to every variable with a linear term) do better with more agents and
    shorter runs: 64 agents of 2,000 steps.

    >>> import torch, sb_native as sb
    >>> sb.settings_for(sb.QuadraticPolynomial(torch.ones(3, 3)), domain="spin").time_step
    0.25
    >>> sb.settings_for(sb.models.QUBO(torch.eye(3))).agents
    64
    """
    if isinstance(problem, Coupling):
        return _class_settings(problem, linear=False)
    search = _Search(problem, domain, "minimize")
    return _class_settings(search.coupling, search.ising.linear_term)


def _class_settings(coupling: Coupling, linear: bool) -> Settings:
    dense = coupling.density() >= SPARSE_DENSITY
    time_step = 0.25 if dense else 0.5
    if linear:
        return Settings(mode="discrete", agents=64, time_step=time_step, max_steps=2000)
    return Settings(mode="discrete", agents=16, time_step=time_step,
                    max_steps=8000 if coupling.n <= LONG_RUNS_ABOVE else 16000)


@dataclass(frozen=True)
class TimedResult:
    """What solve_within found: the best vector and its value (the polynomial's, or the
    Ising energy), when it was found, the runs made and their seeds, the steps of the longest
    run, the time spent and the settings used; improvements lists (seconds, value) each time
    the best improved.
    """

    vector: torch.Tensor
    value: float
    found_at: float
    runs: int
    seeds: Tuple[int, ...]  # each run's seed (run_seed(seed, r))
    steps: int
    seconds: float
    settings: Settings
    improvements: Tuple[Tuple[float, float], ...]


Problem = Union[QuadraticPolynomial, Ising]


def run_seed(seed: int, run: int) -> int:
    """Run run's seed: the run-th draw of a generator seeded with seed, so the runs of two
    seeds share nothing (seed + run would share all runs but one with seed + 1).

    >>> import sb_native as sb
    >>> sb.timed.run_seed(0, 0) == sb.timed.run_seed(0, 0) != sb.timed.run_seed(1, 0)
    True
    """
    generator = torch.Generator().manual_seed(seed)
    return int(torch.randint(2**62, (run + 1,), generator=generator)[run])


def _check(problem, time_limit, sense, seed, settings, max_runs, steps, backend, verbose,
           callback) -> None:
    if not isinstance(problem, (QuadraticPolynomial, Ising)):
        raise TypeError("problem should be a QuadraticPolynomial, a model or an Ising, got "
                        f"{type(problem).__name__}.")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not (
            math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit should be a positive number of seconds, got {time_limit!r}.")
    if sense not in ("minimize", "maximize"):
        raise ValueError(f"sense should be 'minimize' or 'maximize', got {sense!r}.")
    if seed is None or not _checks._is_int(seed):
        raise TypeError(f"seed should be an integer, received {seed!r}.")
    _checks.check_seed(seed)  # its range: run_seed seeds a generator with it
    if settings is not None and not isinstance(settings, Settings):
        raise TypeError("settings should be a sb_native.Settings or None, received "
                        f"{type(settings).__name__}.")
    _checks.check_positive_int("max_runs", max_runs, allow_none=True)
    _checks.check_positive_int("steps", steps, allow_none=True)
    _checks.check_backend(backend)
    _checks.check_bool("verbose", verbose)
    _checks.check_callback(callback)


class _Search:
    """The problem in the runner's form, and the best agent found so far."""

    def __init__(self, problem: Problem, domain: Optional[DomainLike], sense: str) -> None:
        self.problem, self.sense = problem, sense
        if isinstance(problem, Ising):
            if domain not in (None, "spin"):
                raise ValueError("domain: an Ising problem is over spins; leave domain unset.")
            ising = problem
        else:
            domain = domain if domain is not None else getattr(problem, "domain", None)
            if domain is None:
                raise ValueError("domain: a QuadraticPolynomial needs its domain ('spin', "
                                 "'binary', 'intN' or one per variable).")
            problem._check_domain(domain)  # consider() decodes the best spins after a run
            ising = problem.to_ising(domain)
        self.domain: DomainLike = domain if domain is not None else "spin"
        if isinstance(problem, Ising):  # its energy: -0.5 of the runner's (of +0.5 on -ising)
            self.objective = Objective(scale=0.5 if sense == "maximize" else -0.5, offset=0.0,
                                       maximize=sense == "maximize")
        else:
            self.objective = problem._objective(ising, self.domain, sense)
        self.ising = -ising if sense == "maximize" else ising
        self.coupling = self.ising._coupling()
        self.best: Optional[Tuple[float, torch.Tensor]] = None

    def better(self, a: float, b: float) -> bool:
        return a > b if self.sense == "maximize" else a < b

    def mean(self, energies: torch.Tensor) -> float:
        """The agents' mean value of the runner's energies."""
        return float(self.objective.summary(energies)[1])

    def consider(self, spins: torch.Tensor, energies: torch.Tensor) -> Optional[float]:
        """Keeps the agent with the highest runner's energy s^T J s (the best value); returns
        its value, computed from its vector, when it beats the best so far."""
        column = spins[:, int(torch.argmax(energies))].reshape(-1, 1)
        if self.ising.linear_term:
            column = column[-1] * column[:-1]
        if isinstance(self.problem, Ising):
            J, h = self.problem.J, self.problem.h
            s = column.reshape(-1).to(J.dtype)
            vector = s
            value = float(-0.5 * s @ (J @ s) + h @ s)
        else:
            vector = self.problem.convert_spins(column, self.domain).reshape(-1)
            vector = vector.to(dtype=self.problem.dtype, device=self.problem.device)
            value = float(self.problem(vector))
        if self.best is None or self.better(value, self.best[0]):
            self.best = (value, vector)
            return value
        return None


def solve_within(problem: Problem, time_limit: float, *, sense: str = "minimize",
                 domain: Optional[DomainLike] = None, seed: int = 0,
                 settings: Optional[Settings] = None, steps: Optional[int] = None,
                 max_runs: Optional[int] = None, backend: str = "auto", verbose: bool = True,
                 callback: Optional[Callback] = None) -> TimedResult:
    """The best answer SB finds for problem within time_limit seconds.

    problem: a QuadraticPolynomial, a model (MaxCut, QUBO, ...; its own domain) or an Ising
    (its energy). sense: "minimize" or "maximize". domain: a polynomial's domain (as
    minimize's). seed: run r uses run_seed(seed, r), so two calls with the same seed and the
    same runs give the same answer. settings: the runs' settings (default: settings_for the
    problem). steps: the steps of every run, instead of the calibrated ones; max_runs: stop
    after that many runs (with steps, a result that does not depend on the clock). backend:
    "auto", "native" or "torch". verbose: a progress bar with the best value so far.
    callback: a HistoryPoint after each run (step: the steps so far, best: the best value so
    far, mean: this run's agents' mean, frozen: the runs so far); True stops.

    >>> import torch, sb_native as sb
    >>> from sb_native.models import MaxCut
    >>> model = MaxCut.from_edges([(0, 1, 1.0), (1, 2, 2.0), (0, 2, 3.0)])
    >>> result = sb.solve_within(model, 1.0, sense="maximize", steps=100, max_runs=3,
    ...                          verbose=False)
    >>> result.value, result.runs
    (5.0, 3)
    """
    _check(problem, time_limit, sense, seed, settings, max_runs, steps, backend, verbose,
           callback)
    start = time.perf_counter()
    search = _Search(problem, domain, sense)
    coupling = search.coupling
    settings = settings or _class_settings(coupling, search.ising.linear_term)
    run_backend = _ops.resolve_backend(backend, coupling.device)
    discrete = settings.mode == "discrete"
    coupling = coupling.for_run(run_backend, discrete)
    polish = Polisher(coupling, run_backend) if settings.polish else None

    def run(run_steps: int, run_seed: int, timeout: Optional[float]) -> torch.Tensor:
        generator = torch.Generator(device=coupling.device).manual_seed(run_seed)
        runner = SBRunner(agents=settings.agents, max_steps=run_steps, timeout=timeout,
                          mode=settings.mode, heated=settings.heated, verbose=False,
                          early_stopping=False, sampling_period=50, convergence_threshold=50,
                          backend=run_backend, generator=generator, seed=run_seed)
        # The run's own environment, seen by this thread only (the process-wide one of
        # set_env is left alone, so runs in other threads are unaffected).
        with override_env(time_step=settings.time_step,
                          pressure_slope=1.0 / (settings.time_step * run_steps)):
            return runner.run(coupling)

    bar = tqdm(total=time_limit, disable=not verbose, desc="⏱ Best within limit",
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s{postfix}")
    improvements = []
    seeds: list = []
    runs, total_steps, longest, per_step, per_run_extra = 0, 0, 0, 0.0, 0.0
    fixed = steps is not None  # every run of the given steps: no calibration, no shrinking
    try:
        if not fixed:
            timings = []
            for _ in range(2):  # the faster run: the first also pays one-off set-up
                began = time.perf_counter()
                run(CALIBRATION_STEPS, seed, None)
                timings.append(time.perf_counter() - began)
            # An upper bound: a run's first steps flip the most signs, which costs dSB's
            # incremental field most; each run's own time then resizes the next.
            per_step = min(timings) / CALIBRATION_STEPS
        while max_runs is None or runs < max_runs:
            remaining = time_limit - (time.perf_counter() - start)
            if not fixed:
                steps = max(MIN_STEPS, min(settings.max_steps, int(0.9 * time_limit / per_step)))
            assert steps is not None
            run_steps = steps
            if runs and not fixed:  # the last run shrinks to what is left, or is skipped
                run_steps = min(steps, int((remaining - per_run_extra) / per_step))
            if remaining <= 0 or (not fixed and run_steps < max(MIN_STEPS, steps // 4)):
                break
            began = time.perf_counter()
            seeds.append(run_seed(seed, runs))
            spins = run(run_steps, seeds[-1], remaining if max_runs is None else None)
            ran = time.perf_counter() - began
            if polish is not None:
                spins, energies = polish(spins)
            else:
                energies = torch.sum(spins * coupling.matmul(spins), dim=0)
            per_step = ran / run_steps  # the whole run's pace sizes the next runs
            per_run_extra = time.perf_counter() - began - ran
            runs, total_steps = runs + 1, total_steps + run_steps
            longest = max(longest, run_steps)
            now = time.perf_counter() - start
            value = search.consider(spins, energies)
            if value is not None:
                improvements.append((now, value))
                bar.set_postfix_str(f"best {value:g}, {runs} runs", refresh=False)
            bar.update(min(now, time_limit) - bar.n)
            if callback is not None:
                assert search.best is not None
                if callback(HistoryPoint(step=total_steps, seconds=now, best=search.best[0],
                                         mean=search.mean(energies), frozen=runs)):
                    break
    finally:
        bar.close()
    if search.best is None:
        raise ValueError(f"time_limit: {time_limit} s is too short for one run of "
                         f"{MIN_STEPS} steps on this problem.")
    value, vector = search.best
    return TimedResult(vector=vector, value=value, found_at=improvements[-1][0], runs=runs,
                       seeds=tuple(seeds), steps=longest, seconds=time.perf_counter() - start,
                       settings=settings, improvements=tuple(improvements))
