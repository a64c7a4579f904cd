"""Population-based optimizers: QIMADTorch (see docs/qimad.md)."""

from .qimad import QIMADTorch

__all__ = ["QIMADTorch"]
