from typing import Optional, Union

import numpy as np
import torch

from .abc_model import ABCModel


class QUBO(ABCModel):
    """Quadratic Unconstrained Binary Optimization: minimize b^T Q b over b in {0, 1}^n.

    Q: (n, n) tensor or array (dense or sparse; kept as `model.Q`); dtype: float32 (default)
    or float64; device: where it lives (default CPU).

    >>> import torch
    >>> from sb_native.models import QUBO
    >>> model = QUBO(torch.tensor([[-1.0, 2.0], [0.0, -2.0]]))
    >>> bits, value = model.minimize(agents=8, max_steps=200, seed=0, verbose=False,
    ...                              early_stopping=False)
    >>> bits.tolist(), float(value)
    ([0.0, 1.0], -2.0)
    """

    domain = "binary"

    def __init__(self, Q: Union[torch.Tensor, np.ndarray], dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        super().__init__(Q, dtype=dtype, device=device)
        self.Q = self._quadratic_coefficients
