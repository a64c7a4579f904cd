"""The SB run: initial draws, the step loop in chunks, stopping criteria, progress bars.

The loop itself runs in chunks of steps: the native backend advances a whole chunk in
one C++ call (sb_run / sb_run_csr); the torch backend performs the same steps with torch
operations. Between chunks the Python layer only updates the progress bars, checks the
timeout and, at each sampling point, updates the early-stopping window (sb_sample).
"""

import time
import warnings
from typing import Optional

import torch
from tqdm.auto import tqdm

from .._env import ENVIRONMENT
from . import fallback
from .coupling import Coupling

INFINITY = float("inf")
# Wall time one chunk aims at, so progress bars, timeouts and Ctrl-C stay responsive
# without paying per-step Python overhead on the native path.
CHUNK_SECONDS = 0.1
MAX_CHUNK_STEPS = 1000


class ConvergenceWarning(Warning):
    def __str__(self) -> str:
        return "No agent has converged. Returned signs of final positions instead."


class StopWindow:
    """Early-stopping state: last energies, stability streaks, frozen (bifurcated) agents."""

    def __init__(self, n: int, agents: int, threshold: int, dtype, device, verbose: bool):
        self.threshold = threshold
        self.energies = torch.full((agents,), INFINITY, dtype=dtype, device=device)
        self.stability = torch.zeros(agents, dtype=torch.int16, device=device)
        self.bifurcated = torch.zeros(agents, dtype=torch.bool, device=device)
        self.final_spins = torch.zeros((n, agents), dtype=dtype, device=device)
        self.progress = tqdm(total=agents, desc="🏁 Bifurcated agents", disable=not verbose,
                             smoothing=0, unit=" agents")

    def update(self, sample_fn, position: torch.Tensor, field: torch.Tensor) -> None:
        before = int(torch.count_nonzero(self.bifurcated))
        sample_fn(position, field, self.energies, self.stability, self.bifurcated,
                  self.final_spins, self.threshold)
        self.progress.update(int(torch.count_nonzero(self.bifurcated)) - before)

    def must_continue(self) -> bool:
        return bool(torch.any(self.stability < self.threshold - 1))

    def has_bifurcated_spins(self) -> bool:
        return bool(torch.any(self.bifurcated))

    def get_bifurcated_spins(self, spins: torch.Tensor) -> torch.Tensor:
        return torch.where(self.bifurcated, self.final_spins, spins)


class _Stepper:
    """Advances the state by k steps and computes J @ spins, on one backend."""

    def __init__(self, coupling: Coupling, backend: str, quadratic_coef: float,
                 heat_coef: float, discrete: bool) -> None:
        self.coupling = coupling
        self.native = backend == "native"
        self.quadratic_coef = quadratic_coef
        self.heat_coef = heat_coef
        self.discrete = discrete
        self.torch_matrix = coupling.torch_csr() if coupling.is_sparse else coupling.matrix
        self.sample = torch.ops.sb_native.sb_sample if self.native else fallback.sb_sample
        self.integer = coupling.integer_form() if self.native and discrete else None

    def advance(self, position, momentum, start: int, steps: int) -> None:
        env = (ENVIRONMENT.time_step, ENVIRONMENT.pressure_slope, self.quadratic_coef,
               self.heat_coef, self.discrete)
        if not self.native:
            fallback.sb_run(self.torch_matrix, position, momentum, start, steps, *env)
        elif self.integer is not None:
            torch.ops.sb_native.sb_run_int8(*self.integer, position, momentum, start, steps,
                                            *env[:-1])
        elif self.coupling.is_sparse:
            torch.ops.sb_native.sb_run_csr(*self.coupling.csr, position, momentum, start, steps,
                                           *env)
        else:
            torch.ops.sb_native.sb_run(self.coupling.matrix, position, momentum, start, steps,
                                       *env)

    def field(self, position: torch.Tensor) -> torch.Tensor:
        spins = fallback.sample_spins(position)
        # The int8 product is exact and cheap on the CPU; CUDA's _int_mm has size limits.
        if self.integer is not None and position.device.type == "cpu":
            K, scale = self.integer
            return torch._int_mm(K, spins.to(torch.int8)).to(position.dtype) * scale
        return self.coupling.matmul(spins)


class SBRunner:
    """Runs SB on a coupling; same stopping rules and progress bars as the 2.0.0 package."""

    def __init__(self, *, agents: int, max_steps: Optional[int], timeout: Optional[float],
                 mode: str, heated: bool, verbose: bool, early_stopping: bool,
                 sampling_period: int, convergence_threshold: int, backend: str,
                 generator: Optional[torch.Generator]) -> None:
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

    def _initial_state(self, coupling: Coupling):
        # Positions first, then momenta, shape (variables, agents): the 2.0.0 draw order.
        shape = (coupling.n, self.agents)
        draw = lambda: 2 * torch.rand(size=shape, device=coupling.device, dtype=coupling.dtype,  # noqa: E731
                                      generator=self.generator) - 1
        position = draw()
        momentum = draw()
        return position, momentum

    def _chunk(self, step: int, last: Optional[tuple]) -> int:
        """Steps of the next call. last = (steps, seconds) of the longest call so far, or None.

        A call costs a fixed set-up (the exact local field, buffers) plus a time per step, so
        the rate of a short call overstates the time per step: while the last call took under
        half of CHUNK_SECONDS the chunk at least doubles, which keeps every call within
        CHUNK_SECONDS (t(2c) < 2 t(c)) and reaches the long chunks in a few calls."""
        limit = MAX_CHUNK_STEPS
        if self.early_stopping:
            limit = min(limit, self.sampling_period - step % self.sampling_period)
        if self.max_steps != INFINITY:
            limit = min(limit, self.max_steps - step)
        if last is None:
            return 1  # a first single step measures the speed that sizes the next chunks
        steps, seconds = last
        chunk = int(CHUNK_SECONDS * steps / max(seconds, 1e-9))
        if seconds < CHUNK_SECONDS / 2:
            chunk = max(chunk, 2 * steps)
        return max(1, min(limit, chunk))

    def run(self, coupling: Coupling) -> torch.Tensor:
        """SB spins, shape (variables, agents), values in {-1, 1}."""
        if self.max_steps == INFINITY and self.timeout == INFINITY and not self.early_stopping:
            raise ValueError("No stopping criterion provided.")
        scale = coupling.quadratic_scale()
        stepper = _Stepper(coupling, self.backend, float(ENVIRONMENT.time_step * scale),
                           ENVIRONMENT.time_step * ENVIRONMENT.heat_coefficient if self.heated else 0.0,
                           self.discrete)
        iterations = tqdm(total=self.max_steps, desc="🔁 Iterations       ",
                          disable=not self.verbose or self.max_steps == INFINITY,
                          smoothing=0.1, mininterval=0.5, unit=" steps")
        clock = tqdm(total=self.timeout, desc="⏳ Simulation time  ",
                     disable=not self.verbose or self.timeout == INFINITY, smoothing=0.1,
                     mininterval=0.5, bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} seconds")
        position, momentum = self._initial_state(coupling)
        window = StopWindow(coupling.n, self.agents, self.convergence_threshold, coupling.dtype,
                            coupling.device, self.verbose and self.early_stopping)
        step, elapsed, last = 0, 0.0, None
        start = time.time()
        try:
            while True:
                chunk = self._chunk(step, last)
                chunk_start = time.time()
                stepper.advance(position, momentum, step, chunk)
                if position.is_cuda:
                    # Kernel launches return at once: wait for the work so chunks are sized
                    # (and timeouts checked) on real time.
                    torch.cuda.synchronize(position.device)
                if last is None or chunk >= last[0]:  # the longest call estimates best
                    last = (chunk, time.time() - chunk_start)
                step += chunk
                iterations.update(chunk)
                if self.early_stopping and step % self.sampling_period == 0:
                    window.update(stepper.sample, position, stepper.field(position))
                    if not window.must_continue():
                        break
                if step >= self.max_steps:
                    break
                previous, elapsed = elapsed, time.time() - start
                clock.update(min(elapsed - previous, self.timeout - previous))
                if elapsed > self.timeout:
                    break
        except KeyboardInterrupt:
            warnings.warn(RuntimeWarning(
                "Simulation interrupted by user. Current spins will be returned."), stacklevel=2)
        finally:
            iterations.close()
            clock.close()
            window.progress.close()
        spins = fallback.sample_spins(position)
        if not self.early_stopping:
            return spins
        if not window.has_bifurcated_spins():
            warnings.warn(ConvergenceWarning(), stacklevel=2)
        return window.get_bifurcated_spins(spins)
