"""The QIMADTorch kernels, native or pure torch.

`fidelity`, `angles` and `update` call the native ops (csrc/cpu/qimad_*_cpu.cpp) when the
backend is "native" and otherwise their pure-torch mirrors below, which follow
csrc/qimad_math.h operation by operation on the same arguments; the tests use the mirrors as
the reference for the ops.
"""

import math
from typing import List, Sequence

import torch

from . import _native

# The ops with a kernel per device; qimad_angles has a CPU kernel and, for any other device, a
# composite of ATen ops and qimad_fidelity.
OP_NAMES = ("qimad_fidelity", "qimad_update")
ANGLES_OP = "qimad_angles"


def fidelity_torch(alpha: torch.Tensor, beta: torch.Tensor, mask: torch.Tensor, k: float,
                   eps: float) -> torch.Tensor:
    """Row-normalised fidelity matrix: W[i, j] = F_ij / (sum_l F_il + eps) on mask's edges."""
    half = alpha / 2
    s = torch.sin(half)[:, None] * torch.sin(half)[None, :]
    d = beta[None, :] - beta[:, None]
    re = torch.cos(half)[:, None] * torch.cos(half)[None, :] + torch.cos(d) * s
    im = torch.sin(d) * s
    raw = torch.where(mask, (re * re + im * im).pow(k / 2), torch.zeros((), dtype=alpha.dtype,
                                                                      device=alpha.device))
    return raw / (raw.sum(1, keepdim=True) + eps)


def angles_torch(alpha, beta, mask, k: Sequence[float], normal, uniform, attract_on,
                 alpha_step: float, beta_step: float, eps: float, dtype: torch.dtype):
    """Pure-torch qimad_angles: the fidelity matrices for the exponents k and the attraction
    coefficients (as dtype, from the angles before the step), then the angles' random walk in
    place. Returns (W, attract)."""
    W = torch.stack([fidelity_torch(alpha, beta, mask, kk, eps) for kk in k]).to(dtype)
    attract = (uniform[1] * attract_on).to(dtype)
    alpha.copy_((alpha + alpha_step * normal[0]).clamp(0.0, math.pi))
    beta.copy_(torch.remainder(beta + beta_step * normal[1], 2 * math.pi))
    return W, attract


def _runs(seg_w: List[int]):
    """Maximal runs [a, b) of consecutive segments sharing one fidelity matrix."""
    a = 0
    while a < len(seg_w):
        b = a + 1
        while b < len(seg_w) and seg_w[b] == seg_w[a]:
            b += 1
        yield a, b
        a = b


def _jump_scales(theta, tunnel_rows, bounds, temperature):
    """(tunnel rows, parameters): each parameter tensor's (mean |theta| * 0.8 + 0.1) * temp."""
    xt = theta.index_select(0, tunnel_rows)
    scales = torch.zeros_like(xt)
    for a, b in zip(bounds, bounds[1:]):
        if b > a:
            scales[:, a:b] = ((xt[:, a:b].abs().mean(1) * 0.8 + 0.1) * temperature)[:, None]
    return scales


def update_torch(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta, seg_gamma,
                 seg_w, tunnel_rows, tunnel_noise, temperature, rms_decay, eps) -> None:
    """Pure-torch qimad_update: same arguments, same in-place effect on theta and square_avg."""
    if rows.numel() == 0 or theta.shape[1] == 0:
        return
    bounds = segments.tolist()
    widx = seg_w.tolist()
    # theta is only written at the end, so every read below sees the positions before the step.
    W_rows = W.index_select(1, rows)
    if len(set(widx)) == 1:
        mix = W_rows[widx[0]] @ theta
    else:
        mix = theta.new_zeros(rows.numel(), theta.shape[1])
        for a, b in _runs(widx):
            c0, c1 = bounds[a], bounds[b]
            mix[:, c0:c1] = W_rows[widx[a]] @ theta[:, c0:c1]
    wsum = W_rows.sum(2)  # (matrices, rows)

    widths = segments.diff()
    col_eta = seg_eta.repeat_interleave(widths)
    col_gamma = seg_gamma.repeat_interleave(widths)
    col_wsum = wsum.index_select(0, seg_w.repeat_interleave(widths)).t()  # (rows, parameters)

    x = theta.index_select(0, rows)
    g = grad.index_select(0, rows)
    v_new = square_avg.index_select(0, rows) * rms_decay + (1 - rms_decay) * g * g
    delta = -(col_eta / (v_new.sqrt() + eps)) * g
    delta = delta + attract.index_select(0, rows)[:, None] * (best - x)
    delta = delta + col_gamma * (mix - col_wsum * x)
    x = x + delta
    if tunnel_rows.numel():  # the jump lands after the step, as in the kernel's second pass
        at = torch.searchsorted(rows, tunnel_rows)
        x[at] = x[at] + (tunnel_noise * 2 - 1) * _jump_scales(theta, tunnel_rows, bounds,
                                                             temperature)
    theta.index_copy_(0, rows, x)
    square_avg.index_copy_(0, rows, v_new)


def fidelity(alpha, beta, mask, k: float, eps: float, backend: str) -> torch.Tensor:
    if backend == "native":
        return torch.ops.sb_native.qimad_fidelity.default(alpha, beta, mask, float(k), eps)
    return fidelity_torch(alpha, beta, mask, k, eps)


def angles(backend: str, *args):
    if backend == "native":
        return torch.ops.sb_native.qimad_angles.default(*args)
    return angles_torch(*args)


def update(backend: str, *args) -> None:
    if backend == "native":
        torch.ops.sb_native.qimad_update.default(*args)
    else:
        update_torch(*args)


def native_available(device: torch.device) -> bool:
    return _native.has_kernels(OP_NAMES, device) and _native.defined(ANGLES_OP)
