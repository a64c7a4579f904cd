"""QuadraticPolynomial: x^T Q x + l^T x + c, its Ising reduction, and its optimization.

Same construction rules, shapes, errors and numerics as simulated-bifurcation 2.0.0,
plus: `backend` and `seed` keywords on minimize/maximize, and sparse quadratic
coefficients (torch sparse COO/CSR or scipy.sparse), kept sparse end to end.
"""

from typing import List, Optional, Tuple, Union, overload

import numpy as np
import torch
from sympy import Poly

from .. import _checks, _memory, _sparse
from .._options import BackendChoice, Callback, GroupChoice, Mode, SolverOptions
from ..engine.history import ISING, Objective
from . import _coefficients
from .ising import Ising
from .variable import DomainLike, Variable, domain_key, encoded, parse_domain


class QuadraticPolynomial:
    """Multivariate quadratic polynomial `x^T Q x + l^T x + c`.

    Built from a sympy.Poly, or from tensors/arrays/scalars in any order (2-D: quadratic,
    1-D: linear, 0-D or number: constant); all optional but at least one must give the
    dimension. The quadratic tensor may be sparse (torch COO/CSR, scipy.sparse). dtype:
    float32 (default) or float64; device: where the coefficients live (default CPU).

    >>> import torch, sb_native as sb
    >>> polynomial = sb.QuadraticPolynomial(torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
    ...                                     torch.tensor([1.0, 0.0]))  # 2 x0 x1 + x0
    >>> polynomial.dimension, polynomial.dtype, polynomial.linear.tolist(), float(polynomial.bias)
    (2, torch.float32, [1.0, 0.0], 0.0)
    """

    # Set by the constructor (core/_coefficients.py) or _checked.
    _quadratic_coefficients: torch.Tensor
    _linear_coefficients: torch.Tensor
    _bias: torch.Tensor

    def __init__(self, *polynomial_data, dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        self._dtype = _checks.safe_get_dtype(dtype)
        self._device = _checks.safe_get_device(device)
        self.sb_result: Optional[torch.Tensor] = None
        if len(polynomial_data) == 1 and isinstance(polynomial_data[0], Poly):
            coefficients = _coefficients.from_poly(polynomial_data[0], self._dtype, self._device)
        else:
            coefficients = _coefficients.from_data(polynomial_data, self._dtype, self._device)
        (self._quadratic_coefficients, self._linear_coefficients,
         self._bias) = coefficients
        self._dimension = self._quadratic_coefficients.shape[0]

    # Construction

    @classmethod
    def _checked(cls, quadratic: torch.Tensor, linear: torch.Tensor, bias: torch.Tensor,
                 dtype: torch.dtype, device: torch.device) -> "QuadraticPolynomial":
        """A polynomial of tensors a caller has already converted to dtype and device and
        checked as _coefficients.from_data does (a batch checks all its problems at once)."""
        polynomial = cls.__new__(cls)
        polynomial._dtype, polynomial._device = dtype, device
        polynomial.sb_result = None
        polynomial._quadratic_coefficients = quadratic
        polynomial._linear_coefficients = linear
        polynomial._bias = bias
        polynomial._dimension = quadratic.shape[0]
        return polynomial

    # Evaluation

    def __call__(self, value: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        """The polynomial's value at value (..., dimension): a tensor of shape value.shape[:-1]
        (a tensor, an array or nested lists; any number of leading batch dimensions).

        >>> import torch, sb_native as sb
        >>> polynomial = sb.QuadraticPolynomial(torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
        ...                                     torch.tensor([1.0, 0.0]))
        >>> float(polynomial(torch.tensor([1.0, -1.0])))
        -1.0
        >>> polynomial([[1.0, 1.0], [-1.0, -1.0]]).tolist()
        [3.0, 1.0]
        """
        if not isinstance(value, torch.Tensor):
            try:
                value = torch.tensor(value, dtype=self._dtype, device=self._device)
            except Exception as err:
                raise TypeError("Input value cannot be cast to Tensor.") from err
        if value.ndim == 0 or value.shape[-1] != self._dimension:
            got = value.shape[-1] if value.ndim else "a 0-dimensional tensor"
            raise ValueError(
                f"Size of the input along the last axis should be {self._dimension}, it is {got}."
            )
        if value.dtype != self._dtype:
            value = value.to(self._dtype)
        if value.device != self._linear_coefficients.device:  # torch's error names neither
            raise ValueError(f"value is on {value.device}, the polynomial's coefficients on "
                             f"{self._linear_coefficients.device}: move it there first.")
        Q = self._quadratic_coefficients
        if Q.layout == torch.strided:
            quadratic_term = torch.squeeze(
                torch.nn.functional.bilinear(value, value, torch.unsqueeze(Q, 0)), -1)
        else:
            flat = value.reshape(-1, self._dimension)
            quadratic_term = torch.sum(flat * (Q @ flat.t()).t(), dim=-1).reshape(value.shape[:-1])
        affine_term = value @ self._linear_coefficients + self._bias
        return quadratic_term + affine_term

    @property
    def quadratic(self) -> torch.Tensor:
        """Quadratic coefficients (2-D square tensor; sparse COO if given sparse)."""
        return self._quadratic_coefficients

    @property
    def linear(self) -> torch.Tensor:
        """Linear coefficients (1-D tensor)."""
        return self._linear_coefficients

    @property
    def bias(self) -> torch.Tensor:
        """Constant term (0-D tensor)."""
        return self._bias

    @property
    def dtype(self) -> torch.dtype:
        """The coefficients' dtype (float32 or float64)."""
        return self._dtype

    @property
    def device(self) -> torch.device:
        """The coefficients' device."""
        return self._device

    @property
    def dimension(self) -> int:
        """The number of variables."""
        return self._dimension

    # Ising reduction

    def _encoded(self, domain: DomainLike):
        """(variables, spin indicator, encoding) of domain for this polynomial's size, made
        once per (domain, size, dtype, device): a batch of problems shares them."""
        key = domain_key(domain, self._dimension, self._dtype)
        return encoded(key, self._dimension, self._dtype, self._device)

    def _check_domain(self, domain: DomainLike) -> None:
        """Raises for a domain this polynomial cannot be solved over: not a domain, or integer
        values its dtype does not hold exactly (to_ising takes them while its Ising form is
        finite)."""
        parse_domain(domain, self._dimension, self._dtype, exact=True)

    def to_ising(self, domain: DomainLike) -> Ising:
        """Equivalent Ising form (-0.5 s^T J s + h^T s) whose ground states map to optima.

        domain: as minimize's ("spin", "binary", "intN" or one per variable); an integer
        variable takes N spins. For the spin domain the energy is the polynomial less its
        constant term.

        >>> import torch, sb_native as sb
        >>> polynomial = sb.QuadraticPolynomial(torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
        ...                                     torch.tensor([1.0, 0.0]))
        >>> ising = polynomial.to_ising("spin")
        >>> s = torch.tensor([1.0, -1.0])
        >>> float(-0.5 * s @ ising.J @ s + ising.h @ s), float(polynomial(s))
        (-1.0, -1.0)
        >>> polynomial.to_ising("int2").dimension  # two spins per 2-bit integer
        4
        """
        variables, spin, weighted = self._encoded(domain)
        if self._quadratic_coefficients.layout != torch.strided:
            return self._sparse_to_ising(variables)
        symmetric = (self._quadratic_coefficients + self._quadratic_coefficients.t()) / 2
        linear = self._linear_coefficients.reshape(-1, 1)
        if weighted.ndim == 1:
            left = weighted.reshape(-1, 1) * symmetric
            J = -0.5 * (left * weighted.reshape(1, -1))
            linear_part = 0.5 * (weighted.reshape(-1, 1) * linear)
        else:
            left = weighted.t() @ symmetric
            J = -0.5 * left @ weighted
            linear_part = 0.5 * weighted.t() @ linear
        h = (linear_part - J.sum(axis=1).reshape(-1, 1) - left @ spin).reshape(-1)
        return Ising(J, h, self._dtype, self._device)

    def _sparse_to_ising(self, variables: List[Variable]) -> Ising:
        # With a sparse Q the encoding is diagonal (one bit per variable): x = a * s + b
        # with a = 1, b = 0 for spins and a = 1/2, b = 1/2 for binaries.
        if any(v.encoding_bits != 1 for v in variables):
            raise ValueError(
                "Sparse quadratic coefficients support the spin and binary domains only; "
                "use a dense tensor for integer domains."
            )
        a = torch.tensor([1.0 if v.is_spin else 0.5 for v in variables], dtype=self._dtype,
                         device=self._device)
        b = 1.0 - a
        Q = self._quadratic_coefficients
        rows, cols = Q.indices()
        vals = Q.values()
        symmetric_row_sum = (torch.zeros_like(a).index_add_(0, rows, vals * b[cols])
                             + torch.zeros_like(a).index_add_(0, cols, vals * b[rows])) / 2
        J = _sparse.coo(Q.indices(), -2.0 * vals * a[rows] * a[cols], Q.shape)
        h = a * (self._linear_coefficients + 2.0 * symmetric_row_sum)
        return Ising(J, h, self._dtype, self._device)

    @overload
    def convert_spins(self, optimized_spins: torch.Tensor, domain: DomainLike) -> torch.Tensor:
        ...

    @overload
    def convert_spins(self, optimized_spins: None, domain: DomainLike) -> None:
        ...

    def convert_spins(self, optimized_spins: Optional[torch.Tensor],
                      domain: DomainLike) -> Optional[torch.Tensor]:
        """Spins (bits, agents) back to domain values (variables, agents).

        optimized_spins: ±1 spins, one row per spin of to_ising(domain) (None gives None);
        domain: the one they were computed for.

        >>> import torch, sb_native as sb
        >>> polynomial = sb.QuadraticPolynomial(torch.zeros(2, 2))
        >>> spins = torch.tensor([[1.0, -1.0], [-1.0, -1.0]])  # 2 spins, 2 agents
        >>> polynomial.convert_spins(spins, domain="binary").tolist()
        [[1.0, 0.0], [0.0, 0.0]]
        >>> polynomial.convert_spins(torch.tensor([[1.0], [1.0], [-1.0], [1.0]]), "int2").tolist()
        [[3.0], [2.0]]
        """
        self._check_domain(domain)
        _, spin, weighted = self._encoded(domain)
        if optimized_spins is None:
            return None
        if weighted.ndim == 1:
            return 0.5 * weighted.reshape(-1, 1) * (optimized_spins + 1) - spin
        return 0.5 * weighted @ (optimized_spins + 1) - spin

    # Optimization

    def _optimize(self, sense: str, domain: DomainLike,
                  options: SolverOptions) -> Tuple[torch.Tensor, torch.Tensor]:
        options.validate()
        self._check_domain(domain)
        # What the solve allocates by size, before any of it (sb_native/_memory.py).
        _memory.check_solve(self, domain, options.agents, options.max_steps, options.polish)
        ising = self.to_ising(domain)
        objective = ISING if options.callback is None else self._objective(ising, domain, sense)
        if sense == "maximize":
            ising = -ising
        spins = ising._run(options, objective)
        self.sb_result = self.convert_spins(spins, domain).to(dtype=self._dtype,
                                                               device=self._device)
        result = self.sb_result.t()
        evaluation = self(result)
        if options.best_only:
            best = torch.argmin(evaluation) if sense == "minimize" else torch.argmax(evaluation)
            result, evaluation = result[best], evaluation[best]
        return result, evaluation

    def _objective(self, ising: Ising, domain: DomainLike, sense: str) -> Objective:
        """This polynomial's value of the runner's energies on ising (maximize: on -ising).

        The value is the Ising energy -0.5 * (runner's energy) plus a constant (the
        diagonal and the encoding's offsets), read off at all spins 1."""
        return self._objective_at_ones(ising.dimension, ising._coupling_energy_at_ones(),
                                       domain, sense)

    def _objective_at_ones(self, spins: int, raw: float, domain: DomainLike,
                           sense: str) -> Objective:
        """_objective from the Ising form's number of spins and its runner's energy raw at
        all spins 1 (of ising, not -ising, when maximizing); a batch has raw from its
        couplings (PolynomialBatch._objectives)."""
        ones = torch.ones((spins, 1), dtype=self._dtype, device=self._device)
        value = float(self(self.convert_spins(ones, domain).t())[0])
        # Maximizing runs on -ising, whose energies are the negated ones.
        scale = -0.5 if sense == "minimize" else 0.5
        return Objective(scale=scale, offset=value + 0.5 * raw,
                         maximize=sense == "maximize")

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
        """Minimize over `domain` with SB; returns (vector(s), value(s)).

        Shapes: best_only -> (variables,), (); otherwise (agents, variables), (agents,).
        See sb_native.minimize for every argument. The agents' vectors, (variables, agents),
        stay in `sb_result`.

        >>> import torch, sb_native as sb
        >>> polynomial = sb.QuadraticPolynomial(torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
        ...                                     torch.tensor([1.0, 0.0]))  # 2 s0 s1 + s0
        >>> vector, value = polynomial.minimize(domain="spin", agents=8, max_steps=200, seed=0,
        ...                                     verbose=False, early_stopping=False)
        >>> vector.tolist(), float(value)
        ([-1.0, 1.0], -3.0)
        >>> tuple(polynomial.sb_result.shape)
        (2, 8)
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
        """Maximize over `domain` with SB; same arguments and shapes as minimize.

        >>> import torch, sb_native as sb
        >>> polynomial = sb.QuadraticPolynomial(torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
        ...                                     torch.tensor([1.0, 0.0]))  # 2 x0 x1 + x0
        >>> vector, value = polynomial.maximize(domain="binary", agents=8, max_steps=200, seed=0,
        ...                                     verbose=False, early_stopping=False)
        >>> vector.tolist(), float(value)
        ([1.0, 1.0], 3.0)
        """
        return self._optimize("maximize", domain, SolverOptions.of(locals()))
