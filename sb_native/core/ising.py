"""Ising: the form every problem is reduced to before SB runs (`QuadraticPolynomial.to_ising`).

Energy: -0.5 * s^T J s + h^T s over s in {-1, 1}^n. SB itself runs on a symmetric,
zero-diagonal coupling with no field; a non-zero h is folded in as one extra spin
(block matrix [[J*, -h], [-h^T, 0]]). Same constructor, errors and methods as
simulated-bifurcation 2.0.0's `core.Ising`, plus: J may be sparse (kept sparse), and
`minimize` takes `backend` and `seed`.
"""

from typing import Optional, Union

import numpy as np
import torch

from .. import _checks, _ops
from .._options import BackendChoice, Callback, GroupChoice, Mode, SolverOptions
from ..engine import Coupling, SBRunner
from ..engine.history import ISING, Objective


class Ising:
    """Spins s in {-1, 1}^M minimising -0.5 s^T J s + h^T s (h defaults to zero).

    J: (M, M) tensor or array (dense, or torch sparse COO, kept sparse); h: (M,) or None;
    dtype: float32 (default) or float64; device: where J and h live (default CPU).

    >>> import torch, sb_native as sb
    >>> ising = sb.Ising(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1.0, 0.0]))
    >>> ising.dimension, ising.linear_term
    (2, True)
    """

    def __init__(self, J: Union[torch.Tensor, np.ndarray],
                 h: Union[torch.Tensor, np.ndarray, None] = None,
                 dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        self._dtype = _checks.safe_get_dtype(dtype)
        self._device = _checks.safe_get_device(device)
        if isinstance(J, np.ndarray):
            J = torch.from_numpy(J)
        if isinstance(h, np.ndarray):
            h = torch.from_numpy(h)
        # The peer fails on J.ndim with an AttributeError, and on meta tensors when moving them.
        for name, tensor in (("J", J), ("h", h)):
            if name == "h" and tensor is None:  # h is optional, J is not
                continue
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{name} should be a torch.Tensor or a numpy.ndarray, received "
                                f"{type(tensor).__name__}.")
            _checks.check_device_available(tensor.device, name)
        if J.ndim != 2:
            raise ValueError(f"Expected J to be 2-dimensional, but got {J.ndim} dimensions.")
        rows, cols = J.shape
        if rows != cols:
            raise ValueError(
                f"Expected J to be square, but got {rows} rows and {cols} columns.")
        self._J = J.to(dtype=self._dtype, device=self._device)
        self._dimension = rows
        if h is None:
            self._h = torch.zeros(rows, dtype=self._dtype, device=self._device)
        elif h.shape != (rows,):
            raise ValueError(
                f"Expected the shape of h to be {rows}, but got {tuple(h.shape)}.")
        else:
            self._h = h.to(dtype=self._dtype, device=self._device)
        self._has_linear_term = bool(torch.any(self._h != 0))

    @property
    def J(self) -> torch.Tensor:
        """(M, M) quadratic part (dense, or sparse COO as given)."""
        return self._J

    @property
    def h(self) -> torch.Tensor:
        """(M,) linear part."""
        return self._h

    @property
    def dimension(self) -> int:
        """The number of spins M."""
        return self._dimension

    @property
    def dtype(self) -> torch.dtype:
        """J's and h's dtype."""
        return self._dtype

    @property
    def device(self) -> torch.device:
        """J's and h's device."""
        return self._device

    @property
    def linear_term(self) -> bool:
        """Whether h is non-zero (SB then runs with one extra spin)."""
        return self._has_linear_term

    def __neg__(self) -> "Ising":
        return self.__class__(-self._J, -self._h, self._dtype, self._device)

    def as_simulated_bifurcation_tensor(self) -> torch.Tensor:
        """The dense symmetric, zero-diagonal matrix SB runs on (one extra spin for h).

        >>> import torch, sb_native as sb
        >>> ising = sb.Ising(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1.0, 0.0]))
        >>> tuple(ising.as_simulated_bifurcation_tensor().shape)
        (3, 3)
        """
        coupling = self._coupling()
        return coupling.matrix if coupling.matrix is not None else coupling.torch_csr().to_dense()

    def _coupling(self) -> Coupling:
        if self._J.layout != torch.strided:
            return Coupling.from_sparse_ising(self._J, self._h if self._has_linear_term else None)
        symmetric = (self._J + self._J.t()) / 2.0
        torch.diagonal(symmetric)[...] = 0.0
        if not self._has_linear_term:
            return Coupling.dense(symmetric)
        n = self._dimension
        matrix = torch.zeros((n + 1, n + 1), dtype=self._dtype, device=self._device)
        matrix[:n, :n] = symmetric
        matrix[:n, n] = -self._h
        matrix[n, :n] = -self._h
        return Coupling.dense(matrix)

    def _run(self, options: SolverOptions, objective: Objective = ISING) -> torch.Tensor:
        """SB spins of this model, shape (M, agents); the caller has validated options.
        objective: the callback's values of the runner's energies (this Ising's energy)."""
        coupling = self._coupling()
        backend = _ops.resolve_backend(options.backend, self._device)
        runner = SBRunner.from_options(options, backend, self._device, objective)
        spins = runner.run(coupling)
        return spins[-1] * spins[:-1] if self._has_linear_term else spins

    def _coupling_energy_at_ones(self) -> float:
        """The runner's energy s^T (M s) of all spins 1 on this model's coupling M (zero
        diagonal, h folded in as an extra spin), without building M."""
        J = self._J
        if J.layout == torch.strided:
            total = J.sum() - J.diagonal().sum()
        else:
            J = J.coalesce()
            rows, cols = J.indices()
            total = J.values()[rows != cols].sum()
        return float(total - 2 * self._h.sum())

    def minimize(self, *, agents: int = 128, max_steps: Optional[int] = 10_000,
                 mode: Mode = "ballistic", heated: bool = False, verbose: bool = True,
                 early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto", seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None,
                 polish: bool = False) -> torch.Tensor:
        """SB on this model; returns every agent's spins, shape (M, agents).

        The keywords are sb_native.minimize's (best_only excepted: every agent is returned).

        >>> import torch, sb_native as sb
        >>> ising = sb.Ising(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1.0, 0.0]))
        >>> spins = ising.minimize(agents=8, max_steps=200, seed=0, verbose=False,
        ...                        early_stopping=False)
        >>> tuple(spins.shape)
        (2, 8)
        >>> energies = -0.5 * ((ising.J @ spins) * spins).sum(0) + ising.h @ spins
        >>> spins[:, int(energies.argmin())].tolist(), float(energies.min())
        ([-1.0, -1.0], -2.0)
        """
        options = SolverOptions.of(dict(locals(), best_only=False))
        options.validate()
        return self._run(options)
