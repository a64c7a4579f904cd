"""ABCModel: a QuadraticPolynomial that knows its own optimization domain."""

from abc import ABC
from typing import List, Optional, Union

from ..core.polynomial import QuadraticPolynomial


class ABCModel(ABC, QuadraticPolynomial):
    """Base of the predefined models: minimize/maximize without a domain argument."""

    domain: Union[str, List[str]]

    def minimize(self, *, agents: int = 128, max_steps: int = 10000, best_only: bool = True,
                 mode: str = "ballistic", heated: bool = False, verbose: bool = True,
                 early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: str = "auto", seed: Optional[int] = None):
        return super().minimize(
            domain=self.domain, agents=agents, max_steps=max_steps, best_only=best_only,
            mode=mode, heated=heated, verbose=verbose, early_stopping=early_stopping,
            sampling_period=sampling_period, convergence_threshold=convergence_threshold,
            timeout=timeout, backend=backend, seed=seed)

    def maximize(self, *, agents: int = 128, max_steps: int = 10000, best_only: bool = True,
                 mode: str = "ballistic", heated: bool = False, verbose: bool = True,
                 early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: str = "auto", seed: Optional[int] = None):
        return super().maximize(
            domain=self.domain, agents=agents, max_steps=max_steps, best_only=best_only,
            mode=mode, heated=heated, verbose=verbose, early_stopping=early_stopping,
            sampling_period=sampling_period, convergence_threshold=convergence_threshold,
            timeout=timeout, backend=backend, seed=seed)
