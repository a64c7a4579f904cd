"""Physical constants of the SB dynamics (time step, pressure slope, heat coefficient).

Same names, defaults and errors as simulated-bifurcation 2.0.0's environment: `set_env`
changes a process-wide environment that stays until `reset_env` (or the next `set_env`),
and `get_env` reads it.

Threads. Two things keep concurrent runs apart:

* A run reads the environment once, when it starts (`current_env`, called by the engine
  before its first step), and steps with that copy: a `set_env` from another thread while
  it runs changes the next runs, never that one. The global values are read and written
  under a lock, so a run never sees half of another thread's `set_env`.
* A temporary environment (`override_env`, which `Preset.environment` uses) is a
  `contextvars.ContextVar`, not a change of the global values: it is seen only by the code
  running in the context that entered the block. Each thread starts with an empty context
  (Python 3.11's `threading`), so other threads, and threads started inside the block,
  keep seeing the global environment; run such a thread's target under
  `contextvars.copy_context().run` to hand it the block's environment. That is the
  standard semantics of context variables (asyncio tasks created inside the block do copy
  the context, so they see it).
"""

import contextlib
import contextvars
import threading
from typing import Dict, Iterator, Optional

_NAMES = ("time_step", "pressure_slope", "heat_coefficient")


class Environment:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.time_step = 0.1
        self.pressure_slope = 0.01
        self.heat_coefficient = 0.06

    def set(self, name: str, value: float) -> None:
        _check_float(value)
        setattr(self, name, value)

    def as_dict(self) -> Dict[str, float]:
        return {
            "time_step": self.time_step,
            "pressure_slope": self.pressure_slope,
            "heat_coefficient": self.heat_coefficient,
        }


def _check_float(value: object) -> None:
    if not isinstance(value, float):
        raise TypeError(f"Expected a float but got a {type(value)}.")


# The process-wide environment of set_env/reset_env. Read it through current_env(): the
# attributes alone miss the lock and a context's override.
ENVIRONMENT = Environment()
# Held while the global values are read or written: set_env changes up to three attributes,
# and a run starting in another thread must see all of them or none.
_LOCK = threading.Lock()
# The whole environment (all three names) of an override_env block, or None outside one. A
# complete copy rather than the changed names only: set_env inside the block then changes the
# block's copy, and the block's end drops it, as when presets saved and restored the globals.
_OVERRIDE: contextvars.ContextVar[Optional[Dict[str, float]]] = contextvars.ContextVar(
    "sb_native_env_override", default=None)


def current_env() -> Dict[str, float]:
    """The environment a run starting now uses: this context's override_env block if any,
    else the global values. A new dict: the caller keeps it for the whole run.

    >>> import sb_native as sb
    >>> from sb_native._env import current_env
    >>> sb.reset_env()
    >>> current_env() == sb.get_env()
    True
    """
    override = _OVERRIDE.get()
    if override is not None:
        return dict(override)
    with _LOCK:
        return ENVIRONMENT.as_dict()


def get_env() -> Dict[str, float]:
    """Return the current SB constants as a dict.

    >>> import sb_native as sb
    >>> sb.reset_env()
    >>> sb.get_env()
    {'time_step': 0.1, 'pressure_slope': 0.01, 'heat_coefficient': 0.06}
    """
    return current_env()


def set_env(
    *,
    time_step: Optional[float] = None,
    pressure_slope: Optional[float] = None,
    heat_coefficient: Optional[float] = None,
) -> None:
    """Override SB constants; an argument left to None keeps its current value.

    time_step: the integration step of the oscillators; pressure_slope: how fast the pump
    pressure rises per unit of time; heat_coefficient: the thermal term of heated runs. Each
    must be a float (TypeError otherwise; as in the peer, the arguments before the bad one
    are set). The change is process-wide, except inside an override_env block (a preset's
    environment), where it changes that block's environment only, until the block ends.

    >>> import sb_native as sb
    >>> sb.set_env(time_step=0.2, pressure_slope=0.005)
    >>> sb.get_env()
    {'time_step': 0.2, 'pressure_slope': 0.005, 'heat_coefficient': 0.06}
    >>> sb.reset_env()
    """
    values = (time_step, pressure_slope, heat_coefficient)
    override = _OVERRIDE.get()
    if override is not None:
        changed = dict(override)  # a new dict: a copied context may share the old one
        try:
            for name, value in zip(_NAMES, values):
                if value is not None:
                    _check_float(value)
                    changed[name] = value
        finally:
            _OVERRIDE.set(changed)
        return
    with _LOCK:
        for name, value in zip(_NAMES, values):
            if value is not None:
                ENVIRONMENT.set(name, value)


def reset_env() -> None:
    """Restore the defaults: time step 0.1, pressure slope 0.01, heat coefficient 0.06
    (inside an override_env block: the block's environment, as set_env).

    >>> import sb_native as sb
    >>> sb.set_env(heat_coefficient=0.1)
    >>> sb.reset_env()
    >>> sb.get_env()["heat_coefficient"]
    0.06
    """
    if _OVERRIDE.get() is not None:
        _OVERRIDE.set(Environment().as_dict())
        return
    with _LOCK:
        ENVIRONMENT.reset()


@contextlib.contextmanager
def override_env(
    *,
    time_step: Optional[float] = None,
    pressure_slope: Optional[float] = None,
    heat_coefficient: Optional[float] = None,
) -> Iterator[None]:
    """Within the block, this context (this thread, or the asyncio task) sees the current
    environment with these values changed; other threads never see them, and the block's
    end restores what this context saw before. Checked as set_env checks (TypeError).

    >>> import sb_native as sb
    >>> from sb_native._env import override_env
    >>> sb.reset_env()
    >>> with override_env(time_step=0.5):
    ...     sb.get_env()["time_step"]
    0.5
    >>> sb.get_env()["time_step"]
    0.1
    """
    env = current_env()
    for name, value in zip(_NAMES, (time_step, pressure_slope, heat_coefficient)):
        if value is not None:
            _check_float(value)
            env[name] = value
    token = _OVERRIDE.set(env)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)
