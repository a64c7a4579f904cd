"""One thin wrapper per SB op: the native kernel or its torch reference, chosen by backend.

Each takes the op's arguments by the schema's names (csrc/sb/ops.cpp; a test ties them),
plus the keyword `backend` ("native" or "torch", from `_ops.resolve_backend`).
"""

from .. import _ops
from . import reference


def sb_step(J, position, momentum, momentum_coef, position_coef, quadratic_coef, heat_coef,
            discrete, *, backend: str) -> None:
    _ops.select("sb_step", backend, reference.sb_step)(
        J, position, momentum, momentum_coef, position_coef, quadratic_coef, heat_coef,
        discrete)


def sb_run(J, position, momentum, start_step, num_steps, time_step, pressure_slope,
           quadratic_coef, heat_coef, discrete, *, backend: str) -> None:
    _ops.select("sb_run", backend, reference.sb_run)(
        J, position, momentum, start_step, num_steps, time_step, pressure_slope,
        quadratic_coef, heat_coef, discrete)


def sb_run_csr(crow_indices, col_indices, values, position, momentum, start_step, num_steps,
               time_step, pressure_slope, quadratic_coef, heat_coef, discrete, *,
               backend: str) -> None:
    _ops.select("sb_run_csr", backend, reference.sb_run_csr)(
        crow_indices, col_indices, values, position, momentum, start_step, num_steps,
        time_step, pressure_slope, quadratic_coef, heat_coef, discrete)


def sb_run_int8(K, scale, position, momentum, start_step, num_steps, time_step, pressure_slope,
                quadratic_coef, heat_coef, *, backend: str) -> None:
    _ops.select("sb_run_int8", backend, reference.sb_run_int8)(
        K, scale, position, momentum, start_step, num_steps, time_step, pressure_slope,
        quadratic_coef, heat_coef)


def sb_run_batched(J, position, momentum, active, start_step, num_steps, time_step,
                   pressure_slope, quadratic_coef, heat_coef, discrete, *, backend: str) -> None:
    _ops.select("sb_run_batched", backend, reference.sb_run_batched)(
        J, position, momentum, active, start_step, num_steps, time_step, pressure_slope,
        quadratic_coef, heat_coef, discrete)


def sb_sample(position, field, energies, stability, bifurcated, final_spins, threshold, *,
              backend: str) -> None:
    _ops.select("sb_sample", backend, reference.sb_sample)(
        position, field, energies, stability, bifurcated, final_spins, threshold)


def sb_polish(crow_indices, col_indices, values, spins, field, max_sweeps, *,
              backend: str) -> None:
    _ops.select("sb_polish", backend, reference.sb_polish)(
        crow_indices, col_indices, values, spins, field, max_sweeps)


def sb_rows_step(crow_indices, col_indices, values, gathered, position, momentum,
                 start_momentum, momentum_coef, position_coef, quadratic_coef, heat_coef, finish,
                 begin, field=None, previous=None, *, backend: str) -> None:
    _ops.select("sb_rows_step", backend, reference.sb_rows_step)(
        crow_indices, col_indices, values, gathered, position, momentum, start_momentum,
        momentum_coef, position_coef, quadratic_coef, heat_coef, finish, begin, field, previous)


def sb_rows_pack(position, packed, spins, *, backend: str) -> None:
    _ops.select("sb_rows_pack", backend, reference.sb_rows_pack)(position, packed, spins)


def sb_rows_energy(crow_indices, col_indices, values, gathered, position, energies, *,
                   backend: str) -> None:
    _ops.select("sb_rows_energy", backend, reference.sb_rows_energy)(
        crow_indices, col_indices, values, gathered, position, energies)
