"""Fake (meta) kernels of every sb_native op, so they trace under torch.compile / FakeTensor
and pass torch.library.opcheck. Imported by `_ops` once the extension has loaded; an op an
older build lacks gets no fake."""

import torch

from . import _ops


def _fake(name: str):
    def register(function):
        if _ops.defined(name):
            torch.library.register_fake(f"sb_native::{name}")(function)
        return function
    return register


# The SB ops update their mutable arguments in place and return nothing.

@_fake("sb_step")
def sb_step(J, position, momentum, momentum_coef, position_coef, quadratic_coef, heat_coef,
            discrete):
    return None


@_fake("sb_run")
def sb_run(J, position, momentum, start_step, num_steps, time_step, pressure_slope,
           quadratic_coef, heat_coef, discrete):
    return None


@_fake("sb_run_csr")
def sb_run_csr(crow_indices, col_indices, values, position, momentum, start_step, num_steps,
               time_step, pressure_slope, quadratic_coef, heat_coef, discrete):
    return None


@_fake("sb_run_batched")
def sb_run_batched(J, position, momentum, active, start_step, num_steps, time_step,
                   pressure_slope, quadratic_coef, heat_coef, discrete):
    return None


@_fake("sb_run_int8")
def sb_run_int8(K, scale, position, momentum, start_step, num_steps, time_step, pressure_slope,
                quadratic_coef, heat_coef):
    return None


@_fake("sb_sample")
def sb_sample(position, field, energies, stability, bifurcated, final_spins, threshold):
    return None


@_fake("sb_polish")
def sb_polish(crow_indices, col_indices, values, spins, field, max_sweeps):
    return None


@_fake("sb_rows_step")
def sb_rows_step(crow_indices, col_indices, values, gathered, position, momentum,
                 start_momentum, momentum_coef, position_coef, quadratic_coef, heat_coef, finish,
                 begin, field=None, previous=None):
    return None


@_fake("sb_rows_pack")
def sb_rows_pack(position, packed, spins):
    return None


@_fake("sb_rows_energy")
def sb_rows_energy(crow_indices, col_indices, values, gathered, position, energies):
    return None


@_fake("qimad_fidelity")
def qimad_fidelity(alpha, beta, mask, k, eps):
    n = alpha.shape[0]
    return alpha.new_empty((n, n))


@_fake("qimad_angles")
def qimad_angles(alpha, beta, mask, k, normal, uniform, attract_on, alpha_step, beta_step, eps,
                 dtype):
    n = alpha.shape[0]
    return alpha.new_empty((len(k), n, n), dtype=dtype), alpha.new_empty((n,), dtype=dtype)


@_fake("qimad_update")
def qimad_update(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta, seg_gamma,
                 seg_w, tunnel_rows, tunnel_noise, temperature, rms_decay, eps, sequential=False,
                 bounds=None, first=0):
    return None


@_fake("qimad_step")
def qimad_step(theta, square_avg, grad, best, params, bucket_params, segments, seg_eta,
               seg_gamma, seg_w, alpha, beta, mask, attract_on, can_tunnel, k, dtype, agent_loss,
               agent_best, stagnation, best_loss, normal, uniform, step, rows, losses, generator,
               temperature, alpha_step, beta_step, rms_decay, eps, stagnation_limit, bounds,
               global_stagnation, sequential=False, first=0):
    # The fates live on the CPU whatever the swarm's device (the records are CPU tensors).
    return torch.empty(alpha.shape[0], dtype=torch.int64, device="cpu")
