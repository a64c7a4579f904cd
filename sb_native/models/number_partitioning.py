from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from .abc_model import ABCModel


class NumberPartitioning(ABCModel):
    """Split numbers into two subsets whose sums are as close as possible (minimize).

    numbers: the values to split (the objective is the squared difference of the sums);
    dtype: float32 (default) or float64; device: where the model lives (default CPU).

    >>> from sb_native.models import NumberPartitioning
    >>> model = NumberPartitioning([1, 2, 3])
    >>> _, squared_difference = model.minimize(agents=8, max_steps=200, seed=0, verbose=False,
    ...                                        early_stopping=False)
    >>> float(squared_difference)
    0.0
    >>> sides = model.partition
    >>> sorted([sides["left"]["values"], sides["right"]["values"]])
    [[1, 2], [3]]
    >>> int(sides["left"]["sum"]), int(sides["right"]["sum"])
    (3, 3)
    """

    domain = "spin"

    def __init__(self, numbers: list, dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        self.numbers = numbers
        column = torch.tensor(self.numbers, dtype=dtype, device=device).reshape(-1, 1)
        super().__init__(column @ column.t(), dtype=dtype, device=device)

    @property
    def partition(self) -> Dict[str, Dict[str, Union[List[int], int, None]]]:
        """The best split found by the last optimization: {"left": {"values", "sum"},
        "right": {...}} (empty lists and None sums before any run; see the class example)."""
        result: Dict[str, Dict[str, Any]] = {"left": {"values": [], "sum": None},
                                             "right": {"values": [], "sum": None}}
        if self.sb_result is None:
            return result
        best = self.sb_result[:, int(torch.argmin(self(self.sb_result.t())))]
        for number, side in zip(self.numbers, best.tolist()):
            result["left" if side > 0 else "right"]["values"].append(number)
        for side in ("left", "right"):
            result[side]["sum"] = np.sum(result[side]["values"])
        return result
