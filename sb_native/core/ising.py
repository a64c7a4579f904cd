"""The Ising form every problem is reduced to before SB runs.

Energy: -0.5 * s^T J s + h^T s over s in {-1, 1}^n. SB itself runs on a symmetric,
zero-diagonal coupling with no field; a non-zero h is folded in as one extra spin
(block matrix [[J*, -h], [-h^T, 0]]), as in simulated-bifurcation 2.0.0.
"""

from typing import Optional

import torch

from ..optimizer.coupling import Coupling


class IsingForm:
    def __init__(self, J: torch.Tensor, h: Optional[torch.Tensor] = None) -> None:
        self.J = J
        self.dimension = J.shape[0]
        self.h = torch.zeros(self.dimension, dtype=J.dtype, device=J.device) if h is None else h
        self.has_linear_term = bool(torch.any(self.h != 0))

    def __neg__(self) -> "IsingForm":
        return IsingForm(-self.J, -self.h)

    def sb_coupling(self) -> Coupling:
        """The symmetric, zero-diagonal coupling SB runs on (one extra spin for h)."""
        if self.J.layout != torch.strided:
            return Coupling.from_sparse_ising(self.J, self.h if self.has_linear_term else None)
        symmetric = (self.J + self.J.t()) / 2.0
        torch.diagonal(symmetric)[...] = 0.0
        if not self.has_linear_term:
            return Coupling.dense(symmetric)
        n = self.dimension
        matrix = torch.zeros((n + 1, n + 1), dtype=self.J.dtype, device=self.J.device)
        matrix[:n, :n] = symmetric
        matrix[:n, n] = -self.h
        matrix[n, :n] = -self.h
        return Coupling.dense(matrix)

    def spins_from_sb(self, spins: torch.Tensor) -> torch.Tensor:
        """SB spins (with the extra spin last, if any) back to this form's spins."""
        return spins[-1] * spins[:-1] if self.has_linear_term else spins
