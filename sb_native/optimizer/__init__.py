from .engine import ConvergenceWarning, SBRunner

__all__ = ["ConvergenceWarning", "SBRunner"]
