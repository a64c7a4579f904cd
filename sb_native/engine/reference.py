"""The torch reference of every SB op (schemas: csrc/sb/ops.cpp), step for step the kernels.

They run whenever the extension is absent or has no kernel for the device, and they are
the oracle the native ops are tested against; each takes the op's arguments by the
schema's names. For a dense coupling they perform the
exact tensor operations of simulated-bifurcation 2.0.0, so the torch backend reproduces
its results bit for bit under the same seed.
"""

import math
from typing import Optional

import torch

from .. import _sparse


def _couple(J, fx: torch.Tensor, momentum: torch.Tensor, quadratic_coef: float) -> torch.Tensor:
    if J.layout == torch.strided:
        return torch.addmm(momentum, J, fx, alpha=quadratic_coef)
    return momentum + quadratic_coef * (J @ fx)


def sb_step(J, position, momentum, momentum_coef, position_coef, quadratic_coef,
            heat_coef, discrete) -> None:
    """In place, like sb_native::sb_step. J is dense or a torch sparse CSR tensor."""
    start_momentum = momentum.clone() if heat_coef != 0.0 else None
    torch.add(momentum, position, alpha=momentum_coef, out=momentum)
    torch.add(position, momentum, alpha=position_coef, out=position)
    fx = torch.sign(position) if discrete else position
    momentum.copy_(_couple(J, fx, momentum, quadratic_coef))
    momentum[torch.abs(position) > 1.0] = 0.0
    torch.clip(position, -1.0, 1.0, out=position)
    if start_momentum is not None:
        torch.add(momentum, start_momentum, alpha=heat_coef, out=momentum)


def momentum_coefficient(time_step: float, step: int, pressure_slope: float) -> float:
    return time_step * (min(time_step * step * pressure_slope, 1.0) - 1.0)


def sb_run(J, position, momentum, start_step, num_steps, time_step, pressure_slope,
           quadratic_coef, heat_coef, discrete) -> None:
    """In place, like sb_native::sb_run (J dense, or a torch sparse CSR tensor)."""
    for step in range(start_step, start_step + num_steps):
        sb_step(J, position, momentum, momentum_coefficient(time_step, step, pressure_slope),
                time_step, quadratic_coef, heat_coef, discrete)


def sb_run_csr(crow_indices, col_indices, values, position, momentum, start_step, num_steps,
               time_step, pressure_slope, quadratic_coef, heat_coef, discrete) -> None:
    """In place, like sb_native::sb_run_csr."""
    n = position.shape[0]
    J = _sparse.csr_tensor(crow_indices, col_indices, values, (n, n))
    sb_run(J, position, momentum, start_step, num_steps, time_step, pressure_slope,
           quadratic_coef, heat_coef, discrete)


def sb_run_int8(K, scale, position, momentum, start_step, num_steps, time_step, pressure_slope,
                quadratic_coef, heat_coef) -> None:
    """In place, like sb_native::sb_run_int8: dSB on the coupling scale * K."""
    if not math.isfinite(scale):  # the kernel's check: it never forms scale * K
        raise ValueError(f"scale must be finite, got {scale}")
    J = K.to(position.dtype) * scale
    sb_run(J, position, momentum, start_step, num_steps, time_step, pressure_slope,
           quadratic_coef, heat_coef, True)


def sb_run_batched(J, position, momentum, active, start_step, num_steps, time_step,
                   pressure_slope, quadratic_coef, heat_coef, discrete) -> None:
    """In place, like sb_native::sb_run_batched: sb_run on each active problem of the batch
    (J (B, n, n), states (B, n, agents)). The element-wise updates run on the whole batch;
    the coupling term is sb_step's addmm problem by problem, whose rounding no batched
    product reproduces, so each problem's states are those of sb_run on it, bit for bit."""
    rows = torch.nonzero(active).reshape(-1)
    if rows.numel() == 0 or num_steps == 0:
        return
    J = J.index_select(0, rows)
    x, m = position.index_select(0, rows), momentum.index_select(0, rows)
    q = quadratic_coef.index_select(0, rows).tolist()
    for step in range(start_step, start_step + num_steps):
        m0 = m.clone() if heat_coef != 0.0 else None
        m.add_(x, alpha=momentum_coefficient(time_step, step, pressure_slope))
        x.add_(m, alpha=time_step)
        fx = torch.sign(x) if discrete else x
        for b, coefficient in enumerate(q):
            m[b] = _couple(J[b], fx[b], m[b], coefficient)
        m[torch.abs(x) > 1.0] = 0.0
        torch.clip(x, -1.0, 1.0, out=x)
        if m0 is not None:
            m.add_(m0, alpha=heat_coef)
    position.index_copy_(0, rows, x)
    momentum.index_copy_(0, rows, m)


def sample_spins(position: torch.Tensor) -> torch.Tensor:
    return torch.where(position >= 0.0, 1.0, -1.0).to(position.dtype)


def sb_sample(position, field, energies, stability, bifurcated, final_spins, threshold) -> None:
    """In place, like sb_native::sb_sample (the stop window of simulated-bifurcation 2.0.0)."""
    if not 1 <= threshold <= 32768:  # the kernel's check: threshold - 1 must fit int16
        raise ValueError(f"threshold must be in [1, 32768] (stability is int16), got {threshold}")
    new_energies = torch.sum(sample_spins(position) * field, dim=0)
    update_stop_window(new_energies, position, energies, stability, bifurcated, final_spins,
                       threshold)


def update_stop_window(new_energies, position, energies, stability, bifurcated, final_spins,
                       threshold) -> None:
    """The stop window's bookkeeping once the energies of position's spins are known: streaks
    of equal energies, and the spins (in final_spins' dtype) of the agents that froze now."""
    stable = new_energies == energies
    energies.copy_(new_energies)
    free = torch.logical_not(bifurcated)
    stability[torch.logical_and(stable, free)] += 1
    stability[torch.logical_and(torch.logical_not(stable), free)] = 0
    now = stability == threshold - 1
    newly = torch.logical_xor(now, bifurcated)
    final_spins[:, newly] = sample_spins(position[:, newly]).to(final_spins.dtype)
    bifurcated.copy_(now)


# Variables across ranks (engine/rows.py): a rank's rows of J times f(x) of every variable,
# gathered as positions, int8 signs or packed bits (csrc/sb/rows_math.h).

def unpack(gathered: torch.Tensor, agents: int, dtype: torch.dtype,
           agent: Optional[torch.Tensor] = None) -> torch.Tensor:
    """f(x) of every gathered row, (rows, agents) of dtype: packed bits as +-1, or 0 where a
    zero plane says so; only the columns of the agents indexed by `agent` when given."""
    if gathered.dtype != torch.int64:
        return gathered.to(dtype) if agent is None else gathered[:, agent].to(dtype)
    if agent is None:
        agent = torch.arange(agents, device=gathered.device)
    bits = (gathered[:, agent // 64] >> (agent % 64)) & 1
    signs = (2 * bits - 1).to(dtype)
    words = (agents + 63) // 64
    if gathered.shape[1] == 2 * words:  # a zero plane after the sign bits
        zero = (gathered[:, words + agent // 64] >> (agent % 64)) & 1
        signs = signs * (1 - zero).to(dtype)
    return signs


def _block_product(crow_indices, col_indices, values, gathered, agents: int) -> torch.Tensor:
    J = torch.sparse_csr_tensor(crow_indices, col_indices, values,
                                (crow_indices.numel() - 1, gathered.shape[0]))
    return J @ unpack(gathered, agents, values.dtype)


def sb_rows_step(crow_indices, col_indices, values, gathered, position, momentum,
                 start_momentum, momentum_coef, position_coef, quadratic_coef, heat_coef, finish,
                 begin, field=None, previous=None) -> None:
    """In place, like sb_native::sb_rows_step: finish a step on the block's rows, then begin
    the next. The product is taken whole even with previous: the kernel's incremental field
    equals it whenever the block's sums are exact, the case previous is for."""
    heated = heat_coef != 0.0
    if previous is not None and field is None:
        raise ValueError("previous needs a field (the product it was taken for)")
    if finish:
        product = _block_product(crow_indices, col_indices, values, gathered, position.shape[1])
        if field is not None:
            field.copy_(product)
        momentum.add_(product, alpha=quadratic_coef)
        momentum[torch.abs(position) > 1.0] = 0.0
        torch.clip(position, -1.0, 1.0, out=position)
        if heated:
            momentum.add_(start_momentum, alpha=heat_coef)
    if begin:
        if heated:
            start_momentum.copy_(momentum)
        momentum.add_(position, alpha=momentum_coef)
        position.add_(momentum, alpha=position_coef)


def sb_rows_pack(position, packed, spins) -> None:
    """In place, like sb_native::sb_rows_pack: one bit per agent, 64 to a word, and the
    count of signs one bit cannot carry in the last row."""
    rows, agents = position.shape
    if packed.shape[1] == 0:  # no agents: no words, not even the header's
        return
    bits = position >= 0 if spins else position > 0
    padded = torch.zeros((rows, packed.shape[1] * 64), dtype=torch.int64,
                         device=position.device)
    padded[:, :agents] = bits.to(torch.int64)
    weights = torch.ones(64, dtype=torch.int64, device=position.device) << torch.arange(
        64, device=position.device)
    packed[:rows] = (padded.reshape(rows, packed.shape[1], 64) * weights).sum(dim=2)
    packed[rows] = 0
    if not spins:
        packed[rows, 0] = int(torch.count_nonzero(~(position > 0) & ~(position < 0)))


def sb_rows_energy(crow_indices, col_indices, values, gathered, position, energies) -> None:
    """In place, like sb_native::sb_rows_energy: the block's share of the spins' energies."""
    field = _block_product(crow_indices, col_indices, values, gathered, position.shape[1])
    energies.copy_(torch.sum(sample_spins(position) * field, dim=0))


def sb_polish(crow_indices, col_indices, values, spins, field, max_sweeps) -> None:
    """In place, like sb_native::sb_polish: every agent's descent side by side, one variable at
    a time. Each agent flips and updates its field in the kernel's order, so the results are
    the kernel's bit for bit; an agent a sweep left unchanged stays so in later sweeps."""
    bounds = crow_indices.tolist()
    for _ in range(max_sweeps):
        flipped = False
        for i in range(spins.shape[0]):
            flip = spins[i] * field[i] < 0
            if not bool(flip.any()):
                continue
            flipped = True
            spins[i] = torch.where(flip, -spins[i], spins[i])
            lo, hi = bounds[i], bounds[i + 1]
            # Only the flipped agents' fields move (the kernel touches no other): a weight
            # times a zero delta would turn an infinite weight into NaN.
            change = values[lo:hi, None] * (2 * spins[i])[None, :]
            field.index_add_(0, col_indices[lo:hi], torch.where(flip[None, :], change, 0))
        if not flipped:
            break
