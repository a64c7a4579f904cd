"""qimad_minimize: QIMAD on a box-bounded function, in the style of scipy.optimize.

The swarm is a QIMADTorch over one (d,) parameter; every iteration evaluates all agents in one
call of the function on an (agents, d) tensor (QIMADTorch.step_vectorized). Its defaults are
the dynamics of the QIMAD authors' published benchmark (docs/qimad.md, "Box-bounded
functions"): every agent uniform in the box, positions clipped to it, jumps scaled by it,
agents moved one after another, no cooling; but stagnation is the seed's (an agent stagnates
while its own best does not improve), which reached lower values than the authors' rule
(stagnation="global") on all three of their functions (bench/RESULTS.md).
"""

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import torch

from .qimad import QIMADTorch


@dataclass
class QimadResult:
    """What qimad_minimize found, with scipy.optimize.OptimizeResult's names (also readable as
    result["x"])."""

    x: torch.Tensor  # (d,): the best point seen
    fun: float  # its value: the lowest seen over all agents and iterations
    nfev: int  # function values computed (agents evaluated, over all iterations)
    njev: int  # gradient rows computed (by jac, or by autograd)
    nit: int  # iterations
    success: bool  # a finite value was found
    status: int  # 0: maxiter reached, 1: f_target reached, 2: callback stopped, -1: no finite value
    message: str
    history: List[float] = field(default_factory=list)  # the best value after each iteration

    def __getitem__(self, key: str):
        return getattr(self, key)


_MESSAGES = {0: "maximum number of iterations reached", 1: "f_target reached",
             2: "stopped by the callback", -1: "no finite function value was found"}


def _box(bounds, dtype: torch.dtype, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper) as (d,) tensors from scipy's forms: a sequence of d (lower, upper) pairs,
    an object with lb and ub (scipy.optimize.Bounds), or a pair of two (d,) tensors or arrays."""
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        pair = (bounds.lb, bounds.ub)
    elif (isinstance(bounds, (tuple, list)) and len(bounds) == 2
          and all(torch.is_tensor(b) or hasattr(b, "__array__") for b in bounds)):
        pair = tuple(bounds)
    else:
        try:
            rows = torch.as_tensor([tuple(map(float, b)) for b in bounds], dtype=torch.float64)
        except (TypeError, ValueError):
            rows = torch.empty(0)
        if rows.dim() != 2 or rows.shape[1] != 2 or rows.shape[0] == 0:
            raise ValueError("bounds must be a sequence of (lower, upper) pairs, one per "
                             "dimension, an object with lb and ub, or a pair of (d,) tensors; "
                             f"got {bounds!r}")
        pair = (rows[:, 0], rows[:, 1])
    lower, upper = (torch.as_tensor(b, dtype=dtype).to(device).reshape(-1) for b in pair)
    if lower.shape != upper.shape or lower.numel() == 0:
        raise ValueError(f"bounds: lower and upper must be (d,) with d >= 1, got shapes "
                         f"{tuple(lower.shape)} and {tuple(upper.shape)}")
    if not bool((torch.isfinite(lower) & torch.isfinite(upper)).all()):
        raise ValueError("bounds must be finite: the agents start uniformly in the box")
    if not bool((lower <= upper).all()):
        raise ValueError("bounds must have lower <= upper in every dimension")
    return lower, upper


def qimad_minimize(fun: Callable[[torch.Tensor], torch.Tensor], bounds, *,
                   jac: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                   num_agents: int = 8, maxiter: int = 150, f_target: Optional[float] = None,
                   seed: Optional[int] = None, dtype: torch.dtype = torch.float64,
                   device=None, vectorized: bool = True,
                   callback: Optional[Callable[[int, float], Optional[bool]]] = None,
                   lr: float = 0.05, gamma: float = 0.05, k: float = 2, alpha_lr: float = 0.03,
                   beta_lr: float = 0.03, topology: str = "complete", attraction: float = 0.2,
                   stagnation: str = "personal", update_order: str = "sequential",
                   cooling: Optional[str] = None, total_steps: Optional[int] = None,
                   min_temp: float = 0.05, backend: str = "auto") -> QimadResult:
    """Minimise fun over the box bounds with a QIMAD swarm.

    fun: with vectorized=True (the default) a function of an (agents, d) tensor returning the
    (agents,) values, each depending on its own row only; with vectorized=False, of one (d,)
    point returning a scalar (called once per agent). jac: the gradient in the same form
    ((agents, d) -> (agents, d), or (d,) -> (d,)); autograd of fun when None. bounds: as
    scipy.optimize (see _box). The swarm lives on device (bounds' device by default) in dtype.
    Stops after maxiter iterations, once the best value is below f_target, or when
    callback(iteration, best) returns True. The other arguments are QIMADTorch's; the defaults
    are the published benchmark's dynamics (module docstring).

    >>> import torch
    >>> from sb_native.optim import qimad_minimize
    >>> sphere = lambda X: ((X - 0.5) ** 2).sum(1)
    >>> result = qimad_minimize(sphere, [(-2.0, 2.0)] * 3, seed=0, maxiter=200)
    >>> result.fun < 1e-4, result.nfev, result.nit, result.message
    (True, 1600, 200, 'maximum number of iterations reached')
    """
    if not isinstance(maxiter, int) or maxiter < 1:
        raise ValueError(f"maxiter must be a positive int, got {maxiter!r}")
    if device is None:
        device = next((b.device for b in (bounds if isinstance(bounds, (tuple, list)) else [])
                       if torch.is_tensor(b)), torch.device("cpu"))
    lower, upper = _box(bounds, dtype, device)
    x = torch.nn.Parameter((lower + upper) / 2)
    opt = QIMADTorch([x], num_agents=num_agents, lr=lr, gamma=gamma, k=k, alpha_lr=alpha_lr,
                     beta_lr=beta_lr, topology=topology, seed=seed, cooling=cooling,
                     total_steps=total_steps, min_temp=min_temp, bounds=(lower, upper),
                     init="uniform", attraction=attraction, stagnation=stagnation,
                     update_order=update_order, backend=backend)
    if vectorized:
        values, gradient = fun, jac
    else:
        def values(X):
            return torch.stack([torch.as_tensor(fun(row)) for row in X.unbind(0)])

        def per_row(X):
            return torch.stack([torch.as_tensor(jac(row)) for row in X.unbind(0)])

        gradient = None if jac is None else per_row
    history: List[float] = []
    status = 0
    for iteration in range(1, maxiter + 1):
        history.append(opt.step_vectorized(values, gradient))
        if f_target is not None and history[-1] < f_target:
            status = 1
            break
        if callback is not None and callback(iteration, history[-1]):
            status = 2
            break
    best = history[-1]
    if not torch.isfinite(torch.tensor(best)):
        status = -1
    evaluations = len(history) * num_agents
    return QimadResult(x=x.detach().clone(), fun=best, nfev=evaluations, njev=evaluations,
                       nit=len(history), success=status >= 0, status=status,
                       message=_MESSAGES[status], history=history)
