"""Local-search polish of SB's spins: every agent's greedy single-flip descent (sb_polish).

SB's sampled spins are rarely a local minimum of the energy on sparse problems: a few spins
still gain by flipping alone. The descent flips them (sweeps in variable order, each flip
lowering -0.5 s^T J s), so every returned agent is 1-flip optimal; bench/RESULTS.md
("Local-search polish") measures what it adds and costs.
"""

from typing import Optional, Tuple

import torch

from . import ops
from .coupling import Coupling, CsrParts

# Sweeps are few in practice (every flip lowers the energy, the last sweep flips nothing);
# the cap only bounds a pathological input.
MAX_SWEEPS = 100


class Polisher:
    """Polishes spins of one coupling on a backend; the coupling's CSR form is made once."""

    def __init__(self, coupling: Coupling, backend: str, max_sweeps: int = MAX_SWEEPS) -> None:
        self.coupling = coupling
        self.backend = backend
        self.max_sweeps = max_sweeps
        self._csr: Optional[CsrParts] = None

    def csr(self) -> CsrParts:
        if self._csr is None:
            self._csr = self.coupling.to_csr().csr
            assert self._csr is not None  # to_csr gives a CSR coupling
        return self._csr

    def __call__(self, spins: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(polished spins, the runner's energies s^T J s per agent) of spins (variables,
        agents) in {-1, 1}; spins itself is left as it is."""
        polished = spins.to(self.coupling.dtype).contiguous().clone()
        field = self.coupling.matmul(polished).contiguous()
        if polished.numel():
            ops.sb_polish(*self.csr(), polished, field, self.max_sweeps, backend=self.backend)
        return polished, torch.sum(polished * field, dim=0)
