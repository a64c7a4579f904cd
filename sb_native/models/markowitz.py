from typing import Optional, Tuple, Union

import numpy as np
import torch

from .abc_model import ABCModel


def _as_tensor(value, dtype, device) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    return value.to(dtype=dtype, device=device)


class SequentialMarkowitz(ABCModel):
    """Integer trading-trajectory optimization (maximize):

    sum_t w_t^T mu_t - gamma/2 w_t^T Sigma_t w_t - (w_t - w_{t-1})^T Lambda_t (w_t - w_{t-1})

    covariances (T, A, A), expected_returns (T, A), rebalancing_costs (T, A, A) (tensors or
    arrays) over T timestamps and A assets; initial_stocks: (A,) holdings before the first
    timestamp (zeros by default); risk_coefficient: gamma; stocks are number_of_bits-bit
    integers; dtype: float32 (default) or float64; device: where the model lives.

    >>> import torch
    >>> from sb_native.models import SequentialMarkowitz
    >>> covariances = torch.eye(2).repeat(2, 1, 1)  # 2 timestamps, 2 assets
    >>> returns = torch.tensor([[2.0, -1.0], [1.0, 1.0]])
    >>> costs = 0.1 * torch.eye(2).repeat(2, 1, 1)
    >>> model = SequentialMarkowitz(covariances, returns, costs)
    >>> _ = model.maximize(agents=8, max_steps=200, seed=0, verbose=False, early_stopping=False)
    >>> model.portfolio.tolist(), round(model.gains, 4)
    ([[1.0, 0.0], [1.0, 1.0]], 2.3)
    """

    def __init__(self, covariances, expected_returns, rebalancing_costs, initial_stocks=None,
                 risk_coefficient: float = 1, number_of_bits: int = 1,
                 dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        # The peer builds "int{number_of_bits}" and fails on it, naming the domain, at the
        # first solve for True or 2.5.
        if isinstance(number_of_bits, bool) or not isinstance(number_of_bits, int) \
                or number_of_bits <= 0:
            raise ValueError("number_of_bits should be a positive integer, received "
                             f"{number_of_bits!r}.")
        self.covariances = _as_tensor(covariances, dtype, device)
        self.expected_returns = _as_tensor(expected_returns, dtype, device)
        self.rebalancing_costs = _as_tensor(rebalancing_costs, dtype, device)
        self.risk_coefficient = risk_coefficient
        self.timestamps = covariances.shape[0]
        self.assets = covariances.shape[1]
        self.initial_stocks = (torch.zeros(self.assets) if initial_stocks is None
                               else initial_stocks)
        self.number_of_bits = number_of_bits
        self.domain = f"int{number_of_bits}"
        matrix, vector, constant = self.compile_model()
        super().__init__(matrix, vector.reshape(-1), constant, dtype=dtype, device=device)

    def compile_model(self) -> Tuple[torch.Tensor, torch.Tensor, float]:
        """(matrix (T*A, T*A), vector (T*A, 1), constant) of the polynomial the model is."""
        return self._matrix(), self._vector(), self._constant()

    def _matrix(self) -> torch.Tensor:
        shifted_costs = torch.roll(self.rebalancing_costs, -1, 0)
        shifted_costs[-1] = 0.0
        diagonal_blocks = (-self.risk_coefficient / 2 * self.covariances
                           - self.rebalancing_costs - shifted_costs)
        dimension = self.assets * self.timestamps
        upper = torch.zeros(dimension, dimension)
        upper[: -self.assets, self.assets:] = torch.block_diag(*self.rebalancing_costs[1:])
        return torch.block_diag(*diagonal_blocks) + upper + upper.t()

    def _vector(self) -> torch.Tensor:
        stacked = self.expected_returns.reshape(-1, 1)
        first_costs = self.rebalancing_costs[0]
        symmetric_costs = first_costs + first_costs.t()
        stacked[: self.assets] += symmetric_costs @ self.initial_stocks.reshape(-1, 1)
        return stacked

    def _constant(self) -> float:
        initial = self.initial_stocks.reshape(-1, 1)
        return (-initial.t() @ self.rebalancing_costs[0] @ initial).item()

    @property
    def portfolio(self) -> Optional[torch.Tensor]:
        """The best agent's stocks of the last optimization, (T, A); None before any run."""
        if self.sb_result is None:
            return None
        best = int(torch.argmax(self(self.sb_result.t())))
        return self.sb_result[:, best].reshape(self.timestamps, self.assets)

    @property
    def gains(self) -> Optional[float]:
        """The objective's value at `portfolio`; None before any run."""
        portfolio = self.portfolio
        return None if portfolio is None else self(portfolio.reshape(1, -1)).item()


class Markowitz(SequentialMarkowitz):
    """Single-period integer portfolio optimization (maximize w^T mu - gamma/2 w^T Sigma w).

    covariance: (A, A) Sigma, expected_return: (A,) mu (tensors or arrays); risk_coefficient:
    gamma; stocks w are number_of_bits-bit integers; dtype: float32 (default) or float64;
    device: where the model lives.

    >>> import torch
    >>> from sb_native.models import Markowitz
    >>> model = Markowitz(torch.tensor([[1.0, 0.5], [0.5, 1.0]]), torch.tensor([3.0, 1.0]),
    ...                   number_of_bits=2)  # 0 to 3 of each asset
    >>> stocks, gains = model.maximize(agents=8, max_steps=200, seed=0, verbose=False,
    ...                                early_stopping=False)
    >>> stocks.tolist(), float(gains), model.portfolio.tolist(), model.gains
    ([3.0, 0.0], 4.5, [3.0, 0.0], 4.5)
    """

    def __init__(self, covariance, expected_return, risk_coefficient: float = 1,
                 number_of_bits: int = 1, dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        covariance = torch.unsqueeze(torch.as_tensor(covariance), 0)
        expected_return = torch.unsqueeze(torch.as_tensor(expected_return), 0)
        super().__init__(covariance, expected_return, torch.zeros_like(covariance), None,
                         risk_coefficient, number_of_bits, dtype, device)

    @property
    def covariance(self) -> torch.Tensor:
        """Sigma, (A, A), read back from the polynomial."""
        return -(2 / self.risk_coefficient) * self._quadratic_coefficients

    @property
    def expected_return(self) -> torch.Tensor:
        """mu, (A,)."""
        return self._linear_coefficients

    @property
    def portfolio(self) -> Optional[torch.Tensor]:
        """The best agent's stocks of the last optimization, (A,); None before any run."""
        portfolio = super().portfolio
        return None if portfolio is None else portfolio.reshape(-1)
