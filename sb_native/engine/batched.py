"""SB on a batch of problems in one run: one op call per chunk advances every problem.

Each problem of the batch gets the states its own run would get. Its coupling is the one
its own run's storage decision leads to (`Coupling.for_run`: the int8 form of an integer
dSB coupling is run as K with q * scale, as sb_run_int8 does), its quadratic coefficient is
computed from that storage as `_Stepper` computes it, and its initial state is drawn with
its own generator. Problems smaller than the batch's size are padded with zero couplings
and zero positions and momenta: a padded variable stays exactly 0 (no force, no kick), adds
exact zeros to its problem's products and energies, and is dropped from the result.

Early stopping is per problem: at each sampling point a problem whose agents have all
frozen becomes inactive, and sb_run_batched leaves it as it is from then on.
"""

import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from .. import _memory
from .._env import current_env
from . import ops, reference
from .coupling import FIELD_PERIOD_WORK, Coupling, dense_sums_exactly, field_period, for_runs
from .history import BatchHistoryPoint, Objective
from .runner import ConvergenceWarning, SBRunner, StopWindow, call_schedule, draw_oscillators

BATCH_CHUNK_SECONDS = 1.0


class BatchConvergenceWarning(ConvergenceWarning):
    """Some problems of a batch had no frozen agent; their last spins were returned."""

    def __init__(self, problems: Sequence[int]) -> None:
        super().__init__()
        self.problems = list(problems)

    def __str__(self) -> str:
        shown = ", ".join(str(b) for b in self.problems[:10])
        more = ", ..." if len(self.problems) > 10 else ""
        return (f"No agent has converged in {len(self.problems)} problem(s) of the batch "
                f"({shown}{more}). Returned signs of final positions instead.")


@dataclass(frozen=True)
class CouplingBatch:
    """What sb_run_batched runs on, padded to a common size n."""

    run_matrix: torch.Tensor  # (B, n, n): each problem's coupling as its own run steps it
    field_matrix: torch.Tensor  # (B, n, n): the couplings themselves, for energies
    quadratic_coef: torch.Tensor  # (B,) float64: each problem's coefficient of J @ f(x)
    sizes: List[int]  # each problem's own number of spins

    @property
    def n(self) -> int:
        return self.run_matrix.shape[1]

    def field_period(self, agents: int, backend: str, discrete: bool) -> Optional[int]:
        """Coupling.field_period for the batch: sb_run_batched keeps dSB's field as the
        one-problem kernels do, with the whole batch's work in each call."""
        if backend != "native" or not discrete:
            return None
        if dense_sums_exactly(self.run_matrix):
            return None
        # Calls ten times as long as one problem's, as BATCH_CHUNK_SECONDS are.
        return field_period(len(self.sizes) * self.n * agents, 10 * FIELD_PERIOD_WORK)


def _run_form(coupling: Coupling, storage: Coupling, time_step: float):
    """(dense matrix, q) that step this coupling as its own run does, from the storage its
    run uses (Coupling.for_run)."""
    q = float(time_step * storage.quadratic_scale())
    if storage.integer is not None:
        K, scale = storage.integer
        return K.to(coupling.dtype), q * scale
    return _dense(coupling), q


def _dense(coupling: Coupling) -> torch.Tensor:
    return coupling.torch_csr().to_dense() if coupling.matrix is None else coupling.matrix


def batch_couplings(couplings: Sequence[Coupling], backend: str, discrete: bool,
                    time_step: float) -> CouplingBatch:
    """The dense couplings of a batch (one per problem), padded to the largest."""
    first = couplings[0]
    n = max(c.n for c in couplings)
    shape = (len(couplings), n, n)
    storages = for_runs(couplings, backend, discrete)
    # A problem stepped on another form than its own dense matrix (a sparse one, an int8
    # one) has that form made dense while the batch is filled, and the energies then need
    # the couplings themselves apart from what the run steps (a second batch of matrices).
    copied = [c.n for c, storage in zip(couplings, storages)
              if c.is_sparse or storage.integer is not None]
    batches = 2 if copied else 1
    itemsize = first.matrix_itemsize()
    _memory.check_fits(
        f"A batch of {len(couplings)} problems of up to {n} spins",
        (batches * len(couplings) * n * n + sum(size * size for size in copied)) * itemsize,
        first.device, f"its dense couplings ({batches} x {len(couplings)} x {n} x {n} "
        f"{_memory.dtype_name(first.dtype)}"
        + (f", and {len(copied)} problems' own forms made dense)" if copied else ")"),
        "solve its large (sparse) problems one call each, or split the batch")
    forms = [_run_form(c, storage, time_step) for c, storage in zip(couplings, storages)]
    separate = bool(copied)  # the energies need the couplings themselves (K, CSR)
    run_matrix = torch.zeros(shape, dtype=first.dtype, device=first.device)
    field_matrix = torch.zeros(shape, dtype=first.dtype, device=first.device) if separate \
        else run_matrix
    for b, (coupling, (matrix, _)) in enumerate(zip(couplings, forms)):
        run_matrix[b, :coupling.n, :coupling.n] = matrix
        if separate:
            field_matrix[b, :coupling.n, :coupling.n] = _dense(coupling)
    quadratic_coef = torch.tensor([q for _, q in forms], dtype=torch.float64,
                                  device=first.device)
    return CouplingBatch(run_matrix, field_matrix, quadratic_coef,
                         [c.n for c in couplings])


class BatchStopWindow(StopWindow):
    """The stop window of every agent of every problem, as one window of B * agents agents
    on the (n, B * agents) view of the states; a problem is active while one of its agents
    is not frozen."""

    def __init__(self, batch: CouplingBatch, agents: int, convergence_threshold: int,
                 verbose: bool) -> None:
        problems = len(batch.sizes)
        super().__init__(batch.n, problems * agents, convergence_threshold,
                         batch.run_matrix.dtype, batch.run_matrix.device, verbose)
        self.problems, self.agents = problems, agents
        self.active = torch.ones(problems, dtype=torch.bool, device=batch.run_matrix.device)

    @staticmethod
    def flat(states: torch.Tensor) -> torch.Tensor:
        """(B, n, agents) -> (n, B * agents), agents of problem b in columns b * agents + a."""
        return states.transpose(0, 1).reshape(states.shape[1], -1)

    def unflat(self, states: torch.Tensor) -> torch.Tensor:
        n = states.shape[0]
        return states.reshape(n, self.problems, self.agents).transpose(0, 1)

    def sample(self, position: torch.Tensor, field: torch.Tensor, backend: str) -> None:
        super().sample(self.flat(position), self.flat(field), backend)
        streaks = self.stability.reshape(self.problems, self.agents)
        self.active = torch.any(streaks < self.convergence_threshold - 1, dim=1)

    def must_continue(self) -> bool:
        return bool(torch.any(self.active))

    def get_bifurcated_spins(self, spins: torch.Tensor) -> torch.Tensor:
        return self.unflat(super().get_bifurcated_spins(self.flat(spins)))

    def unfrozen_problems(self) -> List[int]:
        frozen = self.bifurcated.reshape(self.problems, self.agents).any(dim=1)
        return torch.nonzero(~frozen).reshape(-1).tolist()


class _BatchStepper:
    """Advances the active problems by k steps (sb_run_batched); J @ spins for sampling."""

    def __init__(self, batch: CouplingBatch, window: BatchStopWindow, backend: str,
                 heated: bool, discrete: bool, env: Dict[str, float]) -> None:
        self.batch, self.window, self.backend, self.discrete = batch, window, backend, discrete
        self.schedule = call_schedule(env, heated)
        self.field_period = batch.field_period(window.agents, backend, discrete)

    def advance(self, position, momentum, start: int, steps: int) -> None:
        ops.sb_run_batched(self.batch.run_matrix, position, momentum, self.window.active,
                           start, steps, quadratic_coef=self.batch.quadratic_coef,
                           discrete=self.discrete, backend=self.backend, **self.schedule)

    def field(self, position: torch.Tensor) -> torch.Tensor:
        return torch.bmm(self.batch.field_matrix, reference.sample_spins(position))


class BatchRunner(SBRunner):
    """SBRunner's loop and stopping rules over a batch of problems; with a callback,
    `objectives` (one per problem) give its BatchHistoryPoints' values."""

    objectives: Sequence[Objective] = ()

    # Each call reads every active problem's state and coupling into the cores' caches (and
    # dSB recomputes every field): on a large batch that set-up alone can take a few tenths
    # of a second, so calls aim at a second instead of 0.1 s; timeouts and Ctrl-C act within
    # one call (bench/RESULTS.md, batched SB).
    chunk_seconds = BATCH_CHUNK_SECONDS

    def run_batch(self, batch: CouplingBatch, seeds: Sequence[Optional[int]],
                  env: Optional[Dict[str, float]] = None) -> torch.Tensor:
        """Spins (B, n, agents) in {-1, 1} (padded variables included); problem b's initial
        state is drawn with a generator seeded seeds[b], or from the global RNG when None.
        env: the environment the batch's quadratic coefficients were computed with, captured
        once by the caller (else read now) so that another thread's set_env cannot split
        the run between two environments."""
        self._check_stopping_rule()
        env = current_env() if env is None else env
        position, momentum = self._draw_batch(batch, seeds)
        window = BatchStopWindow(batch, self.agents, self.convergence_threshold,
                                 self.verbose and self.early_stopping)
        self.window = window
        try:
            self._loop(_BatchStepper(batch, window, self.backend, self.heated, self.discrete,
                                     env),
                       position, momentum)
        except KeyboardInterrupt:
            warnings.warn(RuntimeWarning(
                "Simulation interrupted by user. Current spins will be returned."), stacklevel=2)
        finally:
            window.progress.close()
        spins = reference.sample_spins(position)
        if not self.early_stopping:
            return spins
        unfrozen = window.unfrozen_problems()
        if unfrozen:
            warnings.warn(BatchConvergenceWarning(unfrozen), stacklevel=3)
        return window.get_bifurcated_spins(spins)

    def _report(self, step: int, seconds: float) -> bool:
        """Gives the callback this sampling point, one entry per problem; True: stop."""
        assert isinstance(self.window, BatchStopWindow) and self.callback is not None
        window = self.window
        device = window.energies.device

        def column(values: List[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float64, device=device).reshape(-1, 1)

        values = window.energies.reshape(window.problems, window.agents).to(torch.float64)
        values = (values * column([o.scale for o in self.objectives])
                  + column([o.offset for o in self.objectives]))
        # One sense for the whole batch.
        best = values.amax(dim=1) if self.objectives[0].maximize else values.amin(dim=1)
        frozen = window.bifurcated.reshape(window.problems, window.agents).sum(dim=1)
        point = BatchHistoryPoint(step=step, seconds=seconds, best=tuple(best.tolist()),
                                  mean=tuple(values.mean(dim=1).tolist()),
                                  frozen=tuple(frozen.tolist()))
        return bool(self.callback(point))

    def _draw_batch(self, batch: CouplingBatch, seeds: Sequence[Optional[int]]) -> tuple:
        matrix = batch.run_matrix
        _memory.check_run(batch.n, self.agents, self.max_steps, matrix.dtype, matrix.device,
                          problems=len(batch.sizes), polish=self.polish)
        shape = (len(batch.sizes), batch.n, self.agents)
        position = torch.zeros(shape, dtype=matrix.dtype, device=matrix.device)
        momentum = torch.zeros_like(position)
        for b, (size, seed) in enumerate(zip(batch.sizes, seeds)):
            generator = None
            if seed is not None:
                generator = torch.Generator(device=matrix.device).manual_seed(seed)
            x, m = draw_oscillators(size, self.agents, matrix.dtype, matrix.device, generator)
            position[b, :size] = x
            momentum[b, :size] = m
        return position, momentum
