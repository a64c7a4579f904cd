"""build_model, minimize, maximize: the functional API of simulated-bifurcation 2.0.0."""

from typing import Optional, Tuple, Union

import torch

from . import _memory
from ._options import BackendChoice, Callback, GroupChoice, Mode, SolverOptions
from .core.batch import PolynomialBatch, is_batch
from .core.polynomial import DomainLike, QuadraticPolynomial


def build_model(*polynomial_data, dtype: Optional[torch.dtype] = None,
                device: Optional[Union[str, torch.device]] = None
                ) -> Union[QuadraticPolynomial, PolynomialBatch]:
    """Instantiate a QuadraticPolynomial `x^T Q x + l^T x + c`.

    `polynomial_data` is a sympy.Poly, or tensors/arrays/numbers in any order: a 2-D
    square tensor (quadratic; dense or sparse), a 1-D tensor (linear), a 0-D tensor or
    number (constant). dtype is float32 (default) or float64.

    A batch of problems (solved together in one run, docs/batched.md) gives a
    PolynomialBatch: tensors Q (B, n, n)[, l (B, n)][, c (B,)], or one list whose items are
    QuadraticPolynomials, sympy Polys, quadratic tensors, sparse matrices or tuples of one
    problem's data. device: where the coefficients live (default CPU).

    >>> import torch, sb_native as sb
    >>> model = sb.build_model(torch.tensor([[1.0, -2.0], [0.0, 1.0]]), torch.tensor([1.0, 0.0]),
    ...                        3.0)
    >>> model.dimension, float(model(torch.tensor([1.0, 1.0])))
    (2, 4.0)
    >>> type(sb.build_model(torch.zeros(3, 2, 2))).__name__  # three problems of 2 variables
    'PolynomialBatch'
    """
    if is_batch(polynomial_data):
        return PolynomialBatch.build(polynomial_data, dtype=dtype, device=device)
    return QuadraticPolynomial(*polynomial_data, dtype=dtype, device=device)


def _checked_model(polynomial_data: tuple, dtype, device
                   ) -> Union[QuadraticPolynomial, PolynomialBatch]:
    """build_model for a solve, with the dense quadratic build_model makes itself checked
    first (a MemoryError naming the sizes, sb_native/_memory.py); the model's _optimize
    checks the dense Ising reduction and the state."""
    _memory.check_polynomial_data(polynomial_data, dtype, device)
    return build_model(*polynomial_data, dtype=dtype, device=device)


def minimize(*polynomial_data, domain: DomainLike, dtype: Optional[torch.dtype] = None,
             device: Optional[Union[str, torch.device]] = None, agents: int = 128,
             max_steps: Optional[int] = 10_000, best_only: bool = True,
             mode: Mode = "ballistic", heated: bool = False, verbose: bool = True,
             early_stopping: bool = True, sampling_period: int = 50,
             convergence_threshold: int = 50, timeout: Optional[float] = None,
             backend: BackendChoice = "auto",
             seed: Optional[int] = None,
             process_group: GroupChoice = None,
             callback: Optional[Callback] = None,
             polish: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Minimize a quadratic polynomial over `domain` with Simulated Bifurcation.

    domain: "spin", "binary", "intN" (N-bit non-negative integers) or a list of these,
    one per variable. mode: "ballistic" (bSB) or "discrete" (dSB); heated adds the
    thermal term (HbSB/HdSB). Stopping: max_steps, timeout (seconds) and early
    stopping (every sampling_period steps, an agent whose energy stayed the same for
    convergence_threshold samplings is frozen; all frozen stops the run); at least one.
    backend: "auto" (native when available), "native" or "torch". seed: private
    generator seed (None uses the global RNG, like simulated-bifurcation).
    process_group: a torch.distributed process group (True: the default one) whose ranks
    share out the agents; every rank calls with the same arguments and gets the same
    result, equal to one process's for the same seed (docs/distributed.md).

    Returns (vector, value) for the best agent, or all agents' (agents, variables)
    vectors and (agents,) values with best_only=False.

    A batch of problems (see build_model) runs in one call: (B, variables) vectors and (B,)
    values, or (B, agents, variables) and (B, agents); problem b gets the result of its own
    call with seed + b (docs/batched.md).

    polynomial_data, dtype, device: as build_model. agents: the number of oscillator
    vectors run in parallel. best_only: return the best agent only. verbose: progress bar.
    callback: receives a HistoryPoint every sampling_period steps and stops the run by
    returning True (sb_native.History records them).

    >>> import torch, sb_native as sb
    >>> Q = torch.tensor([[-1.0, 2.0], [0.0, -2.0]])  # x^T Q x over x in {0, 1}^2
    >>> vector, value = sb.minimize(Q, domain="binary", agents=8, max_steps=200, seed=0,
    ...                             verbose=False, early_stopping=False)
    >>> vector.tolist(), float(value)
    ([0.0, 1.0], -2.0)
    >>> vectors, values = sb.minimize(Q, domain="binary", agents=8, max_steps=200, seed=0,
    ...                               verbose=False, early_stopping=False, best_only=False)
    >>> tuple(vectors.shape), tuple(values.shape)
    ((8, 2), (8,))
    >>> x, value = sb.minimize(torch.tensor([[1.0]]), torch.tensor([-6.0]), 9.0, domain="int2",
    ...                        agents=8, max_steps=200, seed=0, verbose=False,
    ...                        early_stopping=False)  # (x - 3)^2 over x in 0..3
    >>> x.tolist(), float(value)
    ([3.0], 0.0)
    """
    model = _checked_model(polynomial_data, dtype, device)
    return model._optimize("minimize", domain, SolverOptions.of(locals()))


def maximize(*polynomial_data, domain: DomainLike, dtype: Optional[torch.dtype] = None,
             device: Optional[Union[str, torch.device]] = None, agents: int = 128,
             max_steps: Optional[int] = 10_000, best_only: bool = True,
             mode: Mode = "ballistic", heated: bool = False, verbose: bool = True,
             early_stopping: bool = True, sampling_period: int = 50,
             convergence_threshold: int = 50, timeout: Optional[float] = None,
             backend: BackendChoice = "auto",
             seed: Optional[int] = None,
             process_group: GroupChoice = None,
             callback: Optional[Callback] = None,
             polish: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Maximize a quadratic polynomial over `domain`; same arguments as minimize.

    >>> import torch, sb_native as sb
    >>> Q, l = torch.tensor([[0.0, -3.0], [0.0, 0.0]]), torch.tensor([1.0, 2.0])
    >>> vector, value = sb.maximize(Q, l, domain="binary", agents=8, max_steps=200, seed=0,
    ...                             verbose=False, early_stopping=False)
    >>> vector.tolist(), float(value)  # x0 + 2 x1 - 3 x0 x1 is largest at (0, 1)
    ([0.0, 1.0], 2.0)
    """
    model = _checked_model(polynomial_data, dtype, device)
    return model._optimize("maximize", domain, SolverOptions.of(locals()))
