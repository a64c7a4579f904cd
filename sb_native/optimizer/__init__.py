"""simulated-bifurcation 2.0.0's `optimizer` module: its public names, built on sb_native's
engine (`sb_native.engine`), which is where the SB run lives."""

from .._env import get_env, reset_env, set_env
from ..engine import ConvergenceWarning
from .peer import (
                   SimulatedBifurcationEngine,
                   SimulatedBifurcationOptimizer,
                   StopWindow,
                   SymplecticIntegrator,
)

__all__ = ["ConvergenceWarning", "SimulatedBifurcationEngine", "SimulatedBifurcationOptimizer",
           "StopWindow", "SymplecticIntegrator", "get_env", "reset_env", "set_env"]
