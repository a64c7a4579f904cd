from typing import Optional, Union

import numpy as np
import torch

from .abc_model import ABCModel


class Ising(ABCModel):
    """Ising model: minimize -0.5 * s^T J s + h^T s over s in {-1, 1}^n.

    h may be omitted (no field); simulated-bifurcation 2.0.0 rejects a missing h.
    J: (n, n) tensor or array, h: (n,) or None (kept as `model.J`, `model.h`); dtype:
    float32 (default) or float64; device: where they live (default CPU).

    >>> import torch
    >>> from sb_native.models import Ising
    >>> model = Ising(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1.0, 0.0]))
    >>> spins, energy = model.minimize(agents=8, max_steps=200, seed=0, verbose=False,
    ...                                early_stopping=False)
    >>> spins.tolist(), float(energy)
    ([-1.0, -1.0], -2.0)
    """

    domain = "spin"

    def __init__(self, J: Union[torch.Tensor, np.ndarray],
                 h: Union[torch.Tensor, np.ndarray, None] = None,
                 dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        data = (-0.5 * J,) if h is None else (-0.5 * J, h)
        super().__init__(*data, dtype=dtype, device=device)
        self.J = J
        self.h = h
