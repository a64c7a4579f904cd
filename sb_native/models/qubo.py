from typing import Optional, Union

import numpy as np
import torch

from .abc_model import ABCModel


class QUBO(ABCModel):
    """Quadratic Unconstrained Binary Optimization: minimize b^T Q b over b in {0, 1}^n."""

    domain = "binary"

    def __init__(self, Q: Union[torch.Tensor, np.ndarray], dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        super().__init__(Q, dtype=dtype, device=device)
        self.Q = self._quadratic_coefficients
