"""How QIMADTorch's steps call user code: the step() hook wrapper, reading a closure's loss,
collecting a gradient a closure left elsewhere, and step_batched's functional form of a module's
loss."""

import functools
import numbers
from typing import Any, Callable, Dict, List, Optional, TypeVar, cast

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

_Step = TypeVar("_Step", bound=Callable[..., Any])


def step_hooks(step: _Step) -> _Step:
    """step() as torch.optim.Optimizer.profile_hook_step runs it (step pre and post hooks inside
    a profiler range), except that the range is only opened while a profiler records or there
    are hooks to call: its code is cold after the closures, so on the digits benchmark it
    costs a sizeable share of QIMADTorch's own time per step (the outside-closure time in
    bench/RESULTS.md). `hooked` tells Optimizer not to wrap step() again."""
    profiled = torch.optim.Optimizer.profile_hook_step(step)

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if (torch.autograd._profiler_enabled() or self._optimizer_step_pre_hooks
                or self._optimizer_step_post_hooks or _global_optimizer_pre_hooks
                or _global_optimizer_post_hooks):
            return profiled(self, *args, **kwargs)
        return step(self, *args, **kwargs)
    cast(Any, wrapper).hooked = True  # a function attribute, which typeshed doesn't model
    return cast(_Step, wrapper)  # functools.wraps: step's signature


CLOSURE_LOSS = "the closure must return the loss, a one-element tensor or a number"


def loss_value(loss) -> float:
    """loss.item(), read with tolist() when loss is a 0-dim float tensor: tolist() takes no
    dispatcher call, which per agent costs most right after a closure has evicted the caches
    (the outside-closure time in bench/RESULTS.md)."""
    if isinstance(loss, torch.Tensor):
        value = loss.tolist()
        return value if isinstance(value, float) else loss.item()
    if not isinstance(loss, numbers.Real):
        raise TypeError(f"{CLOSURE_LOSS}, got {type(loss).__name__}")
    return float(loss)


def session_step(session, closure, *args):
    """QimadSession.step(closure, *args): its C++ loop reads each loss as loss_value does, and
    pybind11's cast error on anything else ("Unable to cast") becomes loss_value's TypeError."""
    try:
        return session.step(closure, *args)
    except RuntimeError as error:
        if "Unable to cast" not in str(error):
            raise
        raise TypeError(CLOSURE_LOSS) from None


@torch.no_grad()
def collect_grad(found: Optional[torch.Tensor], row: torch.Tensor) -> None:
    """The closure set a gradient to None or replaced it: its row gets what it left."""
    if found is None:
        row.zero_()
    else:
        row.copy_(found)


def functional_loss(loss_fn: Callable, module: torch.nn.Module,
                    ours: List[torch.Tensor]) -> Callable:
    """fn(*params) = loss_fn(forward), forward running module with the tensors params in place
    of its parameters ours (torch.func.functional_call); its other parameters and its buffers
    are passed through."""
    names = {id(p): name for name, p in module.named_parameters(remove_duplicate=False)}
    missing = [i for i, p in enumerate(ours) if id(p) not in names]
    if missing:
        raise ValueError(f"module does not own {len(missing)} of the optimizer's parameters")
    our_names = [names[id(p)] for p in ours]
    fixed: Dict[str, torch.Tensor] = {name: t for name, t in module.named_parameters()
                                      if name not in set(our_names)}
    fixed.update(module.named_buffers())

    def fn(*params):
        tensors = dict(fixed)
        tensors.update(zip(our_names, params))
        return loss_fn(lambda *args, **kwargs: torch.func.functional_call(
            module, tensors, args, kwargs))
    return fn
