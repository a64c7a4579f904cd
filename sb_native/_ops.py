"""Loads the compiled extension `sb_native._C` and says which backend runs.

If the extension cannot be loaded (not built, ABI mismatch, disabled with
SB_NATIVE_DISABLE=1) the package still imports and every entry point runs on the
pure-torch path; `backend_info()["reason"]` records why.
"""

import os
from typing import Optional

import torch

_REASON: Optional[str] = None
if os.environ.get("SB_NATIVE_DISABLE", "") not in ("", "0"):
    _REASON = "disabled by the environment variable SB_NATIVE_DISABLE"
else:
    try:
        from . import _C  # noqa: F401  (registers the sb_native ops with the dispatcher)
    except Exception as err:  # any load failure must leave the pure-torch path usable
        _REASON = f"{type(err).__name__}: {err}"

NATIVE = _REASON is None

# The SB ops; each has a CPU kernel, and a CUDA kernel when built with CUDA.
OP_NAMES = ("sb_step", "sb_run", "sb_run_csr", "sb_run_int8", "sb_sample")
# QIMADTorch's ops; each has a CPU kernel, and a CUDA kernel when built with CUDA
# (qimad_angles and qimad_step: composites of ATen ops and the other ops there, registered for
# CUDA and for every other backend).
QIMAD_OP_NAMES = ("qimad_fidelity", "qimad_angles", "qimad_update", "qimad_step")


def _has_kernel(name: str, key: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"sb_native::{name}", key)


def cuda_built() -> bool:
    """True when the extension loaded and registers CUDA kernels for all its SB ops."""
    return NATIVE and all(_has_kernel(name, "CUDA") for name in OP_NAMES)


def backend_info() -> dict:
    """What can run here: native extension, its CUDA kernels, a usable GPU, and why not."""
    return {
        "native": NATIVE,
        "cuda": cuda_built(),
        "cuda_device": cuda_built() and torch.cuda.is_available(),
        "reason": _REASON,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def native_supports(device: torch.device) -> bool:
    if not NATIVE:
        return False
    if device.type == "cpu":
        return True
    return device.type == "cuda" and cuda_built()


def resolve_backend(backend: str, device: torch.device) -> str:
    """Map "auto" | "native" | "torch" to the backend that will run on `device`."""
    if backend == "torch":
        return "torch"
    if native_supports(device):
        return "native"
    if backend == "native":
        why = _REASON if not NATIVE else f"the extension has no kernel for device {device}"
        raise RuntimeError(
            f"backend='native' was requested but the native extension is unavailable: {why}"
        )
    return "torch"


if NATIVE:
    # Shape functions so the ops trace under torch.compile / FakeTensor; every op updates
    # its mutable arguments in place and returns nothing.
    @torch.library.register_fake("sb_native::sb_step")
    def _sb_step_fake(J, position, momentum, momentum_coef, position_coef,
                      quadratic_coef, heat_coef, discrete):
        return None

    @torch.library.register_fake("sb_native::sb_run")
    def _sb_run_fake(J, position, momentum, start_step, num_steps, time_step,
                     pressure_slope, quadratic_coef, heat_coef, discrete):
        return None

    @torch.library.register_fake("sb_native::sb_run_csr")
    def _sb_run_csr_fake(crow, col, values, position, momentum, start_step, num_steps,
                         time_step, pressure_slope, quadratic_coef, heat_coef, discrete):
        return None

    @torch.library.register_fake("sb_native::sb_run_int8")
    def _sb_run_int8_fake(K, scale, position, momentum, start_step, num_steps, time_step,
                          pressure_slope, quadratic_coef, heat_coef):
        return None

    @torch.library.register_fake("sb_native::sb_sample")
    def _sb_sample_fake(position, field, energies, stability, bifurcated, final_spins,
                        threshold):
        return None
