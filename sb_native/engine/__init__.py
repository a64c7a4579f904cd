"""The SB engine: the coupling and its storage, the run loop, the op wrappers, the torch
reference of every SB op. `sb_native.optimizer` holds only simulated-bifurcation 2.0.0's
public names, built on this package."""

from .coupling import SPARSE_DENSITY, Coupling, prefer_sparse
from .runner import ConvergenceWarning, SBRunner, StopWindow, draw_oscillators

__all__ = ["SPARSE_DENSITY", "ConvergenceWarning", "Coupling", "SBRunner", "StopWindow",
           "draw_oscillators", "prefer_sparse"]
