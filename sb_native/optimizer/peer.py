"""The classes simulated-bifurcation 2.0.0 exposes in `optimizer`, with its constructors and
methods, for code written against them. sb_native's own entry points do not use them: they
run `engine.SBRunner`, whose loop runs in native chunks."""

import enum
from typing import Callable, Optional, Tuple, Union

import torch

from .. import _checks, _ops
from .._env import current_env
from ..engine import Coupling, SBRunner, draw_oscillators, reference
from ..engine import StopWindow as _EngineStopWindow


class SimulatedBifurcationEngine(enum.Enum):
    """The SB variants: ballistic (bSB, positions) or discrete (dSB, their signs).

    >>> import torch
    >>> from sb_native.optimizer import SimulatedBifurcationEngine
    >>> engine = SimulatedBifurcationEngine.get_engine("discrete")
    >>> engine, engine.activation_function(torch.tensor([-0.3, 0.2])).tolist()
    (<SimulatedBifurcationEngine.dSB: 'discrete'>, [-1.0, 1.0])
    """

    bSB = "ballistic"
    dSB = "discrete"

    @property
    def activation_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What the coupling multiplies: torch.sign for dSB, the positions themselves for bSB."""
        return torch.sign if self is SimulatedBifurcationEngine.dSB else torch.nn.Identity()

    @staticmethod
    def get_engine(engine_name: str) -> "SimulatedBifurcationEngine":
        """The engine of a mode name, "ballistic" or "discrete" (ValueError otherwise)."""
        if engine_name == "ballistic":
            return SimulatedBifurcationEngine.bSB
        if engine_name == "discrete":
            return SimulatedBifurcationEngine.dSB
        raise ValueError(f"Unknwown Simulated Bifurcation engine: {engine_name}.")


class SymplecticIntegrator:
    """Positions and momenta (shape, uniform in [-1, 1) from the global RNG) and the
    symplectic-Euler updates of one SB step.

    shape: (variables, agents); activation_function: the engine's; dtype, device: the
    oscillators'. step(momentum_coefficient, position_coefficient, quadratic_coefficient,
    matrix) runs one step; sample_spins() gives the positions' signs.

    >>> import torch
    >>> from sb_native.optimizer import SimulatedBifurcationEngine, SymplecticIntegrator
    >>> with torch.random.fork_rng():  # leaves the global RNG as it was
    ...     integrator = SymplecticIntegrator(
    ...         (3, 2), SimulatedBifurcationEngine.bSB.activation_function, torch.float32, "cpu")
    >>> integrator.step(-0.01, 0.1, 0.02, torch.zeros(3, 3))
    >>> tuple(integrator.sample_spins().shape), bool((integrator.position.abs() <= 1).all())
    ((3, 2), True)
    """

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
    """The early-stopping window on an SB matrix; `update` takes each sampling's spins.

    ising_tensor: the symmetric, zero-diagonal SB matrix; n_agents; convergence_threshold:
    the stable samplings that freeze an agent; dtype, device: the spins'; verbose: a
    progress bar.

    >>> import torch
    >>> from sb_native.optimizer import StopWindow
    >>> window = StopWindow(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 3, 2, torch.float32, "cpu",
    ...                     False)
    >>> for _ in range(4):  # the same spins at every sampling: every agent freezes
    ...     window.update(torch.ones(2, 3))
    >>> window.shape, window.has_bifurcated_spins()
    ((2, 3), True)
    """

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
        """(spins, agents)."""
        return self.n_spins, self.n_agents

    def update(self, sampled_spins: torch.Tensor) -> None:
        """One sampling: sampled_spins (spins, agents) of ±1; see the class example."""
        backend = _ops.resolve_backend("auto", sampled_spins.device)
        self.sample(sampled_spins, self.ising_tensor @ sampled_spins, backend)


class SimulatedBifurcationOptimizer(SBRunner):
    """SB on a symmetric, zero-diagonal matrix (`run_integrator`), with the peer's
    constructor; the physical constants are read from the environment (`set_env`).

    agents, max_steps, timeout, heated, verbose, sampling_period, convergence_threshold: as
    sb_native.minimize's; engine: a SimulatedBifurcationEngine (the mode). The oscillators
    are drawn from the global RNG.

    >>> import torch
    >>> from sb_native.optimizer import SimulatedBifurcationEngine, SimulatedBifurcationOptimizer
    >>> optimizer = SimulatedBifurcationOptimizer(8, 200, None, SimulatedBifurcationEngine.bSB,
    ...                                           False, False, 50, 50)
    >>> with torch.random.fork_rng():
    ...     spins = optimizer.run_integrator(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), False)
    >>> tuple(spins.shape), bool((spins.abs() == 1).all())
    ((2, 8), True)
    """

    def __init__(self, agents: int, max_steps: Optional[int], timeout: Optional[float],
                 engine: SimulatedBifurcationEngine, heated: bool, verbose: bool,
                 sampling_period: int, convergence_threshold: int) -> None:
        super().__init__(agents=agents, max_steps=max_steps, timeout=timeout,
                         mode=engine.value, heated=heated, verbose=verbose, early_stopping=True,
                         sampling_period=sampling_period,
                         convergence_threshold=convergence_threshold, backend="auto",
                         generator=None)
        self.engine = engine
        env = current_env()  # a preset's block included (sb_native/_env.py)
        self.time_step = env["time_step"]
        self.pressure_slope = env["pressure_slope"]
        self.heat_coefficient = env["heat_coefficient"]

    def run_integrator(self, matrix: torch.Tensor, early_stopping: bool) -> torch.Tensor:
        """SB spins of the matrix's Ising model, shape (matrix dimension, agents).

        matrix: symmetric with a zero diagonal; early_stopping: as sb_native.minimize's (see
        the class docstring for an example)."""
        self.early_stopping = early_stopping
        self.backend = _ops.resolve_backend("auto", matrix.device)
        return self.run(Coupling.dense(matrix))
