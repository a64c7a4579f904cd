"""A run's history: one point per sampling point, for `callback=` (and `sb_native.History`).

The runner samples the agents' spins every `sampling_period` steps (for early stopping, or
for a callback when early stopping is off) and knows their energies in its own units: the
sum s^T (J s) over the SB coupling. `Objective` maps those to the caller's objective (the
polynomial's value, the Ising energy), so a point's `best` and `mean` read like the values
`minimize`/`maximize` return.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import torch


class HistoryPoint(NamedTuple):
    """One sampling point of a run.

    >>> import sb_native as sb
    >>> point = sb.HistoryPoint(step=50, seconds=0.01, best=-2.0, mean=-1.5, frozen=3)
    >>> point.step, point.best
    (50, -2.0)
    """

    step: int  # steps done so far
    seconds: float  # wall time since the run started
    best: float  # the best agent's objective value (lowest minimizing, highest maximizing)
    mean: float  # the agents' mean objective value
    frozen: int  # agents whose energy has stopped changing (early stopping's bifurcated agents)


class BatchHistoryPoint(NamedTuple):
    """One sampling point of a batch of problems (minimize/maximize on a batch, the dimod
    sampler's sample_multiple, `sb-native solve FOLDER`): best, mean and frozen hold one
    entry per problem, in the batch's order. A problem whose agents all froze keeps its
    last values.

    >>> import sb_native as sb
    >>> point = sb.BatchHistoryPoint(step=50, seconds=0.01, best=(-2.0, -3.0),
    ...                              mean=(-1.5, -3.0), frozen=(3, 4))
    >>> point.problem(1)
    HistoryPoint(step=50, seconds=0.01, best=-3.0, mean=-3.0, frozen=4)
    """

    step: int
    seconds: float
    best: Tuple[float, ...]
    mean: Tuple[float, ...]
    frozen: Tuple[int, ...]

    def problem(self, index: int) -> HistoryPoint:
        """Problem index's point, as its own run's callback would see it."""
        return HistoryPoint(step=self.step, seconds=self.seconds, best=self.best[index],
                            mean=self.mean[index], frozen=self.frozen[index])


# Receives each point (a BatchHistoryPoint for a batch of problems); returning True stops
# the run (the current spins are returned).
Callback = Callable[[Any], Optional[bool]]


@dataclass
class History:
    """A callback that records every point: pass it as `callback=`, read it afterwards.

    >>> import torch, sb_native as sb
    >>> history = sb.History()
    >>> Q = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> _ = sb.minimize(Q, domain="spin", agents=4, max_steps=100, seed=0, verbose=False,
    ...                 early_stopping=False, sampling_period=10, callback=history)
    >>> len(history), history.steps[:3], history.best[-1]
    (10, [10, 20, 30], -2.0)
    """

    points: List[Any] = field(default_factory=list)  # HistoryPoint or BatchHistoryPoint

    def __call__(self, point: Any) -> None:
        self.points.append(point)

    def problem(self, index: int) -> "History":
        """A batch's history of problem index alone (its points are BatchHistoryPoints).

        >>> import torch, sb_native as sb
        >>> history = sb.History()
        >>> Q = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, -1.0], [-1.0, 0.0]]])
        >>> _ = sb.minimize(Q, domain="spin", agents=4, max_steps=1000, seed=0, verbose=False,
        ...                 early_stopping=False, sampling_period=500, callback=history)
        >>> history.steps, history.problem(1).best
        ([500, 1000], [-2.0, -2.0])
        """
        return History([point.problem(index) for point in self.points])

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[HistoryPoint]:
        return iter(self.points)

    def __getitem__(self, index: int) -> HistoryPoint:
        return self.points[index]

    @property
    def steps(self) -> List[int]:
        """Each point's step; seconds, best, mean and frozen are the other columns."""
        return [p.step for p in self.points]

    @property
    def seconds(self) -> List[float]:
        return [p.seconds for p in self.points]

    @property
    def best(self) -> List[float]:
        return [p.best for p in self.points]

    @property
    def mean(self) -> List[float]:
        return [p.mean for p in self.points]

    @property
    def frozen(self) -> List[int]:
        return [p.frozen for p in self.points]

    def to_dict(self) -> Dict[str, List[Any]]:
        """Column lists (step, seconds, best, mean, frozen): the CLI's --json "history".

        >>> import sb_native as sb
        >>> history = sb.History()
        >>> history(sb.HistoryPoint(step=50, seconds=0.01, best=-2.0, mean=-1.5, frozen=3))
        >>> history.to_dict()
        {'step': [50], 'seconds': [0.01], 'best': [-2.0], 'mean': [-1.5], 'frozen': [3]}
        """
        return {name: [getattr(p, name) for p in self.points] for name in HistoryPoint._fields}


class Objective(NamedTuple):
    """The caller's objective of the runner's energies: value = scale * energy + offset."""

    scale: float
    offset: float
    maximize: bool

    def summary(self, energies: torch.Tensor) -> torch.Tensor:
        """(best, mean, sum, count) of the agents' values, in float64."""
        values = energies.to(torch.float64) * self.scale + self.offset
        best = values.max() if self.maximize else values.min()
        return torch.stack([best, values.mean(), values.sum(),
                            torch.tensor(float(values.numel()), dtype=torch.float64,
                                         device=values.device)])


# The Ising energy -0.5 s^T J s of the runner's energies s^T (J s) (Ising.minimize).
ISING = Objective(scale=-0.5, offset=0.0, maximize=False)
