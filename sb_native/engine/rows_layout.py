"""The data of SB with the variables across ranks (engine/rows.py): who owns which rows,
a rank's rows of the coupling, what a run cost and what every rank knows at its end."""

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .reference import unpack


@dataclass(frozen=True)
class RowLayout:
    """Which rank owns which variables: rank r has lo_r to hi_r - 1 (bounds[r])."""

    bounds: Tuple[Tuple[int, int], ...]
    rank: int

    @classmethod
    def split(cls, n: int, world: int, rank: int, extra: int = 0) -> "RowLayout":
        """n variables in blocks of ceil(n / world) (the last ones shorter or empty); extra
        variables after the n (the extra spin of a linear term) go to the last rank."""
        block = -(-n // world)
        bounds = [(min(n, r * block), min(n, (r + 1) * block)) for r in range(world)]
        bounds[-1] = (bounds[-1][0], bounds[-1][1] + extra)
        return cls(tuple(bounds), rank)

    @property
    def lo(self) -> int:
        return self.bounds[self.rank][0]

    @property
    def hi(self) -> int:
        return self.bounds[self.rank][1]

    @property
    def rows(self) -> int:
        return self.hi - self.lo

    @property
    def size(self) -> int:
        return self.bounds[-1][1]

    @property
    def block(self) -> int:
        """Rows every rank sends (its rows, right-aligned), before its header row."""
        return max(hi - lo for lo, hi in self.bounds)

    def gathered_rows(self, variables: torch.Tensor) -> torch.Tensor:
        """The row of the gathered buffer that holds each variable."""
        his = torch.tensor([hi for _, hi in self.bounds], device=variables.device)
        owner = torch.searchsorted(his, variables, right=True)
        return owner * (self.block + 1) + self.block - his[owner] + variables


@dataclass
class RowCoupling:
    """This rank's rows of the SB coupling (symmetric, zero diagonal): CSR over the rank's
    rows, col_indices global."""

    layout: RowLayout
    crow: torch.Tensor
    col: torch.Tensor
    values: torch.Tensor

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device


@dataclass
class RowStats:
    """What a run cost this rank: steps, seconds in the ops (the product and the updates)
    and in the collectives (waiting included), and bytes this rank sent."""

    steps: int = 0
    compute_s: float = 0.0
    communication_s: float = 0.0
    bytes_sent: int = 0


@dataclass
class RowResult:
    """What every rank knows at the end: the final spins of every variable (packed bits in
    the gathered layout) and every agent's energy s^T J s."""

    spins: torch.Tensor
    energies: torch.Tensor
    layout: RowLayout

    def column_spins(self, variables: int, agents: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(variables, k) spins (+-1, float64) of the first `variables` variables for the
        agents given (all when None)."""
        rows = self.spins[self.layout.gathered_rows(torch.arange(variables,
                                                                 device=self.spins.device))]
        return unpack(rows, self.energies.numel(), torch.float64, agents)
