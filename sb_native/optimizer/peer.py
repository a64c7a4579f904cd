"""The classes simulated-bifurcation 2.0.0 exposes in `optimizer`, with its constructors and
methods, for code written against them. sb_native's own entry points do not use them: they
run `engine.SBRunner`, whose loop runs in native chunks."""

import enum
from typing import Callable, Optional, Tuple, Union

import torch

from .. import _checks, _ops
from .._env import ENVIRONMENT
from ..engine import Coupling, SBRunner, draw_oscillators, reference
from ..engine import StopWindow as _EngineStopWindow


class SimulatedBifurcationEngine(enum.Enum):
    """The SB variants: ballistic (bSB, positions) or discrete (dSB, their signs)."""

    bSB = "ballistic"
    dSB = "discrete"

    @property
    def activation_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return torch.sign if self is SimulatedBifurcationEngine.dSB else torch.nn.Identity()

    @staticmethod
    def get_engine(engine_name: str) -> "SimulatedBifurcationEngine":
        if engine_name == "ballistic":
            return SimulatedBifurcationEngine.bSB
        if engine_name == "discrete":
            return SimulatedBifurcationEngine.dSB
        raise ValueError(f"Unknwown Simulated Bifurcation engine: {engine_name}.")


class SymplecticIntegrator:
    """Positions and momenta (shape, uniform in [-1, 1) from the global RNG) and the
    symplectic-Euler updates of one SB step."""

    def __init__(self, shape: Tuple[int, int],
                 activation_function: Callable[[torch.Tensor], torch.Tensor],
                 dtype: torch.dtype, device: Union[str, torch.device]) -> None:
        self.position, self.momentum = draw_oscillators(*shape, dtype, device, None)
        self.activation_function = activation_function

    def position_update(self, coefficient: float) -> None:
        torch.add(self.position, self.momentum, alpha=coefficient, out=self.position)

    def momentum_update(self, coefficient: float) -> None:
        torch.add(self.momentum, self.position, alpha=coefficient, out=self.momentum)

    def quadratic_momentum_update(self, coefficient: float, matrix: torch.Tensor) -> None:
        self.momentum = torch.addmm(self.momentum, matrix,
                                    self.activation_function(self.position), alpha=coefficient)

    def simulate_inelastic_walls(self) -> None:
        self.momentum[torch.abs(self.position) > 1.0] = 0.0
        torch.clip(self.position, -1.0, 1.0, out=self.position)

    def step(self, momentum_coefficient: float, position_coefficient: float,
             quadratic_coefficient: float, matrix: torch.Tensor) -> None:
        self.momentum_update(momentum_coefficient)
        self.position_update(position_coefficient)
        self.quadratic_momentum_update(quadratic_coefficient, matrix)
        self.simulate_inelastic_walls()

    def sample_spins(self) -> torch.Tensor:
        return reference.sample_spins(self.position)


class StopWindow(_EngineStopWindow):
    """The early-stopping window on an SB matrix; `update` takes each sampling's spins."""

    def __init__(self, ising_tensor: torch.Tensor, n_agents: int, convergence_threshold: int,
                 dtype: torch.dtype, device: Union[str, torch.device], verbose: bool) -> None:
        _checks.check_convergence_threshold(convergence_threshold)
        self.ising_tensor = ising_tensor
        self.n_spins = ising_tensor.shape[0]
        self.n_agents = n_agents
        self.dtype = dtype
        self.device = device
        super().__init__(self.n_spins, n_agents, convergence_threshold, dtype, device, verbose)

    @property
    def shape(self) -> Tuple[int, int]:
        return self.n_spins, self.n_agents

    def update(self, sampled_spins: torch.Tensor) -> None:
        backend = _ops.resolve_backend("auto", sampled_spins.device)
        self.sample(sampled_spins, self.ising_tensor @ sampled_spins, backend)


class SimulatedBifurcationOptimizer(SBRunner):
    """SB on a symmetric, zero-diagonal matrix (`run_integrator`), with the peer's
    constructor; the physical constants are read from the environment (`set_env`)."""

    def __init__(self, agents: int, max_steps: Optional[int], timeout: Optional[float],
                 engine: SimulatedBifurcationEngine, heated: bool, verbose: bool,
                 sampling_period: int, convergence_threshold: int) -> None:
        super().__init__(agents=agents, max_steps=max_steps, timeout=timeout,
                         mode=engine.value, heated=heated, verbose=verbose, early_stopping=True,
                         sampling_period=sampling_period,
                         convergence_threshold=convergence_threshold, backend="auto",
                         generator=None)
        self.engine = engine
        self.time_step = ENVIRONMENT.time_step
        self.pressure_slope = ENVIRONMENT.pressure_slope
        self.heat_coefficient = ENVIRONMENT.heat_coefficient

    def run_integrator(self, matrix: torch.Tensor, early_stopping: bool) -> torch.Tensor:
        """SB spins of the matrix's Ising model, shape (matrix dimension, agents)."""
        self.early_stopping = early_stopping
        self.backend = _ops.resolve_backend("auto", matrix.device)
        return self.run(Coupling.dense(matrix))
