"""sb_native: Simulated Bifurcation at native speed, a drop-in for simulated-bifurcation 2.0.0.

    import sb_native as sb
    vector, value = sb.minimize(Q, domain="spin")
    result = sb.solve_within(model, 10.0, sense="maximize")  # the best in 10 s

`backend_info()` says whether the compiled extension is in use.
"""

from . import core, models, optim, optimizer, plot, presets
from ._env import get_env, reset_env, set_env
from ._ops import backend_info
from .api import build_model, maximize, minimize
from .core import Ising, QuadraticPolynomial, RowBlock
from .engine import ConvergenceWarning
from .engine.history import BatchHistoryPoint, History, HistoryPoint
from .optim import QimadResult, QIMADTorch, qimad_minimize
from .timed import Settings, TimedResult, settings_for, solve_within

__version__ = "0.1.0"

__all__ = [
    "BatchHistoryPoint",
    "ConvergenceWarning",
    "History",
    "HistoryPoint",
    "Ising",
    "QIMADTorch",
    "QimadResult",
    "QuadraticPolynomial",
    "RowBlock",
    "Settings",
    "TimedResult",
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
    "qimad_minimize",
    "reset_env",
    "set_env",
    "settings_for",
    "solve_within",
]
