"""The torch reference of every QIMADTorch op (schemas: csrc/qimad/ops.cpp), step for step
the kernels.

Each function is named after its op and takes the op's arguments by the schema's names (a test
ties them); `sb_native.optim.ops` runs it on the torch backend. They follow the kernels
(csrc/qimad/math.h, csrc/qimad/angles.h, csrc/qimad/step.h) operation by operation on the same
arguments, and the tests use them as the reference for the native ops.
"""

import math
from typing import List, Sequence

import torch


def qimad_fidelity(alpha: torch.Tensor, beta: torch.Tensor, mask: torch.Tensor, k: float,
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


def qimad_angles(alpha, beta, mask, k: Sequence[float], normal, uniform, attract_on,
                 alpha_step: float, beta_step: float, eps: float, dtype: torch.dtype):
    """Pure-torch qimad_angles: the fidelity matrices for the exponents k and the attraction
    coefficients (as dtype, from the angles before the step), then the angles' random walk in
    place. Returns (W, attract)."""
    W = torch.stack([qimad_fidelity(alpha, beta, mask, kk, eps) for kk in k]).to(dtype)
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


def _jump_scales(theta, tunnel_rows, columns, temperature):
    """(tunnel rows, parameters): each parameter tensor's (mean |theta| * 0.8 + 0.1) * temp,
    the mean taken in float64 as the kernels take it (a float32 sum of large weights would
    overflow where theirs does not)."""
    xt = theta.index_select(0, tunnel_rows)
    scales = torch.zeros_like(xt)
    for a, b in zip(columns, columns[1:]):
        if b > a:
            mean = xt[:, a:b].abs().to(torch.float64).mean(1).to(xt.dtype)
            scales[:, a:b] = ((mean * 0.8 + 0.1) * temperature)[:, None]
    return scales


def _box_jump_scales(scales, bounds, temperature):
    """scales with each column of finite span at 0.4 * span * temperature (math.h's
    box_jump_scale)."""
    span = bounds[1] - bounds[0]
    return torch.where(torch.isfinite(span), 0.4 * span * temperature, scales)


def _clip(x, bounds):
    """x clipped to the box, as math.h's clip (a NaN stays NaN)."""
    lower, upper = bounds[0], bounds[1]
    return torch.where(x < lower, lower, torch.where(x > upper, upper, x))


def qimad_update(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta, seg_gamma,
                 seg_w, tunnel_rows, tunnel_noise, temperature, rms_decay, eps,
                 sequential=False, bounds=None, first=0) -> None:
    """Pure-torch qimad_update: same arguments, same in-place effect on theta and square_avg."""
    if rows.numel() == 0 or theta.shape[1] == 0:
        return
    if sequential:  # the synchronous update of one row at a time, in row order
        tunnels = tunnel_rows.tolist()
        for k, r in enumerate(rows.tolist()):
            t = tunnels.index(r) if r in tunnels else len(tunnels)
            qimad_update(theta, square_avg, grad, best, W, rows[k:k + 1], attract, segments,
                         seg_eta, seg_gamma, seg_w, tunnel_rows[t:t + 1], tunnel_noise[t:t + 1],
                         temperature, rms_decay, eps, bounds=bounds, first=first)
        return
    columns = segments.tolist()
    widx = seg_w.tolist()
    # theta is only written at the end, so every read below sees the positions before the step.
    W_rows = W.index_select(1, rows)
    if len(set(widx)) == 1:
        mix = W_rows[widx[0]] @ theta
    else:
        mix = theta.new_zeros(rows.numel(), theta.shape[1])
        for a, b in _runs(widx):
            c0, c1 = columns[a], columns[b]
            mix[:, c0:c1] = W_rows[widx[a]] @ theta[:, c0:c1]
    wsum = W_rows.sum(2)  # (matrices, rows)

    widths = segments.diff()
    col_eta = seg_eta.repeat_interleave(widths)
    col_gamma = seg_gamma.repeat_interleave(widths)
    col_wsum = wsum.index_select(0, seg_w.repeat_interleave(widths)).t()  # (rows, parameters)

    own = rows - first  # square_avg's and grad's rows
    x = theta.index_select(0, rows)
    g = grad.index_select(0, own)
    v_new = square_avg.index_select(0, own) * rms_decay + (1 - rms_decay) * g * g
    delta = -(col_eta / (v_new.sqrt() + eps)) * g
    delta = delta + attract.index_select(0, rows)[:, None] * (best - x)
    delta = delta + col_gamma * (mix - col_wsum * x)
    x = x + delta
    if tunnel_rows.numel():  # the jump lands after the step, as in the kernel's second pass
        at = torch.searchsorted(rows, tunnel_rows)
        scales = _jump_scales(theta, tunnel_rows, columns, temperature)
        if bounds is not None:
            scales = _box_jump_scales(scales, bounds, temperature)
        x[at] = x[at] + (tunnel_noise * 2 - 1) * scales
    if bounds is not None:
        x = _clip(x, bounds)
    theta.index_copy_(0, rows, x)
    square_avg.index_copy_(0, own, v_new)


def draw_slot(normal, uniform, step: int, generator) -> int:
    """This step's row of the draw blocks, drawn afresh (normal first) every len(normal) steps."""
    slot = (step - 1) % normal.shape[0]
    if slot == 0:
        normal.normal_(generator=generator)
        uniform.uniform_(generator=generator)
    return slot


def qimad_step(theta, square_avg, grad, best, params, bucket_params, segments, seg_eta, seg_gamma,
               seg_w, alpha, beta, mask, attract_on, can_tunnel, k, dtype, agent_loss, agent_best,
               stagnation, best_loss, normal, uniform, step, rows, losses, generator, temperature,
               alpha_step, beta_step, rms_decay, eps, stagnation_limit, bounds,
               global_stagnation, sequential=False, first=0) -> torch.Tensor:
    """Pure-torch qimad_step (csrc/qimad/step.h): same arguments, in-place effects and fates."""
    n = alpha.shape[0]
    end = first + square_avg[0].shape[0]  # the agents whose state and gradients this call holds
    loss, own_best, stag = agent_loss.tolist(), agent_best.tolist(), stagnation.tolist()
    fates = [0] * n
    # plan_records: a non-finite agent is sent back to the best weights, out of this update.
    finite = [math.isfinite(losses[i]) for i in rows]
    tested = [j for j, i in enumerate(rows) if first <= i < end]
    for g in grad:
        ok = torch.isfinite(g[[rows[j] - first for j in tested]]).all(1).tolist()
        for j, fine in zip(tested, ok):
            finite[j] = finite[j] and fine
    good = [i for i, f in zip(rows, finite) if f]
    bad = [i for i, f in zip(rows, finite) if not f]
    for i, f in zip(rows, finite):
        loss[i] = losses[i] if f else math.inf
        fates[i] = 1 if f else -1
    best_i = loss.index(min(loss)) if n else None  # no agents: no best to take
    running = best_loss.item()  # the swarm's best as the rows are taken in order
    for i in rows:
        improved = loss[i] < own_best[i] - eps
        if improved:
            own_best[i] = loss[i]
        counts = loss[i] < running if global_stagnation else improved
        running = min(running, loss[i])
        stag[i] = 0 if counts else stag[i] + 1
    if n and loss[best_i] < best_loss.item():
        best_loss.fill_(loss[best_i])
        for th, bs in zip(theta, best):
            bs.copy_(th[best_i])
    for i in bad:
        for th, g, bs in zip(theta, grad, best):
            th[i].copy_(bs)
            if first <= i < end:
                g[i - first].zero_()

    slot = draw_slot(normal, uniform, step, generator)
    walk, coins = normal[slot], uniform[slot]
    alphas, coin = alpha.tolist(), coins[0].tolist()
    chances = [i for i in good if can_tunnel[i] and stag[i] > stagnation_limit]  # plan_tunnels
    tunnels = [i for i in chances if coin[i] < math.sin(alphas[i] / 2) ** 2]
    for i in chances if global_stagnation else tunnels:
        stag[i] = 0
    for i in tunnels:
        fates[i] = 2
    agent_loss.copy_(torch.tensor(loss, dtype=torch.float64))
    agent_best.copy_(torch.tensor(own_best, dtype=torch.float64))
    stagnation.copy_(torch.tensor(stag, dtype=torch.int64))

    W, attract = qimad_angles(alpha, beta, mask, k, walk, coins, attract_on, alpha_step,
                              beta_step, eps, dtype)
    # The agents this call moves; the noise is drawn for every tunnelling agent (step.h).
    moved = [i for i in good if first <= i < end]
    jumping = [t for t, i in enumerate(tunnels) if first <= i < end]
    start = 0
    for b, (th, sq) in enumerate(zip(theta, square_avg)):
        index = dict(dtype=torch.int64, device=th.device)
        if tunnels:
            noise = torch.rand(len(tunnels), th.shape[1], generator=generator, device=alpha.device,
                               dtype=th.dtype).to(th.device)[jumping]
        else:
            noise = th.new_empty(0, th.shape[1])
        qimad_update(th, sq, grad[b], best[b], W.to(th.device, th.dtype),
                     torch.tensor(moved, **index), attract.to(th.device, th.dtype), segments[b],
                     seg_eta[b], seg_gamma[b], seg_w[b],
                     torch.tensor([tunnels[t] for t in jumping], **index), noise,
                     temperature, rms_decay, eps, sequential, bounds[b], first)
        offset = 0  # the model holds the best-known weights
        for p in params[start:start + bucket_params[b]]:
            p.copy_(best[b][offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        start += bucket_params[b]
    return torch.tensor(fates, dtype=torch.int64)

