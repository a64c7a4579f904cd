"""Fake (meta) implementations of the QIMADTorch ops, so they trace under torch.compile and pass
torch.library.opcheck, and the test of which of their kernels this build registers."""

import torch

from .. import _ops


def defined(name: str) -> bool:
    # An extension built before the QIMADTorch ops were added loads fine but lacks them.
    return _ops.NATIVE and hasattr(torch.ops.sb_native, name)


def session_class():
    """The extension's QimadSession (csrc/python/qimad_session.cpp), or None without it."""
    if not _ops.NATIVE:
        return None
    from .. import _C
    return getattr(_C, "QimadSession", None)


def has_kernels(names, device: torch.device) -> bool:
    """True when every op in names is defined and has a kernel for device's type."""
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(torch.device(device).type)
    return key is not None and all(
        defined(name) and torch._C._dispatch_has_kernel_for_dispatch_key(f"sb_native::{name}", key)
        for name in names)


if defined("qimad_fidelity"):
    @torch.library.register_fake("sb_native::qimad_fidelity")
    def _qimad_fidelity_fake(alpha, beta, mask, k, eps):
        n = alpha.shape[0]
        return alpha.new_empty((n, n))

if defined("qimad_angles"):
    @torch.library.register_fake("sb_native::qimad_angles")
    def _qimad_angles_fake(alpha, beta, mask, k, normal, uniform, attract_on, alpha_step,
                           beta_step, eps, dtype):
        n = alpha.shape[0]
        return alpha.new_empty((len(k), n, n), dtype=dtype), alpha.new_empty((n,), dtype=dtype)

if defined("qimad_update"):
    @torch.library.register_fake("sb_native::qimad_update")
    def _qimad_update_fake(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta,
                           seg_gamma, seg_w, tunnel_rows, tunnel_noise, temperature, rms_decay,
                           eps, sequential=False):
        return None

if defined("qimad_step"):
    @torch.library.register_fake("sb_native::qimad_step")
    def _qimad_step_fake(theta, square_avg, grad, best, params, bucket_params, segments, seg_eta,
                         seg_gamma, seg_w, alpha, beta, mask, attract_on, can_tunnel, k, dtype,
                         agent_loss, agent_best, stagnation, best_loss, normal, uniform, step,
                         rows, losses, generator, temperature, alpha_step, beta_step, rms_decay,
                         eps, stagnation_limit, sequential=False):
        return torch.empty(alpha.shape[0], dtype=torch.int64, device="cpu")
