"""The solver keywords, in one place.

`minimize`, `maximize`, `QuadraticPolynomial.minimize/maximize` and the models' methods keep
explicit signatures (IDEs and help() need them); each collects its keywords with
`SolverOptions.of(locals())`, and tests/interfaces/test_signatures.py checks that every
signature has exactly these fields with these defaults and annotations.
"""

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional, Union

import torch
import torch.distributed as dist

from . import _checks
from .engine.history import Callback

Mode = Literal["ballistic", "discrete"]
BackendChoice = Literal["auto", "native", "torch"]
# A torch.distributed process group to spread the agents over (True: the default group).
# Type checkers see the first branch; at runtime a torch without distributed support has no
# ProcessGroup, and the alias is Optional[bool] there.
if TYPE_CHECKING or dist.is_available():
    GroupChoice = Union[bool, dist.ProcessGroup, None]
else:
    GroupChoice = Optional[bool]


@dataclass(frozen=True)
class SolverOptions:
    agents: int = 128
    max_steps: Optional[int] = 10_000
    best_only: bool = True
    mode: Mode = "ballistic"
    heated: bool = False
    verbose: bool = True
    early_stopping: bool = True
    sampling_period: int = 50
    convergence_threshold: int = 50
    timeout: Optional[float] = None
    backend: BackendChoice = "auto"
    seed: Optional[int] = None
    process_group: GroupChoice = None
    # Called at each sampling point with a HistoryPoint (a BatchHistoryPoint for a batch of
    # problems); returning True stops the run.
    callback: Optional[Callback] = None
    # Every agent's final spins polished by a greedy single-flip descent (engine/polish.py).
    polish: bool = False

    @classmethod
    def of(cls, arguments: dict) -> "SolverOptions":
        """The options among a signature's arguments (pass locals())."""
        return cls(**{name: arguments[name] for name in FIELDS})

    def validate(self) -> None:
        """Raises, naming the argument, before anything is allocated."""
        _checks.check_solver_arguments(**{name: getattr(self, name) for name in FIELDS})

    def generator(self, device: torch.device) -> Optional[torch.Generator]:
        """A private generator seeded with seed, or None (the global RNG, as the peer)."""
        if self.seed is None:
            return None
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed)
        return generator


FIELDS = tuple(field.name for field in dataclasses.fields(SolverOptions))
