"""Physical constants of the SB dynamics (time step, pressure slope, heat coefficient).

Same names, defaults and errors as simulated-bifurcation 2.0.0's environment.
"""

from typing import Dict, Optional


class Environment:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.time_step = 0.1
        self.pressure_slope = 0.01
        self.heat_coefficient = 0.06

    def set(self, name: str, value: float) -> None:
        if not isinstance(value, float):
            raise TypeError(f"Expected a float but got a {type(value)}.")
        setattr(self, name, value)

    def as_dict(self) -> Dict[str, float]:
        return {
            "time_step": self.time_step,
            "pressure_slope": self.pressure_slope,
            "heat_coefficient": self.heat_coefficient,
        }


ENVIRONMENT = Environment()


def get_env() -> Dict[str, float]:
    """Return the current SB constants as a dict.

    >>> import sb_native as sb
    >>> sb.reset_env()
    >>> sb.get_env()
    {'time_step': 0.1, 'pressure_slope': 0.01, 'heat_coefficient': 0.06}
    """
    return ENVIRONMENT.as_dict()


def set_env(
    *,
    time_step: Optional[float] = None,
    pressure_slope: Optional[float] = None,
    heat_coefficient: Optional[float] = None,
) -> None:
    """Override SB constants; an argument left to None keeps its current value.

    time_step: the integration step of the oscillators; pressure_slope: how fast the pump
    pressure rises per unit of time; heat_coefficient: the thermal term of heated runs. Each
    must be a float (TypeError otherwise).

    >>> import sb_native as sb
    >>> sb.set_env(time_step=0.2, pressure_slope=0.005)
    >>> sb.get_env()
    {'time_step': 0.2, 'pressure_slope': 0.005, 'heat_coefficient': 0.06}
    >>> sb.reset_env()
    """
    for name, value in (
        ("time_step", time_step),
        ("pressure_slope", pressure_slope),
        ("heat_coefficient", heat_coefficient),
    ):
        if value is not None:
            ENVIRONMENT.set(name, value)


def reset_env() -> None:
    """Restore the defaults: time step 0.1, pressure slope 0.01, heat coefficient 0.06.

    >>> import sb_native as sb
    >>> sb.set_env(heat_coefficient=0.1)
    >>> sb.reset_env()
    >>> sb.get_env()["heat_coefficient"]
    0.06
    """
    ENVIRONMENT.reset()
