"""Population-based optimizers: QIMADTorch and qimad_minimize (see docs/qimad.md)."""

from .minimize import QimadResult, qimad_minimize
from .qimad import QIMADTorch

__all__ = ["QIMADTorch", "QimadResult", "qimad_minimize"]
