"""Argument validation shared by every entry point, run before any solver code.

Each error names the argument it is about. Where simulated-bifurcation 2.0.0 raises
its own message for the same mistake, that message is kept word for word.
"""

import numbers
from typing import Optional, Union, cast

import torch

BACKENDS = ("auto", "native", "torch")
MODES = ("ballistic", "discrete")


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


def check_backend(backend) -> None:
    if backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of 'auto', 'native' or 'torch', received {backend!r}."
        )


def check_seed(seed) -> None:
    if seed is not None and not _is_int(seed):
        raise TypeError(f"seed should be an integer or None, received {seed!r}.")


def check_process_group(process_group) -> None:
    import torch.distributed as dist
    if process_group is None or isinstance(process_group, bool):
        if process_group and not (dist.is_available() and dist.is_initialized()):
            raise ValueError("process_group=True needs torch.distributed initialised "
                             "(torch.distributed.init_process_group, or a torchrun launch).")
        return
    if not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
        raise TypeError("process_group should be a torch.distributed ProcessGroup, True (the "
                        f"default group) or None, received {process_group!r}.")


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
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a valid torch device: {err}") from None


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
    check_convergence_threshold(convergence_threshold)
    check_timeout(timeout)
    check_backend(backend)
    check_seed(seed)
    check_process_group(process_group)
    if callback is not None and not callable(callback):
        raise TypeError(f"Expected callback to be a callable or None, "
                        f"instead got {type(callback).__name__}.")
    check_bool("polish", polish)
    if max_steps is None and timeout is None and not early_stopping:
        raise ValueError("No stopping criterion provided.")
