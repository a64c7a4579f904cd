"""ABCModel: a QuadraticPolynomial that knows its own optimization domain."""

from abc import ABC
from typing import List, Optional, Tuple, Union

import torch

from .._options import BackendChoice, Callback, GroupChoice, Mode, SolverOptions
from ..core.polynomial import QuadraticPolynomial


class ABCModel(ABC, QuadraticPolynomial):
    """Base of the predefined models: minimize/maximize without a domain argument.

    A subclass sets `domain` ("spin", "binary", "intN" or one per variable) and builds the
    polynomial in its constructor.

    >>> import torch
    >>> from sb_native.models import ABCModel
    >>> class Agree(ABCModel):  # two spins that want the same sign: -s0 s1
    ...     domain = "spin"
    ...     def __init__(self):
    ...         super().__init__(torch.tensor([[0.0, -1.0], [0.0, 0.0]]))
    >>> _, value = Agree().minimize(agents=8, max_steps=200, seed=0, verbose=False,
    ...                             early_stopping=False)
    >>> float(value)
    -1.0
    """

    domain: Union[str, List[str]]

    # The models drop QuadraticPolynomial's required domain= (simulated-bifurcation 2.0.0's
    # API): a deliberate incompatible override.
    def minimize(self, *, agents: int = 128, max_steps: Optional[int] = 10_000,  # type: ignore[override]
                 best_only: bool = True, mode: Mode = "ballistic", heated: bool = False,
                 verbose: bool = True, early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto",
                 seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None,
                 polish: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Minimize over the model's own domain; see sb_native.minimize for every argument.

        >>> import torch
        >>> from sb_native.models import QUBO
        >>> model = QUBO(torch.tensor([[-1.0, 2.0], [0.0, -2.0]]))
        >>> vector, value = model.minimize(agents=8, max_steps=200, seed=0, verbose=False,
        ...                                early_stopping=False)
        >>> vector.tolist(), float(value)
        ([0.0, 1.0], -2.0)
        """
        return self._optimize("minimize", self.domain, SolverOptions.of(locals()))

    # No domain= either (see minimize).
    def maximize(self, *, agents: int = 128, max_steps: Optional[int] = 10_000,  # type: ignore[override]
                 best_only: bool = True, mode: Mode = "ballistic", heated: bool = False,
                 verbose: bool = True, early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto",
                 seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None,
                 polish: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Maximize over the model's own domain; see sb_native.maximize for every argument.

        >>> import torch
        >>> from sb_native.models import QUBO
        >>> model = QUBO(torch.tensor([[1.0, -3.0], [0.0, 2.0]]))
        >>> vector, value = model.maximize(agents=8, max_steps=200, seed=0, verbose=False,
        ...                                early_stopping=False)
        >>> vector.tolist(), float(value)
        ([0.0, 1.0], 2.0)
        """
        return self._optimize("maximize", self.domain, SolverOptions.of(locals()))
