"""PolynomialBatch: many quadratic polynomials solved in one SB run (engine/batched.py).

Problem b of a batch gets the result its own call gets with `seed + b` (or, with no seed,
the next draws of the global RNG, as a loop of one-problem calls would make): the same
spins, bit for bit, on both backends for bSB and for dSB on integer weights; dSB on other
weights within rounding (docs/batched.md).
"""

import numbers
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import _checks, _memory, _ops
from .._env import current_env
from .._options import BackendChoice, Callback, GroupChoice, Mode, SolverOptions
from ..engine.batched import BatchRunner, CouplingBatch, batch_couplings
from ..engine.history import Objective
from ..engine.polish import Polisher
from .batch_ising import dense_isings, dense_values
from .polynomial import DomainLike, QuadraticPolynomial


def _problem_error(index: int, err: Exception) -> Exception:
    """err again, its message prefixed with the problem's index."""
    return type(err)(f"problem {index}: {err}")


def _as_tensor(data):
    if isinstance(data, np.ndarray):
        return torch.from_numpy(data)
    if isinstance(data, numbers.Real) and not isinstance(data, bool):
        return torch.tensor(float(data))
    return data


def is_batch(polynomial_data: tuple) -> bool:
    """True for the batch forms: a list or tuple of problems, or a 3-D quadratic tensor."""
    if len(polynomial_data) == 1 and isinstance(polynomial_data[0], (list, tuple)):
        return True
    return any(isinstance(d, (torch.Tensor, np.ndarray)) and d.ndim == 3
               for d in polynomial_data)


def _batch_tensors(polynomial_data: tuple) -> dict:
    """(Q (B, n, n), l (B, n), c (B,)) in any order -> {3: Q, 2: l, 1: c}, the ones given."""
    by_degree = {}
    for data in map(_as_tensor, polynomial_data):
        if not isinstance(data, torch.Tensor):
            raise ValueError(
                f"Unsupported coefficient tensor type for a batch: {type(data)}. Expected "
                "torch.Tensor or numpy.ndarray of shapes (B, n, n), (B, n) and (B,).")
        if data.ndim not in (1, 2, 3):
            raise ValueError(
                "A batch takes the quadratic coefficients as (B, n, n), the linear ones as "
                f"(B, n) and the constants as (B,); got a tensor of {data.ndim} dimensions.")
        if data.ndim in by_degree:
            raise ValueError(
                "Providing two tensors for the same degree is ambiguous. "
                f"Got at least two batch tensors of {data.ndim} dimensions.")
        by_degree[data.ndim] = data
    count = by_degree[3].shape[0]
    for ndim, name in ((2, "linear"), (1, "constant")):
        if ndim in by_degree and by_degree[ndim].shape[0] != count:
            raise ValueError(
                f"The {name} coefficients have {by_degree[ndim].shape[0]} problems but the "
                f"quadratic coefficients have {count}.")
    return by_degree


def _checked_polynomials(by_degree: dict, dtype, device) -> Optional[List[QuadraticPolynomial]]:
    """The problems of batch tensors, converted and checked once for the whole batch, or
    None when one of them would fail a check (the per-problem construction then raises,
    naming the problem)."""
    dtype, device = _checks.safe_get_dtype(dtype), _checks.safe_get_device(device)
    Q = by_degree[3]
    count, n = Q.shape[0], Q.shape[1]
    shapes = {3: (count, n, n), 2: (count, n), 1: (count,)}
    if n == 0 or any(t.shape != shapes[k] or t.dtype == torch.bool or t.is_complex()
                     or t.layout != torch.strided or t.device.type == "meta"
                     for k, t in by_degree.items()):
        return None
    converted = {k: t.to(dtype=dtype, device=device) for k, t in by_degree.items()}
    if not all(bool(torch.all(torch.isfinite(t))) for t in converted.values()):
        return None
    linear = converted.get(2, torch.zeros((count, n), dtype=dtype, device=device))
    bias = converted.get(1, torch.zeros(count, dtype=dtype, device=device))
    return [QuadraticPolynomial._checked(converted[3][b], linear[b], bias[b], dtype, device)
            for b in range(count)]


class PolynomialBatch:
    """A batch of QuadraticPolynomials with minimize/maximize solving all in one SB run.

    Problems may differ in size: the run pads them (engine/batched.py) and results are
    padded with zeros to the largest size, shapes (B, n) or (B, agents, n). polynomials: the
    problems, all of one dtype and device (sb_native.build_model builds a batch from
    tensors or a list).

    >>> import torch, sb_native as sb
    >>> batch = sb.build_model([torch.tensor([[-1.0, 2.0], [0.0, -2.0]]),
    ...                         torch.tensor([[-3.0]])])  # sizes 2 and 1
    >>> len(batch.polynomials), batch.dimension
    (2, 2)
    """

    def __init__(self, polynomials: Sequence[QuadraticPolynomial]) -> None:
        if len(polynomials) == 0:
            raise ValueError("A batch needs at least one problem, got an empty batch.")
        self.polynomials = list(polynomials)
        first = self.polynomials[0]
        for b, p in enumerate(self.polynomials):
            if p.dtype != first.dtype or p.device != first.device:
                raise ValueError(
                    f"problem {b}: every problem of a batch must have the dtype and device of "
                    f"problem 0 ({first.dtype}, {first.device}), got {p.dtype}, {p.device}.")

    @classmethod
    def build(cls, polynomial_data: tuple, dtype: Optional[torch.dtype] = None,
              device: Optional[Union[str, torch.device]] = None) -> "PolynomialBatch":
        """From batch tensors (Q (B, n, n)[, l (B, n)][, c (B,)]) or from one list whose
        items are QuadraticPolynomials, sympy Polys, quadratic tensors or sparse matrices,
        or tuples of one problem's data."""
        if len(polynomial_data) == 1 and isinstance(polynomial_data[0], (list, tuple)):
            problems = [p if isinstance(p, tuple) else (p,) for p in polynomial_data[0]]
        else:
            by_degree = _batch_tensors(polynomial_data)
            checked = _checked_polynomials(by_degree, dtype, device)
            if checked is not None:
                return cls(checked)
            problems = [tuple(by_degree[ndim][b] for ndim in (3, 2, 1) if ndim in by_degree)
                        for b in range(by_degree[3].shape[0])]
        polynomials = []
        for b, data in enumerate(problems):
            try:
                if len(data) == 1 and isinstance(data[0], QuadraticPolynomial):
                    polynomial = data[0]
                    if dtype is not None or device is not None:
                        polynomial = QuadraticPolynomial(
                            polynomial.quadratic, polynomial.linear, polynomial.bias,
                            dtype=dtype or polynomial.dtype, device=device or polynomial.device)
                else:
                    polynomial = QuadraticPolynomial(*data, dtype=dtype, device=device)
            except (ValueError, TypeError) as err:
                raise _problem_error(b, err) from err
            polynomials.append(polynomial)
        return cls(polynomials)

    def __len__(self) -> int:
        return len(self.polynomials)

    def __getitem__(self, index: int) -> QuadraticPolynomial:
        return self.polynomials[index]

    @property
    def dtype(self) -> torch.dtype:
        return self.polynomials[0].dtype

    @property
    def device(self) -> torch.device:
        return self.polynomials[0].device

    @property
    def dimension(self) -> int:
        """The largest number of variables of the batch (results are padded to it)."""
        return max(p.dimension for p in self.polynomials)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """Values of each problem at values[b] (shape (B, ..., n), padded entries ignored)."""
        if values.shape[0] != len(self):
            raise ValueError(
                f"Expected values for {len(self)} problems along the first axis, got "
                f"{values.shape[0]}.")
        return torch.stack([p(values[b][..., :p.dimension])
                            for b, p in enumerate(self.polynomials)])

    def _optimize(self, sense: str, domain: DomainLike, options: SolverOptions,
                  seeds: Optional[Sequence[Optional[int]]] = None
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
        """seeds: each problem's seed (default: seed + b, or None for every problem with no
        seed)."""
        options.validate()
        if options.process_group not in (None, False):
            raise ValueError(
                "process_group: a batch of problems runs in one process; spread the agents "
                "of one problem over ranks, or give each rank its own batch.")
        if seeds is None:
            check_seed_range(options.seed, len(self))
            seeds = ([None] * len(self) if options.seed is None
                     else [options.seed + b for b in range(len(self))])
        # Every problem's domain before any run: a list of domains fits one size only, and
        # the values are decoded problem by problem after the run.
        for b, polynomial in enumerate(self.polynomials):
            try:
                polynomial._check_domain(domain)
            except (ValueError, TypeError) as err:
                raise _problem_error(b, err) from err
        # What the solve allocates by size, before any of it (sb_native/_memory.py).
        _memory.check_solve(self, domain, options.agents, options.max_steps, options.polish)
        dense = dense_isings(self.polynomials, domain, sense)
        if dense is not None:
            couplings = dense.couplings
        else:
            isings = []
            for b, polynomial in enumerate(self.polynomials):
                try:
                    ising = polynomial.to_ising(domain)
                except (ValueError, TypeError) as err:
                    raise _problem_error(b, err) from err
                isings.append(-ising if sense == "maximize" else ising)
            couplings = [ising._coupling() for ising in isings]
        backend = _ops.resolve_backend(options.backend, self.device)
        env = current_env()  # read once for the whole run (sb_native/_env.py: threads)
        batch = batch_couplings(couplings, backend, options.mode == "discrete",
                                env["time_step"])
        runner = BatchRunner.from_options(options, backend, self.device)
        if options.callback is not None:
            runner.objectives = self._objectives(batch, domain, sense)
        spins = runner.run_batch(batch, seeds, env)
        if options.polish:  # each problem's agents, as its own call polishes them
            for b, coupling in enumerate(couplings):
                spins[b, :coupling.n], _ = Polisher(coupling, backend)(spins[b, :coupling.n])
        if dense is not None:
            # (B, variables, agents), or one (variables, agents) tensor per problem below
            values: Union[torch.Tensor, List[torch.Tensor]] = dense_values(dense, spins,
                                                                           self.dtype)
        else:
            values = self._values(domain, isings, spins)
        return self._results(sense, values, options.best_only)

    def _objectives(self, batch: CouplingBatch, domain: DomainLike,
                    sense: str) -> List[Objective]:
        """Each problem's value of the runner's energies, as its own call's callback has it
        (QuadraticPolynomial._objective): read off at all spins 1, where the runner's energy
        is the sum of the problem's coupling (of -ising when maximizing)."""
        raw = batch.field_matrix.sum(dim=(1, 2), dtype=torch.float64).tolist()
        sign = 1.0 if sense == "minimize" else -1.0  # the couplings are -ising's to maximize
        return [polynomial._objective_at_ones(polynomial._encoded(domain)[2].shape[-1],
                                              sign * coupling_sum, domain, sense)
                for polynomial, coupling_sum in zip(self.polynomials, raw)]

    def _values(self, domain, isings, spins) -> List[torch.Tensor]:
        """Each problem's domain values (variables, agents) from its spins, as its own call
        makes them."""
        values = []
        for b, (polynomial, ising) in enumerate(zip(self.polynomials, isings)):
            own = spins[b, :ising.dimension + ising.linear_term]
            own = own[-1] * own[:-1] if ising.linear_term else own
            values.append(polynomial.convert_spins(own, domain).to(self.dtype))
        return values

    def _results(self, sense, domain_values, best_only):
        """Vectors and values of every problem's agents (its own call's evaluation), or of
        each problem's best agent."""
        n = self.dimension
        agents = domain_values[0].shape[1]
        vectors = torch.zeros((len(self), agents, n), dtype=self.dtype, device=self.device)
        values = torch.zeros((len(self), agents), dtype=self.dtype, device=self.device)
        for b, polynomial in enumerate(self.polynomials):
            polynomial.sb_result = domain_values[b]
            result = domain_values[b].t()
            vectors[b, :, :polynomial.dimension] = result
            values[b] = polynomial(result)
        if not best_only:
            return vectors, values
        best = torch.argmin(values, dim=1) if sense == "minimize" else torch.argmax(values, dim=1)
        rows = torch.arange(len(self), device=self.device)
        return vectors[rows, best], values[rows, best]

    def minimize(self, *, domain: DomainLike, agents: int = 128,
                 max_steps: Optional[int] = 10_000, best_only: bool = True,
                 mode: Mode = "ballistic", heated: bool = False, verbose: bool = True,
                 early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto",
                 seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None,
                 polish: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Minimize every problem over `domain` in one SB run.

        Returns (B, n) vectors and (B,) values, or (B, agents, n) and (B, agents) with
        best_only=False. Problem b uses seed + b. See sb_native.minimize for the arguments.

        >>> import torch, sb_native as sb
        >>> Q = torch.tensor([[[-1.0, 2.0], [0.0, -2.0]], [[-2.0, 2.0], [0.0, -1.0]]])
        >>> vectors, values = sb.build_model(Q).minimize(
        ...     domain="binary", agents=8, max_steps=200, seed=0, verbose=False,
        ...     early_stopping=False)
        >>> vectors.tolist(), values.tolist()
        ([[0.0, 1.0], [1.0, 0.0]], [-2.0, -2.0])
        """
        return self._optimize("minimize", domain, SolverOptions.of(locals()))

    def maximize(self, *, domain: DomainLike, agents: int = 128,
                 max_steps: Optional[int] = 10_000, best_only: bool = True,
                 mode: Mode = "ballistic", heated: bool = False, verbose: bool = True,
                 early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto",
                 seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None,
                 polish: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Maximize every problem over `domain`; same arguments and shapes as minimize.

        >>> import torch, sb_native as sb
        >>> batch = sb.build_model(torch.tensor([[[0.0, 1.0], [1.0, 0.0]],
        ...                                      [[0.0, -1.0], [-1.0, 0.0]]]))
        >>> vectors, values = batch.maximize(domain="spin", agents=8, max_steps=200, seed=0,
        ...                                  verbose=False, early_stopping=False)
        >>> tuple(vectors.shape), values.tolist()
        ((2, 2), [2.0, 2.0])
        """
        return self._optimize("maximize", domain, SolverOptions.of(locals()))


def check_seed_range(seed: Optional[int], count: int) -> None:
    """seed + b must stay a valid torch seed for every problem b."""
    if seed is not None and _checks._is_int(seed) and seed + count - 1 >= 2 ** 64:
        raise ValueError(
            f"seed: problem b of a batch uses seed + b, and seed + {count - 1} exceeds the "
            "largest torch seed 2**64 - 1.")
