"""ABCModel: a QuadraticPolynomial that knows its own optimization domain."""

from abc import ABC
from typing import List, Optional, Tuple, Union

import torch

from .._options import BackendChoice, Callback, GroupChoice, Mode, SolverOptions
from ..core.polynomial import QuadraticPolynomial


class ABCModel(ABC, QuadraticPolynomial):
    """Base of the predefined models: minimize/maximize without a domain argument."""

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
                 callback: Optional[Callback] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Minimize over the model's own domain; see sb_native.minimize."""
        return self._optimize("minimize", self.domain, SolverOptions.of(locals()))

    # No domain= either (see minimize).
    def maximize(self, *, agents: int = 128, max_steps: Optional[int] = 10_000,  # type: ignore[override]
                 best_only: bool = True, mode: Mode = "ballistic", heated: bool = False,
                 verbose: bool = True, early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto",
                 seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Maximize over the model's own domain; see sb_native.maximize."""
        return self._optimize("maximize", self.domain, SolverOptions.of(locals()))
