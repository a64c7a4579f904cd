"""A dimod sampler on Simulated Bifurcation: `sb_native.dimod.SimulatedBifurcationSampler`.

Needs the optional extra: `pip install sb_native[dimod]`. `import sb_native` never
imports this module, so the package works without dimod.

    from sb_native.dimod import SimulatedBifurcationSampler
    sampleset = SimulatedBifurcationSampler().sample_ising({}, {(0, 1): 1}, agents=16, seed=0)
    samplesets = SimulatedBifurcationSampler().sample_multiple([bqm1, bqm2], seed=0)
"""

import time
from dataclasses import replace
from typing import List, Optional, Sequence

import numpy as np
import torch

try:
    import dimod
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("sb_native.dimod needs dimod: pip install 'sb_native[dimod]'") from err

from . import _ops, _sparse
from ._options import BackendChoice, Callback, Mode, SolverOptions
from .core.batch import PolynomialBatch
from .core.polynomial import QuadraticPolynomial
from .engine import prefer_sparse
from .engine.history import BatchHistoryPoint

__all__ = ["SimulatedBifurcationSampler"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _every_bqm(callback: Callback, bqms: Sequence["dimod.BinaryQuadraticModel"],
               solved: List[int]) -> Callback:
    """callback with its points widened from the solved BQMs to every BQM: one with no
    variables is left out of the batch, and its only energy is its offset."""
    rows = {b: row for row, b in enumerate(solved)}

    def widened(point: BatchHistoryPoint):
        def column(values, empty):
            return tuple(values[rows[b]] if b in rows else empty(b) for b in range(len(bqms)))

        return callback(BatchHistoryPoint(
            step=point.step, seconds=point.seconds,
            best=column(point.best, lambda b: float(bqms[b].offset)),
            mean=column(point.mean, lambda b: float(bqms[b].offset)),
            frozen=column(point.frozen, lambda b: 0)))

    return widened


class SimulatedBifurcationSampler(dimod.Sampler):
    """Simulated Bifurcation as a dimod Sampler: `sample`, `sample_ising`, `sample_qubo`.

    Every agent gives one sample (num_occurrences 1), or only the lowest-energy one with
    best_only=True. Energies are computed by dimod from the given model, so they are
    exact whatever the solver's dtype. Keyword arguments are those of sb_native.minimize:
    agents, max_steps, mode, heated, timeout, seed, early_stopping, sampling_period,
    convergence_threshold, backend, plus best_only and dtype ("float32" or "float64").

    >>> from sb_native.dimod import SimulatedBifurcationSampler
    >>> sampler = SimulatedBifurcationSampler()
    >>> sampleset = sampler.sample_qubo({(0, 0): -1.0, (1, 1): -2.0, (0, 1): 2.0}, agents=8,
    ...                                 max_steps=200, seed=0, early_stopping=False,
    ...                                 best_only=True)
    >>> {v: int(x) for v, x in sampleset.first.sample.items()}, float(sampleset.first.energy)
    ({0: 0, 1: 1}, -2.0)
    """

    parameters = {
        "agents": [], "max_steps": [], "mode": ["modes"], "heated": [], "timeout": [],
        "seed": [], "best_only": [], "early_stopping": [], "sampling_period": [],
        "convergence_threshold": [], "backend": ["backends"], "dtype": ["dtypes"],
        "time_limit": [], "polish": [], "callback": [],
    }

    properties = {
        "modes": ("ballistic", "discrete"),
        "backends": ("auto", "native", "torch"),
        "dtypes": tuple(_DTYPES),
        "backend_info": _ops.backend_info(),
    }

    def sample(self, bqm: "dimod.BinaryQuadraticModel", *, agents: int = 128,
               max_steps: Optional[int] = 10_000, mode: Mode = "ballistic",
               heated: bool = False, timeout: Optional[float] = None,
               seed: Optional[int] = None, best_only: bool = False,
               early_stopping: bool = True, sampling_period: int = 50,
               convergence_threshold: int = 50, backend: BackendChoice = "auto",
               dtype: str = "float32", time_limit: Optional[float] = None,
               polish: bool = False,
               callback: Optional[Callback] = None) -> "dimod.SampleSet":
        """Minimize the energy of `bqm`; returns a SampleSet in the bqm's vartype.

        bqm: a dimod.BinaryQuadraticModel (SPIN or BINARY); the keywords are the class's.
        The SampleSet's info holds the backend used and solve_time_s. polish: every agent's
        spins polished by a greedy single-flip descent. callback: receives a
        sb_native.HistoryPoint of the agents' energies every sampling_period steps (one per
        run with time_limit), as minimize's does; returning True stops.

        time_limit: the best sample within that many seconds (sb_native.solve_within: runs
        seeded from seed (0 when None), each polished by local search): one
        sample; info adds found_s, runs, steps_per_run and time_limit. agents, max_steps (the
        most steps of a run), mode and heated override the problem class's settings where
        they differ from their defaults; timeout does not go with it.

        >>> import dimod
        >>> from sb_native.dimod import SimulatedBifurcationSampler
        >>> bqm = dimod.BinaryQuadraticModel({"a": 1.0}, {("a", "b"): -2.0}, 0.0, "SPIN")
        >>> sampleset = SimulatedBifurcationSampler().sample(bqm, agents=8, max_steps=200,
        ...                                                  seed=0, early_stopping=False)
        >>> len(sampleset), sorted(sampleset.info)
        (8, ['backend', 'solve_time_s'])
        >>> best = sampleset.first
        >>> {v: int(s) for v, s in best.sample.items()}, float(best.energy)
        ({'a': -1, 'b': -1}, -3.0)
        """
        self._check(bqm, "bqm", dtype)
        variables = list(bqm.variables)
        if not variables:
            return dimod.SampleSet.from_samples([], bqm.vartype, energy=[])
        polynomial = self._spin_polynomial(bqm, variables, _DTYPES[dtype])
        if time_limit is not None:
            return self._sample_within(bqm, variables, polynomial, time_limit, dict(
                agents=agents, max_steps=max_steps, mode=mode, heated=heated), timeout=timeout,
                seed=seed, backend=backend, callback=callback)
        start = time.perf_counter()
        spins, _ = polynomial.minimize(
            domain="spin", agents=agents, max_steps=max_steps, best_only=False, mode=mode,
            heated=heated, verbose=False, early_stopping=early_stopping,
            sampling_period=sampling_period, convergence_threshold=convergence_threshold,
            timeout=timeout, backend=backend, seed=seed, polish=polish, callback=callback)
        elapsed = time.perf_counter() - start
        return self._sampleset(bqm, variables, spins, best_only, info={
            "backend": _ops.resolve_backend(backend, polynomial.device),
            "solve_time_s": elapsed})

    def _sample_within(self, bqm, variables, polynomial: QuadraticPolynomial,
                       time_limit: float, chosen: dict, *, timeout, seed, backend,
                       callback) -> "dimod.SampleSet":
        """sample(time_limit=...): solve_within's best, one sample."""
        from .timed import settings_for, solve_within

        if timeout is not None:
            raise ValueError("timeout does not go with time_limit (which runs until the limit, "
                             "restarting with fresh seeds)")
        defaults = dict(agents=128, max_steps=10_000, mode="ballistic", heated=False)
        given = {name: value for name, value in chosen.items() if value != defaults[name]}
        if given.get("max_steps", 0) is None:
            raise ValueError("max_steps cannot be None with time_limit (a run needs a step "
                             "count to ramp over)")
        settings = replace(settings_for(polynomial, domain="spin"), **given)
        result = solve_within(polynomial, time_limit, domain="spin", settings=settings,
                              seed=0 if seed is None else seed, backend=backend, verbose=False,
                              callback=callback)
        return self._sampleset(bqm, variables, result.vector.reshape(1, -1), False, info={
            "backend": _ops.resolve_backend(backend, polynomial.device),
            "solve_time_s": result.seconds, "found_s": result.found_at, "runs": result.runs,
            "steps_per_run": result.steps, "time_limit": time_limit})

    def sample_multiple(self, bqms: Sequence["dimod.BinaryQuadraticModel"], *,
                        agents: int = 128, max_steps: Optional[int] = 10_000,
                        mode: Mode = "ballistic", heated: bool = False,
                        timeout: Optional[float] = None, seed: Optional[int] = None,
                        best_only: bool = False, early_stopping: bool = True,
                        sampling_period: int = 50, convergence_threshold: int = 50,
                        backend: BackendChoice = "auto", dtype: str = "float32",
                        polish: bool = False, callback: Optional[Callback] = None
                        ) -> List["dimod.SampleSet"]:
        """Several BQMs in one batched SB run (docs/batched.md): one SampleSet per BQM, in
        order; BQM b's is the one `sample(bqm, seed=seed + b)` returns. Same keywords as
        sample; bqms: a sequence of dimod.BinaryQuadraticModel (of any sizes and vartypes).
        callback: receives a sb_native.BatchHistoryPoint with one entry per BQM (a BQM with
        no variables: its offset, and no frozen agents).

        >>> import dimod
        >>> from sb_native.dimod import SimulatedBifurcationSampler
        >>> bqms = [dimod.BinaryQuadraticModel({"a": 1.0}, {("a", "b"): -2.0}, 0.0, "SPIN"),
        ...         dimod.BinaryQuadraticModel.from_qubo({(0, 0): -1.0, (1, 1): -2.0,
        ...                                               (0, 1): 2.0})]
        >>> samplesets = SimulatedBifurcationSampler().sample_multiple(
        ...     bqms, agents=8, max_steps=200, seed=0, early_stopping=False)
        >>> [float(sampleset.first.energy) for sampleset in samplesets]
        [-3.0, -2.0]
        """
        for b, bqm in enumerate(bqms):
            self._check(bqm, f"bqms[{b}]", dtype)
        variables = [list(bqm.variables) for bqm in bqms]
        solved = [b for b, names in enumerate(variables) if names]
        samplesets = [dimod.SampleSet.from_samples([], bqm.vartype, energy=[]) for bqm in bqms]
        if not solved:
            return samplesets
        batch = PolynomialBatch([self._spin_polynomial(bqms[b], variables[b], _DTYPES[dtype])
                                 for b in solved])
        options = SolverOptions(
            agents=agents, max_steps=max_steps, best_only=False, mode=mode, heated=heated,
            verbose=False, early_stopping=early_stopping, sampling_period=sampling_period,
            convergence_threshold=convergence_threshold, timeout=timeout, backend=backend,
            seed=seed, polish=polish,
            callback=None if callback is None else _every_bqm(callback, bqms, solved))
        start = time.perf_counter()
        # A BQM with no variables takes no place in the batch but keeps its seed offset.
        spins, _ = batch._optimize("minimize", "spin", options, seeds=None if seed is None
                                   else [seed + b for b in solved])
        elapsed = time.perf_counter() - start
        info = {"backend": _ops.resolve_backend(backend, batch.device), "solve_time_s": elapsed,
                "batch_size": len(solved)}
        for row, b in enumerate(solved):
            own = spins[row][:, :len(variables[b])]
            samplesets[b] = self._sampleset(bqms[b], variables[b], own, best_only,
                                            info=dict(info, batch_index=b))
        return samplesets

    @staticmethod
    def _check(bqm, name: str, dtype: str) -> None:
        if not isinstance(bqm, dimod.BinaryQuadraticModel):
            raise TypeError(f"{name} must be a dimod.BinaryQuadraticModel, got "
                            f"{type(bqm).__name__}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {tuple(_DTYPES)}, got {dtype!r}")

    @staticmethod
    def _sampleset(bqm, variables, spins, best_only: bool, info: dict) -> "dimod.SampleSet":
        samples = spins.cpu().numpy().astype(np.int8)
        if bqm.vartype is dimod.BINARY:
            samples = (samples + 1) // 2
        sampleset = dimod.SampleSet.from_samples_bqm((samples, variables), bqm, info=info)
        return sampleset.truncate(1) if best_only else sampleset

    @staticmethod
    def _spin_polynomial(bqm, variables, dtype) -> QuadraticPolynomial:
        """sum h_i s_i + sum J_ij s_i s_j + offset as s^T Q s + h^T s + offset, Q upper."""
        linear, (rows, cols, values), offset = bqm.spin.to_numpy_vectors(variables)
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        n = len(variables)
        low, high = np.minimum(rows, cols), np.maximum(rows, cols)
        quadratic = _sparse.coo(torch.from_numpy(np.vstack([low, high])),
                                torch.from_numpy(np.asarray(values, dtype=np.float64)), (n, n))
        # Same rule as MaxCut: a sparse quadratic takes the CSR kernel, a dense one GEMM.
        if not prefer_sparse(quadratic._nnz() * 2, n):
            quadratic = quadratic.to_dense()
        linear = torch.from_numpy(np.asarray(linear, dtype=np.float64))
        return QuadraticPolynomial(quadratic, linear, float(offset), dtype=dtype)
