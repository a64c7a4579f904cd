"""The native op table: loads `sb_native._C`, lists every op, says what can run where.

If the extension cannot be loaded (not built, ABI mismatch, disabled with
SB_NATIVE_DISABLE=1) the package still imports and every entry point runs on the
pure-torch reference; `backend_info()["reason"]` records why. The per-op wrappers
(`sb_native.engine.ops`, `sb_native.optim.ops`) pick native or reference with `select`,
so no caller branches on the backend.
"""

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Tuple

import torch

_REASON: Optional[str] = None
if os.environ.get("SB_NATIVE_DISABLE", "") not in ("", "0"):
    _REASON = "disabled by the environment variable SB_NATIVE_DISABLE"
else:
    try:
        # Registers the sb_native ops with the dispatcher. The ignore: a compiled extension
        # without stubs, which mypy does not see as a submodule.
        from . import _C  # type: ignore[attr-defined]  # noqa: F401
    except Exception as err:  # any load failure must leave the pure-torch path usable
        _REASON = f"{type(err).__name__}: {err}"

NATIVE = _REASON is None


@dataclass(frozen=True)
class OpInfo:
    """One op of the sb_native library (schemas: csrc/sb/ops.cpp, csrc/qimad/ops.cpp)."""

    name: str
    algorithm: str  # "sb" or "qimad": the csrc folder and the Python package of its wrapper
    # A CPU kernel plus, for every other device, a CompositeExplicitAutograd kernel of ATen
    # ops and the other ops (csrc/qimad/composite.cpp), so the dispatcher reports no CUDA
    # kernel of its own; it runs wherever the ops it calls do.
    composite: bool = False


OPS: Tuple[OpInfo, ...] = (
    OpInfo("sb_step", "sb"),
    OpInfo("sb_run", "sb"),
    OpInfo("sb_run_csr", "sb"),
    OpInfo("sb_run_int8", "sb"),
    OpInfo("sb_run_batched", "sb"),
    OpInfo("sb_sample", "sb"),
    OpInfo("sb_polish", "sb"),
    OpInfo("sb_rows_step", "sb"),
    OpInfo("sb_rows_pack", "sb"),
    OpInfo("sb_rows_energy", "sb"),
    OpInfo("qimad_fidelity", "qimad"),
    OpInfo("qimad_angles", "qimad", composite=True),
    OpInfo("qimad_update", "qimad"),
    OpInfo("qimad_step", "qimad", composite=True),
)
_BY_NAME = {op.name: op for op in OPS}
_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


def op_names(algorithm: Optional[str] = None) -> Tuple[str, ...]:
    """Every op's name, or those of one algorithm ("sb" or "qimad")."""
    return tuple(op.name for op in OPS if algorithm in (None, op.algorithm))


def defined(name: str) -> bool:
    """True when the loaded extension declares the op (an old build may lack new ops)."""
    return NATIVE and hasattr(torch.ops.sb_native, name)


def _has_kernel(name: str, device_type: str) -> bool:
    key = _DISPATCH_KEYS.get(device_type)
    if key is None or not defined(name):
        return False
    if torch._C._dispatch_has_kernel_for_dispatch_key(f"sb_native::{name}", key):
        return True
    # A composite runs on a device whose ops it calls have kernels there.
    return _BY_NAME[name].composite and torch._C._dispatch_has_kernel_for_dispatch_key(
        f"sb_native::{name}", "CompositeExplicitAutograd")


def has_kernels(names: Iterable[str], device) -> bool:
    """True when every op in names is defined and runs natively on device's type."""
    device_type = torch.device(device).type
    return all(_has_kernel(name, device_type) for name in names)


def cuda_built() -> bool:
    """True when the extension loaded and registers CUDA kernels for every op."""
    return has_kernels(op_names(), "cuda")


def backend_info() -> dict:
    """What can run here: native extension, its CUDA kernels, a usable GPU, and why not.

    Keys: native (the extension loaded), cuda (it has CUDA kernels), cuda_device (and a GPU
    is usable), reason (why the extension did not load, else None), torch (its version),
    threads (torch's intra-op threads).

    >>> import sb_native as sb
    >>> info = sb.backend_info()
    >>> sorted(info)
    ['cuda', 'cuda_device', 'native', 'reason', 'threads', 'torch']
    >>> info["native"] == (info["reason"] is None)
    True
    """
    return {
        "native": NATIVE,
        "cuda": cuda_built(),
        "cuda_device": cuda_built() and torch.cuda.is_available(),
        "reason": _REASON,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def resolve_backend(backend: str, device, algorithm: str = "sb") -> str:
    """Map "auto" | "native" | "torch" to the backend that runs algorithm's ops on device."""
    if backend == "torch":
        return "torch"
    device = torch.device(device)
    if has_kernels(op_names(algorithm), device):
        return "native"
    if backend == "native":
        why = _REASON if not NATIVE else f"the extension has no kernel for device {device}"
        raise RuntimeError(
            f"backend='native' was requested but the native extension is unavailable: {why}"
        )
    return "torch"


def select(name: str, backend: str, reference: Callable) -> Callable:
    """The op's native overload when backend is "native", else its torch reference."""
    if backend == "native":
        return getattr(torch.ops.sb_native, name).default
    return reference


if NATIVE:
    from . import _fake  # noqa: F401,E402  (shape functions for torch.compile and opcheck)
