"""One thin wrapper per QIMADTorch op: the native kernel or its torch reference, chosen by backend.

Each takes the op's arguments by the schema's names (csrc/qimad/ops.cpp; a test ties them), plus the
keyword `backend` ("native" or "torch", from `_ops.resolve_backend(..., algorithm="qimad")`).
"""

from .. import _ops
from . import _reference


def qimad_fidelity(alpha, beta, mask, k, eps, *, backend: str):
    return _ops.select("qimad_fidelity", backend, _reference.qimad_fidelity)(
        alpha, beta, mask, k, eps)


def qimad_angles(alpha, beta, mask, k, normal, uniform, attract_on, alpha_step, beta_step, eps,
                 dtype, *, backend: str):
    return _ops.select("qimad_angles", backend, _reference.qimad_angles)(
        alpha, beta, mask, k, normal, uniform, attract_on, alpha_step, beta_step, eps, dtype)


def qimad_update(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta, seg_gamma,
                 seg_w, tunnel_rows, tunnel_noise, temperature, rms_decay, eps, sequential=False,
                 bounds=None, first=0, *, backend: str) -> None:
    _ops.select("qimad_update", backend, _reference.qimad_update)(
        theta, square_avg, grad, best, W, rows, attract, segments, seg_eta, seg_gamma, seg_w,
        tunnel_rows, tunnel_noise, temperature, rms_decay, eps, sequential, bounds, first)


def qimad_step(theta, square_avg, grad, best, params, bucket_params, segments, seg_eta,
               seg_gamma, seg_w, alpha, beta, mask, attract_on, can_tunnel, k, dtype, agent_loss,
               agent_best, stagnation, best_loss, normal, uniform, step, rows, losses, generator,
               temperature, alpha_step, beta_step, rms_decay, eps, stagnation_limit, bounds,
               global_stagnation, sequential=False, first=0, *, backend: str):
    return _ops.select("qimad_step", backend, _reference.qimad_step)(
        theta, square_avg, grad, best, params, bucket_params, segments, seg_eta, seg_gamma,
        seg_w, alpha, beta, mask, attract_on, can_tunnel, k, dtype, agent_loss, agent_best,
        stagnation, best_loss, normal, uniform, step, rows, losses, generator, temperature,
        alpha_step, beta_step, rms_decay, eps, stagnation_limit, bounds, global_stagnation,
        sequential, first)
