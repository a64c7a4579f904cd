"""sb_native: Simulated Bifurcation at native speed, a drop-in for simulated-bifurcation 2.0.0.

    import sb_native as sb
    vector, value = sb.minimize(Q, domain="spin")

`backend_info()` says whether the compiled extension is in use.
"""

from . import core, models, optim, optimizer, plot, presets
from ._env import get_env, reset_env, set_env
from ._ops import backend_info
from .api import build_model, maximize, minimize
from .core import Ising, QuadraticPolynomial, RowBlock
from .engine import ConvergenceWarning
from .engine.history import History, HistoryPoint
from .optim import QIMADTorch

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "History",
    "HistoryPoint",
    "Ising",
    "QIMADTorch",
    "QuadraticPolynomial",
    "RowBlock",
    "backend_info",
    "build_model",
    "core",
    "get_env",
    "maximize",
    "minimize",
    "models",
    "optim",
    "optimizer",
    "plot",
    "presets",
    "reset_env",
    "set_env",
]
