"""QIMADTorch's parameter groups: the learning-rate key, box bounds and what the swarm's
hyperparameters are rebuilt from.

The learning rate is the group key "lr", as in every torch.optim optimizer, so that
torch.optim.lr_scheduler drives it; "eta", the seed's name, is accepted wherever a group is
given or written (docs/qimad.md, "Learning rate and schedulers").
"""

import math
import numbers
from typing import Dict, List, Optional

import torch


def take_eta(group: dict, where: Optional[str] = None) -> None:
    """Moves a group's "eta" to "lr". Where a group is given (where names it), both given and
    different is a ValueError; in a group already held, eta was written after lr: it wins."""
    if "eta" not in group:
        return
    eta = group.pop("eta")
    if where is not None and "lr" in group and group["lr"] != eta:
        raise ValueError(f"{where} sets both lr={group['lr']!r} and eta={eta!r}; eta is the "
                         "old name of lr: give one of them")
    group["lr"] = eta


def check_bounds(bounds, where: str = "bounds") -> None:
    """bounds: None or a pair (lower, upper) of floats or tensors, lower <= upper, no NaN."""
    if bounds is None:
        return
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"{where} must be None or a pair (lower, upper), got {bounds!r}")
    lower, upper = (torch.as_tensor(b, dtype=torch.float64) for b in bounds)
    if lower.isnan().any() or upper.isnan().any():
        raise ValueError(f"{where} must not hold NaN")
    try:
        ordered = bool((lower <= upper).all())
    except RuntimeError as error:  # shapes that do not broadcast
        raise ValueError(f"{where}: lower and upper do not broadcast: {error}") from None
    if not ordered:
        raise ValueError(f"{where} must have lower <= upper everywhere")


def bounds_key(bounds) -> Optional[tuple]:
    """What tells a group's bounds from its earlier ones: floats, or each tensor's identity and
    version (a tensor changed in place counts as new)."""
    if bounds is None:
        return None
    return tuple((id(b), b._version) if torch.is_tensor(b)
                 else tuple(torch.as_tensor(b, dtype=torch.float64).reshape(-1).tolist())
                 for b in bounds)


def column_box(params: List[torch.Tensor], group_of: List[int],
               groups: List[dict]) -> Optional[torch.Tensor]:
    """The (2, P) box [lower; upper] of a bucket's columns (params in column order, group_of[j]
    the group index of params[j]): each parameter's group bounds broadcast to its shape, +-inf
    where a group has none; None when no group of the bucket has bounds."""
    if all(groups[g].get("bounds") is None for g in group_of):
        return None
    ref = params[0]
    rows: Dict[int, List[torch.Tensor]] = {0: [], 1: []}
    for p, g in zip(params, group_of):
        bounds = groups[g].get("bounds")
        for side, default in ((0, -math.inf), (1, math.inf)):
            value = default if bounds is None else bounds[side]
            value = torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
            try:
                rows[side].append(value.broadcast_to(p.shape).reshape(-1))
            except RuntimeError:
                raise ValueError(f"bounds of shape {tuple(value.shape)} do not broadcast to a "
                                 f"parameter of shape {tuple(p.shape)}") from None
    return torch.stack([torch.cat(rows[0]), torch.cat(rows[1])]).contiguous()


def hyper_key(groups: List[dict]) -> tuple:
    """The groups' values the swarm's hyperparameters are built from: a step rebuilds them
    when this changes (a scheduler's new lr, a write to gamma, k or bounds)."""
    for g in groups:
        take_eta(g)
    return tuple((g["lr"], g["gamma"], g["k"], g["attraction"], bounds_key(g.get("bounds")))
                 for g in groups)


def check_uniform_init(groups: List[dict]) -> None:
    """init='uniform' needs finite bounds on every group with a trainable parameter."""
    for g in groups:
        bounds = g["bounds"]
        finite = bounds is not None and all(
            bool(torch.isfinite(torch.as_tensor(b, dtype=torch.float64)).all()) for b in bounds)
        if not finite and any(p.requires_grad for p in g["params"]):
            raise ValueError("init='uniform' needs finite bounds=(lower, upper) for every "
                             "parameter group")


def spread(buckets, groups: List[dict], generator: torch.Generator) -> None:
    """Every agent uniform in its box (init='uniform'), bucket after bucket, from generator."""
    for b in buckets:
        box = column_box(b.params, b.groups, groups)
        assert box is not None  # check_uniform_init: every parameter has finite bounds
        u = torch.rand(b.theta.shape, generator=generator, device=generator.device,
                       dtype=b.dtype).to(b.device)
        b.theta.copy_(box[0] + (box[1] - box[0]) * u)


_STAGNATIONS = ("personal", "global")
_INITS = ("model", "uniform")
_TOPOLOGIES = ("complete", "ring", "grid", "random")
_COOLINGS = ("cosine", "linear", "exponential", None)
_BACKENDS = ("auto", "native", "torch")
_UPDATE_ORDERS = ("synchronous", "sequential")


def check_options(group: dict, *, backend: str, update_order: str) -> None:
    """QIMADTorch's constructor arguments (its defaults group, and the two kept apart)."""
    check_counts(group)
    for key, value, choices in (("topology", group["topology"], _TOPOLOGIES),
                                ("cooling", group["cooling"], _COOLINGS),
                                ("backend", backend, _BACKENDS),
                                ("update_order", update_order, _UPDATE_ORDERS)):
        if value not in choices:
            raise ValueError(f"{key} must be one of {choices}, got {value!r}")
    check_numbers(group, GROUP_NUMBERS + SWARM_NUMBERS)
    check_swarm_options(group)


# The settings that are numbers >= 0: each group's (GROUP_NUMBERS may differ per group) and
# the swarm's.
GROUP_NUMBERS = ("lr", "gamma", "k")
SWARM_NUMBERS = ("alpha_lr", "beta_lr", "min_temp", "attraction")


def check_numbers(group: dict, keys) -> None:
    """Each of keys a finite real >= 0 (a NaN would pass every comparison and spread through
    the swarm; a string fails deep in the step)."""
    for key in keys:
        value = group[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not (math.isfinite(value) and float(value) >= 0):
            raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")


def check_counts(group: dict) -> None:
    """num_agents, k_eval (None: every agent) and total_steps (None: no cooling horizon) as
    positive ints; a float k_eval used to be truncated and a bool taken as 1."""
    for key, optional in (("num_agents", False), ("k_eval", True), ("total_steps", True)):
        value = group[key]
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{key} must be {'None or ' if optional else ''}a positive int, "
                             f"got {value!r}")


def check_swarm_options(group: dict) -> None:
    """The swarm settings beyond the seed's: init, attraction, stagnation and loss_ema."""
    if group["stagnation"] not in _STAGNATIONS:
        raise ValueError(f"stagnation must be one of {_STAGNATIONS}, got {group['stagnation']!r}")
    if group["init"] not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {group['init']!r}")
    check_numbers(group, ("attraction",))
    ema = group["loss_ema"]
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float))
                            or not 0 <= ema < 1):
        raise ValueError(f"loss_ema must be None or a float in [0, 1), got {ema!r}")


def structure_key(group: dict) -> tuple:
    """The swarm settings the runtime (the native session) is built for: a change rebuilds it."""
    return (group["stagnation"], group["loss_ema"] is None)
