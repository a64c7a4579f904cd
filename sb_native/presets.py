"""Tuned SB settings for Max-Cut-like problems, measured in bench/sb/bench_quality.py.

The SB defaults (time step 0.1, pressure slope 0.01) ramp the pressure over the first 1,000
steps whatever max_steps is. These presets instead ramp it over the whole run (slope =
1 / (time_step * max_steps)) with a larger time step, which on K2000 and G22 reaches
better cuts in far fewer steps (bench/RESULTS.md):

    preset = sb.presets.PRESETS["maxcut-dense"]
    with preset.environment():
        vector, cut = model.maximize(**preset.solver_kwargs())
"""

import contextlib
from dataclasses import dataclass
from typing import Dict, Iterator

from . import _checks
from ._env import override_env


@dataclass(frozen=True)
class Preset:
    """SB settings: mode ("ballistic" or "discrete"), agents, max_steps, time_step and heated;
    the pressure slope follows from time_step and max_steps.

    >>> import torch, sb_native as sb
    >>> from sb_native.models import MaxCut
    >>> preset = sb.presets.Preset(mode="discrete", agents=8, max_steps=200, time_step=0.5)
    >>> model = MaxCut.from_edges([(0, 1, 1.0), (1, 2, 2.0), (0, 2, 3.0)])
    >>> with preset.environment():
    ...     _, cut = model.maximize(seed=0, verbose=False, **preset.solver_kwargs())
    >>> float(cut)
    5.0
    """

    mode: str
    agents: int
    max_steps: int
    time_step: float
    heated: bool = False

    def __post_init__(self) -> None:
        _checks.check_run_settings(self.mode, self.agents, self.max_steps, self.time_step,
                                   self.heated)

    @property
    def pressure_slope(self) -> float:
        """1 / (time_step * max_steps): the pressure reaches 1 at the last step.

        >>> import sb_native as sb
        >>> sb.presets.PRESETS["maxcut-sparse"].pressure_slope
        0.002
        """
        return 1.0 / (self.time_step * self.max_steps)

    def solver_kwargs(self) -> dict:
        """Keywords for minimize/maximize (early stopping off: the ramp ends the run).

        >>> import sb_native as sb
        >>> sb.presets.PRESETS["maxcut-sparse"].solver_kwargs()  # doctest: +NORMALIZE_WHITESPACE
        {'mode': 'discrete', 'agents': 128, 'max_steps': 1000, 'heated': False,
         'early_stopping': False}
        """
        return dict(mode=self.mode, agents=self.agents, max_steps=self.max_steps,
                    heated=self.heated, early_stopping=False)

    @contextlib.contextmanager
    def environment(self) -> Iterator["Preset"]:
        """Sets the preset's time step and pressure slope for the block, restoring the
        previous ones after.

        The block's environment is a context variable (sb_native._env.override_env), not a
        change of the process-wide set_env values: runs in other threads, even while this
        block is open, keep their own environment, so several threads can each use a preset
        at once. A thread started inside the block does not inherit it (each thread starts
        with an empty context); start its target with contextvars.copy_context().run to hand
        it over. set_env inside the block changes the block's environment, dropped at exit.

        >>> import sb_native as sb
        >>> sb.reset_env()
        >>> with sb.presets.PRESETS["maxcut-sparse"].environment():
        ...     sb.get_env()["time_step"], sb.get_env()["pressure_slope"]
        (0.5, 0.002)
        >>> sb.get_env()["time_step"]
        0.1
        """
        with override_env(time_step=self.time_step, pressure_slope=self.pressure_slope):
            yield self


PRESETS: Dict[str, Preset] = {
    # K2000 (dense ±1): 33,284 (99.84% of best known) in 1.1 s on 2 cores.
    "maxcut-dense": Preset(mode="discrete", agents=128, max_steps=1500, time_step=0.25),
    # G22 (sparse, 2,000 nodes): 13,357 (99.99%) in 0.26 s on 2 cores.
    "maxcut-sparse": Preset(mode="discrete", agents=128, max_steps=1000, time_step=0.5),
}
