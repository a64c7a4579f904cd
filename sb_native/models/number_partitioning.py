from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from .abc_model import ABCModel


class NumberPartitioning(ABCModel):
    """Split numbers into two subsets whose sums are as close as possible (minimize)."""

    domain = "spin"

    def __init__(self, numbers: list, dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        self.numbers = numbers
        column = torch.tensor(self.numbers, dtype=dtype, device=device).reshape(-1, 1)
        super().__init__(column @ column.t(), dtype=dtype, device=device)

    @property
    def partition(self) -> Dict[str, Dict[str, Union[List[int], int, None]]]:
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
