"""sb_native: Simulated Bifurcation at native speed, a drop-in for simulated-bifurcation 2.0.0.

    import sb_native as sb
    vector, value = sb.minimize(Q, domain="spin")

`backend_info()` says whether the compiled extension is in use.
"""

from . import models, optim, presets
from ._env import get_env, reset_env, set_env
from ._ops import backend_info
from .api import build_model, maximize, minimize
from .core import QuadraticPolynomial
from .optim import QIMADTorch
from .optimizer import ConvergenceWarning

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "QIMADTorch",
    "QuadraticPolynomial",
    "backend_info",
    "build_model",
    "get_env",
    "maximize",
    "minimize",
    "models",
    "optim",
    "presets",
    "reset_env",
    "set_env",
]
