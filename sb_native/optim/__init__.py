"""Population-based optimizers: QIMADTorch (see docs/qimad.md)."""

from . import _native  # noqa: F401  (fake kernels of the QIMADTorch ops)
from .qimad import QIMADTorch

__all__ = ["QIMADTorch"]
