"""Argument validation shared by every entry point, run before any solver code.

Each error names the argument it is about. Where simulated-bifurcation 2.0.0 raises
its own message for the same mistake, that message is kept word for word.
"""

import math
import numbers
from typing import Any, Optional, Union, cast

import torch

BACKENDS = ("auto", "native", "torch")
MODES = ("ballistic", "discrete")
INT64_MAX = 2**63 - 1
# torch.Generator.manual_seed's range: negative seeds are taken modulo 2**64.
SEED_MIN, SEED_MAX = -2**63, 2**64 - 1


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not _is_int(value):
        raise TypeError(f"{name} should be an integer, received {value!r}.")
    if value <= 0:
        raise ValueError(f"{name} should be a positive integer, received {value}.")


def check_convergence_threshold(value) -> None:
    if not _is_int(value):
        raise TypeError(
            f"convergence_threshold should be an integer, received {value}."
        )
    if value <= 0:
        raise ValueError(
            f"convergence_threshold should be a positive integer, received {value}."
        )
    limit = torch.iinfo(torch.int16).max
    if value > limit:
        raise ValueError(
            "convergence_threshold should be less than or equal to "
            f"{limit}, received {value}."
        )


def check_timeout(value) -> None:
    if value is None:
        return
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"timeout should be a number of seconds or None, received {value!r}.")
    # cast: typeshed's numbers.Real has no `>= int` (it compares as a float; NaN fails).
    if not cast(float, value) >= 0:
        raise ValueError(f"timeout should be non-negative, received {value}.")


def check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, numbers.Integral)):
        raise TypeError(f"{name} should be a boolean, received {value!r}.")


def check_mode(mode) -> None:
    if mode not in MODES:
        raise ValueError(
            f"Unknwown Simulated Bifurcation engine: {mode}. "
            'The argument mode must be "ballistic" or "discrete".'
        )


def check_run_settings(mode, agents, max_steps, time_step, heated) -> None:
    """A preset's or solve_within's Settings: checked when made, not at the first run, which
    would fail deep in the ops (agents=0 in an argmax, a time step of 0 in the pressure
    slope, an unknown mode run as bSB)."""
    check_mode(mode)
    check_positive_int("agents", agents)
    check_positive_int("max_steps", max_steps)
    if isinstance(time_step, bool) or not isinstance(time_step, numbers.Real) \
            or not (math.isfinite(time_step) and float(time_step) > 0):
        raise ValueError(f"time_step should be a positive number, got {time_step!r}.")
    check_bool("heated", heated)


def check_backend(backend) -> None:
    if backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of 'auto', 'native' or 'torch', received {backend!r}."
        )


def check_seed(seed) -> None:
    if seed is not None and not _is_int(seed):
        raise TypeError(f"seed should be an integer or None, received {seed!r}.")
    # Beyond manual_seed's range torch's own error is "Overflow when unpacking long long",
    # raised once the problem is built.
    if seed is not None and not SEED_MIN <= seed <= SEED_MAX:
        raise ValueError(f"seed should be between -2**63 and 2**64 - 1 (torch's seed range), "
                         f"received {seed}.")


def check_callback(callback) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"Expected callback to be a callable or None, "
                        f"instead got {type(callback).__name__}.")


def check_process_group(process_group) -> None:
    """process_group: None, False, True (the default group, torch.distributed initialised) or
    a ProcessGroup this rank belongs to."""
    import torch.distributed as dist
    if process_group is None or isinstance(process_group, bool):
        if process_group and not (dist.is_available() and dist.is_initialized()):
            raise ValueError("process_group=True needs torch.distributed initialised "
                             "(torch.distributed.init_process_group, or a torchrun launch).")
    elif (_is_int(process_group) and dist.is_available()
          and process_group == dist.GroupMember.NON_GROUP_MEMBER):
        raise ValueError("process_group: this rank is not a member of the group "
                         "(torch.distributed.new_group returned GroupMember.NON_GROUP_MEMBER "
                         "here); call the solver on the group's ranks only.")
    elif not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
        raise TypeError("process_group should be a torch.distributed ProcessGroup, True (the "
                        f"default group) or None, received {process_group!r}.")
    elif not dist.is_initialized():
        raise ValueError("process_group: torch.distributed is not initialised (or its default "
                         "group was destroyed); a ProcessGroup needs init_process_group first.")


def safe_get_dtype(dtype: Optional[torch.dtype]) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if dtype == torch.float32 or dtype == torch.float64:
        return dtype
    raise ValueError(
        "The Simulated Bifurcation algorithm can only run with a torch.float32 or a "
        "torch.float64 dtype."
    )


def safe_get_device(device: Optional[Union[str, torch.device]]) -> torch.device:
    if device is None:
        return torch.get_default_device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device should be a string or a torch.device, received {device!r}.")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a valid torch device: {err}") from None
    check_device_available(resolved)
    return resolved


def check_device_available(device: torch.device, name: str = "device") -> None:
    """A device the solvers can compute on: not meta (no data), and for a backend torch can
    query (cuda, xpu, mps...), one it has, with that index. Unavailable ones otherwise fail at
    the first allocation, with torch's AssertionError or a CUDA "invalid device ordinal"."""
    if device.type == "meta":
        raise ValueError(f"{name}: meta tensors hold no values; use cpu or a GPU.")
    module: Any = getattr(torch, device.type, None)
    if device.type == "cpu" or not callable(getattr(module, "is_available", None)):
        return
    if not module.is_available():
        raise ValueError(f"{name} {str(device)!r} is not available: torch.{device.type}."
                         "is_available() is False (no such device, or this torch is not built "
                         "for it).")
    count = getattr(module, "device_count", None)
    if device.index is not None and callable(count) and device.index >= count():
        raise ValueError(f"{name} {str(device)!r} is not available: torch.{device.type} has "
                         f"{count()} device(s).")


def check_solver_arguments(
    *,
    agents,
    max_steps,
    best_only,
    mode,
    heated,
    verbose,
    early_stopping,
    sampling_period,
    convergence_threshold,
    timeout,
    backend,
    seed,
    process_group,
    callback,
    polish,
) -> None:
    """Validate every solver argument; raises before anything is allocated."""
    check_positive_int("agents", agents)
    check_positive_int("max_steps", max_steps, allow_none=True)
    check_bool("best_only", best_only)
    check_mode(mode)
    check_bool("heated", heated)
    check_bool("verbose", verbose)
    check_bool("early_stopping", early_stopping)
    check_positive_int("sampling_period", sampling_period)
    if sampling_period > INT64_MAX:  # agents' and max_steps' bound: _memory.check_run
        raise ValueError("sampling_period should be at most 2**63 - 1 (the ops count steps in "
                         f"int64), received {sampling_period}.")
    check_convergence_threshold(convergence_threshold)
    check_timeout(timeout)
    check_backend(backend)
    check_seed(seed)
    check_process_group(process_group)
    check_callback(callback)
    check_bool("polish", polish)
    if max_steps is None and timeout is None and not early_stopping:
        raise ValueError("No stopping criterion provided.")
