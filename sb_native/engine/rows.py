"""SB with the variables across the ranks of a torch.distributed process group, for problems
too big for one device (core/rows.py builds the blocks; docs/distributed.md).

Rank r owns the contiguous variables lo_r to hi_r - 1: those rows of the coupling (CSR with
global columns) and of the positions and momenta, never the rest of J. Each step is
  begin (kick-drift of the rank's rows) -> all_gather f(x) -> finish (m += q J_rows f(x)...)
with one all_gather per step of f(x) of every variable: the positions for bSB, one bit per
spin and agent for dSB (sb_rows_pack; on a step where some x is exactly 0, whose sign one
bit cannot carry, a zero plane follows). Every rank sends block + 1 rows, its rows last and
a header row after them (a dSB step's count of zero signs, or -1 from a rank that failed),
so the gathered buffer is one tensor and each non-zero's column is mapped once to its row
there (rows_layout.py: RowLayout.gathered_rows).

A rank's rows evolve exactly as those rows of the single-process run on the CSR coupling
(same sums in the same order, the kernels' per-element math), and every rank draws the
single-process initial stream and keeps its rows, so the result does not depend on the
world size: dSB on integer weights and bSB alike (tests/sb/test_rows_ranks.py).

Early stopping samples every sampling_period steps: the spins are gathered (one bit each),
each rank computes its rows' share of the energies (sb_rows_energy) and one all_reduce sums
them, together with rank 0's timeout flag and any rank's failure flag; every rank then
updates the same stop window. A rank that fails sets its flag in the next collective and
raises; the others raise RankFailed there.
"""

import time
import warnings
from typing import Optional, Tuple

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .. import _memory
from .._distributed import checksum, collective_device, handshake, raise_if_failed
from .._env import current_env
from . import ops
from .coupling import csr_sums_exactly, quadratic_scale
from .history import ISING, HistoryPoint, Objective
from .reference import momentum_coefficient, sample_spins, update_stop_window
from .rows_layout import RowCoupling, RowLayout, RowResult, RowStats
from .runner import INFINITY, ConvergenceWarning, call_schedule, draw_oscillators

# all_gather into one tensor (torch 2.13 renamed it; the old name warns there).
_all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor

# Rows of the initial state drawn at a time: each rank draws the whole single-process stream
# (positions, then momenta) and keeps its rows, in pieces of about this many values.
DRAW_VALUES = 1 << 22


class RowRunner:
    """Runs SB on a RowCoupling across the ranks of group (stopping rules as SBRunner)."""

    def __init__(self, options, backend: str, group, objective: Objective = ISING) -> None:
        self.agents = options.agents
        self.max_steps = INFINITY if options.max_steps is None else options.max_steps
        self.timeout = INFINITY if options.timeout is None else options.timeout
        self.discrete = options.mode == "discrete"
        self.heated = bool(options.heated)
        self.early_stopping = bool(options.early_stopping)
        self.callback = options.callback
        self.objective = objective  # the callback's values of the energies
        # Sampling points: early stopping's, or a callback's when early stopping is off.
        self.sampling = self.early_stopping or self.callback is not None
        self.period = options.sampling_period
        self.threshold = options.convergence_threshold
        self.backend = backend
        self.seed = options.seed
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        self.verbose = bool(options.verbose) and self.rank == 0
        self._error: Optional[BaseException] = None
        self.stats = RowStats()

    # Collectives: each carries this rank's failure flag, so a failed rank never leaves the
    # others waiting.

    def _guard(self, work) -> None:
        if self._error is None:
            start = time.perf_counter()
            try:
                work()
            except Exception as err:  # noqa: BLE001 - raised after the next collective
                self._error = err
            self.stats.compute_s += time.perf_counter() - start

    def _raise_if_failed(self, failed: torch.Tensor, what: str) -> None:
        """Raises this rank's own error, or RankFailed naming the first rank that failed."""
        if self._error is not None:
            raise self._error
        ranks = torch.nonzero(failed).reshape(-1)
        raise_if_failed(int(ranks[0]) + 1 if ranks.numel() else 0, what)

    def _gather(self, send: torch.Tensor, gathered: torch.Tensor, what: str) -> torch.Tensor:
        """all_gather of every rank's send (block + 1 rows); returns the header column."""
        if self._error is not None:
            send[-1, 0] = -1
        start = time.perf_counter()
        _all_gather(gathered, send, group=self.group)
        self.stats.communication_s += time.perf_counter() - start
        self.stats.bytes_sent += send.numel() * send.element_size()
        heads = gathered.view(self.world, -1, gathered.shape[1])[:, -1, 0]
        self._raise_if_failed(heads < 0, what)
        return heads

    def _all_reduce(self, values: torch.Tensor, timed_out: bool,
                    what: str) -> Tuple[torch.Tensor, bool]:
        """Sums values (float64) over the ranks, with rank 0's timeout and the failure flags;
        returns (sums, timed out)."""
        flags = torch.zeros(self.world + 1, dtype=torch.float64, device=values.device)
        flags[0] = float(timed_out and self.rank == 0)
        flags[1 + self.rank] = float(self._error is not None)
        payload = torch.cat([values.to(torch.float64), flags])
        start = time.perf_counter()
        dist.all_reduce(payload, group=self.group)
        self.stats.communication_s += time.perf_counter() - start
        self.stats.bytes_sent += payload.numel() * payload.element_size()
        self._raise_if_failed(payload[-self.world:] > 0, what)
        return payload[:-self.world - 1], bool(payload[-self.world - 1] > 0)

    # The run

    def run(self, coupling: RowCoupling, settings: tuple) -> RowResult:
        """SB on the coupling; settings (the problem's description) must agree on every
        rank, with the options, or every rank raises ValueError."""
        if self.max_steps == INFINITY and self.timeout == INFINITY and not self.early_stopping:
            raise ValueError("No stopping criterion provided.")
        layout, device, dtype = coupling.layout, coupling.device, coupling.dtype
        if collective_device(self.group) != torch.device("cpu") and device.type != "cuda":
            raise ValueError("variables across ranks on an NCCL group need CUDA tensors "
                             f"(device='cuda'), got {device}")
        digest = checksum([], (layout.bounds, str(dtype), settings, self._settings()))
        seed = handshake(self.group, digest, self.seed, "build the same problem (the same "
                         "file or sizes) and call with the same options")
        # dSB keeps its rows' field and corrects it by the flips alone where that is exact
        # (the one-process kernels' rule, Coupling.exact_field); the sums stay those of the
        # single-process run either way.
        self.incremental = self.discrete and csr_sums_exactly(coupling.crow, coupling.values)
        # Every rank's memory before any rank draws: one that lacks it makes all raise.
        self._guard(lambda: _memory.check_rows(
            layout.rows, self.world * (layout.block + 1), self.agents, self.max_steps, dtype,
            device, self.discrete, self.incremental))
        self._all_reduce(torch.zeros(0, device=collective_device(self.group)), False,
                         "the memory check")
        position, momentum = self._draw(layout, dtype, device, seed)
        self.layout, self.coupling = layout, coupling
        self.columns = layout.gathered_rows(coupling.col)
        self._setup_buffers(position, momentum)
        norm_sq, _ = self._all_reduce(torch.sum(coupling.values ** 2).reshape(1), False,
                                      "the set-up")
        env = current_env()  # read once: the run keeps this copy (sb_native/_env.py)
        self.schedule = call_schedule(env, self.heated)
        xi0 = quadratic_scale(layout.size, norm_sq.to(dtype)[0])
        self.q = float(env["time_step"] * xi0)
        self._loop()
        return self._result()

    def _settings(self) -> tuple:
        return (self.agents, self.max_steps, self.timeout, self.discrete, self.heated,
                self.early_stopping, self.period, self.threshold, self.backend, self.seed)

    def _draw(self, layout: RowLayout, dtype, device, seed: int):
        """This rank's rows of the single-process initial draw (SBRunner's, whole stream)."""
        generator = torch.Generator(device=device).manual_seed(seed)
        n, agents = layout.size, self.agents
        if device.type != "cpu":  # CUDA's generator has no sequential stream to skip in
            draws = draw_oscillators(n, agents, dtype, device, generator)
            return [d[layout.lo:layout.hi].contiguous() for d in draws]
        chunk = max(1, DRAW_VALUES // agents)
        out = []
        for _ in range(2):
            kept = torch.empty((layout.rows, agents), dtype=dtype)
            for r0 in range(0, n, chunk):
                r1 = min(n, r0 + chunk)
                piece = 2 * torch.rand((r1 - r0, agents), dtype=dtype, generator=generator) - 1
                lo, hi = max(r0, layout.lo), min(r1, layout.hi)
                if lo < hi:
                    kept[lo - layout.lo:hi - layout.lo] = piece[lo - r0:hi - r0]
            out.append(kept)
        return out

    def _setup_buffers(self, position: torch.Tensor, momentum: torch.Tensor) -> None:
        rows, agents = position.shape
        block, device, dtype = self.layout.block, position.device, position.dtype
        words = -(-agents // 64)
        self.top = top = block - rows  # the rank's rows sit right before its header row
        if self.discrete:
            self.send = torch.zeros((block + 1, words), dtype=torch.int64, device=device)
            self.packed = self.send[top:]
            self.position = position
        else:
            self.send = torch.zeros((block + 1, agents), dtype=dtype, device=device)
            self.position = self.send[top:block]
            self.position.copy_(position)
        self.spins_send = torch.zeros((block + 1, words), dtype=torch.int64, device=device)
        self.spins_packed = self.spins_send[top:]
        self.gathered = torch.empty((self.world * (block + 1), self.send.shape[1]),
                                    dtype=self.send.dtype, device=device)
        self.spins_gathered = torch.empty((self.world * (block + 1), words), dtype=torch.int64,
                                          device=device)
        self.momentum = momentum
        self.start_momentum = (torch.zeros_like(momentum) if self.heated
                               else torch.empty(0, dtype=dtype, device=device))
        self.f = self.gathered  # what the next finish multiplies (gathered2: zero plane)
        # The incremental field, and which gathered buffer's product it holds (None: none
        # usable; the next finish takes the whole product). Steps alternate the buffers.
        self.field = torch.zeros_like(position) if self.incremental else None
        self.field_of: Optional[torch.Tensor] = None
        self.spare = torch.empty_like(self.gathered) if self.incremental else None
        # Made on a first sign 0.
        self.zeros_send: Optional[torch.Tensor] = None
        self.zeros_gathered: Optional[torch.Tensor] = None
        self.gathered2: Optional[torch.Tensor] = None

    def _step_op(self, step: int, finish: bool, begin: bool) -> None:
        c = self.coupling
        time_step = self.schedule["time_step"]
        # A finish on plain packed signs corrects the field of the step before (field_of);
        # one on a zero plane's signs takes the whole product, which the next cannot correct.
        plain = self.field is not None and self.f is not self.gathered2
        previous = self.field_of if finish and plain else None
        ops.sb_rows_step(c.crow, self.columns, c.values, self.f, self.position, self.momentum,
                         self.start_momentum,
                         momentum_coefficient(time_step, step, self.schedule["pressure_slope"]),
                         time_step, self.q, self.schedule["heat_coef"], finish, begin,
                         self.field, previous, backend=self.backend)
        if finish and self.field is not None:
            self.field_of = self.f if plain else None

    def _begin(self, step: int, pending: bool) -> None:
        """Finishes the previous step (pending) and begins `step`, then exchanges f(x)."""
        def work():
            self._step_op(step, pending, True)
            if self.discrete:
                ops.sb_rows_pack(self.position, self.packed, False, backend=self.backend)
        self._guard(work)
        if self.field_of is self.gathered:  # keep the signs the field was taken for
            assert self.spare is not None  # made with the field
            self.gathered, self.spare = self.spare, self.gathered
        heads = self._gather(self.send, self.gathered, "the SB run")
        self.f = self.gathered
        if self.discrete and bool((heads > 0).any()):
            self.f = self._with_zero_plane()

    def _with_zero_plane(self) -> torch.Tensor:
        """The step's signs when some rank has a sign 0 (x == 0 or NaN): every rank sends a
        zero plane too, 1 more bit per spin for this step, and the op reads the signs and
        the plane side by side."""
        x, words = self.position, self.send.shape[1]
        if self.zeros_send is None:
            self.zeros_send = torch.zeros_like(self.send)
            self.zeros_gathered = torch.empty_like(self.gathered)
            self.gathered2 = torch.empty((self.gathered.shape[0], 2 * words), dtype=torch.int64,
                                         device=x.device)
        zeros_send, zeros_gathered, gathered2 = self.zeros_send, self.zeros_gathered, self.gathered2
        assert zeros_gathered is not None and gathered2 is not None  # made with zeros_send

        def work():
            # Packed as spins (bit: value >= 0), 0 where the sign is 0 and -1 elsewhere.
            zero = torch.where((x > 0) | (x < 0), -1.0, 0.0).to(x.dtype)
            ops.sb_rows_pack(zero, zeros_send[self.top:], True, backend=self.backend)
        self._guard(work)
        self._gather(zeros_send, zeros_gathered, "the SB run")
        gathered2[:, :words] = self.gathered
        gathered2[:, words:] = zeros_gathered
        return gathered2

    def _energies(self, position: torch.Tensor, what: str) -> torch.Tensor:
        """This rank's share of the energies of position's spins (the spins gathered)."""
        energies = torch.zeros(self.agents, dtype=position.dtype, device=position.device)

        def work():
            ops.sb_rows_pack(position, self.spins_packed, True, backend=self.backend)
        self._guard(work)
        self._gather(self.spins_send, self.spins_gathered, what)
        c = self.coupling
        self._guard(lambda: ops.sb_rows_energy(c.crow, self.columns, c.values,
                                               self.spins_gathered, position, energies,
                                               backend=self.backend))
        return energies

    def _loop(self) -> None:
        window = _Window(self.position.shape[0], self.agents, self.threshold,
                         self.position.dtype, self.position.device)
        self.window = window
        iterations = tqdm(total=self.max_steps, desc="🔁 Iterations       ",
                          disable=not self.verbose or self.max_steps == INFINITY,
                          smoothing=0.1, mininterval=0.5, unit=" steps")
        step, pending, start = 0, False, time.time()
        try:
            while True:
                self._begin(step, pending)
                step, pending = step + 1, True
                self.stats.steps = step
                iterations.update(1)
                if step % self.period != 0 and step < self.max_steps:
                    continue
                self._guard(lambda: self._step_op(step, True, False))
                pending = False
                sampling = self.sampling and step % self.period == 0
                energies = (self._energies(self.position, "the stop window") if sampling
                            else torch.zeros(0, dtype=torch.float64, device=self.position.device))
                elapsed = time.time() - start
                # Rank 0's clock, summed in with the energies: every rank's callback gets the
                # same point.
                clock = torch.tensor([elapsed if self.rank == 0 else 0.0], device=energies.device)
                shared, timed_out = self._all_reduce(torch.cat([energies, clock]),
                                                     elapsed > self.timeout, "the SB run")
                energies, seconds = shared[:-1], float(shared[-1])
                running = True
                if sampling:
                    window.sample(self.position, energies.to(self.position.dtype))
                    if self.early_stopping:
                        running = window.must_continue()
                    if self.callback is not None:
                        timed_out = self._report(step, seconds, energies) or timed_out
                if not running or step >= self.max_steps or timed_out:
                    break
        finally:
            iterations.close()

    def _report(self, step: int, seconds: float, energies: torch.Tensor) -> bool:
        """Gives every rank's callback this sampling point (the same on every rank); True when
        rank 0's callback asked to stop. A callback's error ends every rank, like an op's."""
        assert self.callback is not None and self.window is not None
        callback = self.callback
        best, mean = self.objective.summary(energies)[:2].tolist()
        point = HistoryPoint(step=step, seconds=seconds, best=best, mean=mean,
                             frozen=int(torch.count_nonzero(self.window.bifurcated)))
        stop = [False]

        def work():
            stop[0] = bool(callback(point))

        self._guard(work)
        _, stopped = self._all_reduce(energies.new_zeros(0), stop[0],
                                      "the callback")
        return stopped

    def _result(self) -> RowResult:
        spins = sample_spins(self.position)
        if self.early_stopping:
            if not bool(self.window.bifurcated.any()) and self.rank == 0:  # one warning
                warnings.warn(ConvergenceWarning(), stacklevel=4)
            spins = self.window.final(spins)
        partial = self._energies(spins, "the final evaluation")
        energies, _ = self._all_reduce(partial, False, "the final evaluation")
        return RowResult(self.spins_gathered.clone(), energies, self.layout)


class _Window:
    """The stop window of simulated-bifurcation 2.0.0 (reference.sb_sample) on energies
    summed over the ranks; every rank holds the same one, and its rows of the frozen spins."""

    def __init__(self, rows: int, agents: int, threshold: int, dtype, device) -> None:
        self.threshold = threshold
        self.energies = torch.full((agents,), INFINITY, dtype=dtype, device=device)
        self.stability = torch.zeros(agents, dtype=torch.int16, device=device)
        self.bifurcated = torch.zeros(agents, dtype=torch.bool, device=device)
        self.frozen = torch.zeros((rows, agents), dtype=torch.int8, device=device)

    def sample(self, position: torch.Tensor, energies: torch.Tensor) -> None:
        update_stop_window(energies, position, self.energies, self.stability, self.bifurcated,
                           self.frozen, self.threshold)

    def must_continue(self) -> bool:
        return bool(torch.any(self.stability < self.threshold - 1))

    def final(self, spins: torch.Tensor) -> torch.Tensor:
        return torch.where(self.bifurcated, self.frozen.to(spins.dtype), spins)
