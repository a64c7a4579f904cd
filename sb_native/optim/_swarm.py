"""The swarm's static structure: topology neighbour lists, the cooling schedule and the flat
per-(device, dtype) buffers ("buckets") that QIMADTorch keeps its agents in."""

import math
from typing import Dict, List, Optional, Tuple

import torch

from .. import _memory
from ._groups import column_box


def _neighbours(n: int, topology: str, generator: torch.Generator) -> List[List[int]]:
    """The reference's neighbour lists; 'random' draws from the optimizer's generator."""
    if topology == "complete":
        return [[j for j in range(n) if j != i] for i in range(n)]
    if topology == "ring":
        return [sorted({(i - 1) % n, (i + 1) % n} - {i}) for i in range(n)]
    if topology == "grid":
        side = math.ceil(math.sqrt(n))
        nb = []
        for i in range(n):
            r, c = divmod(i, side)
            row = []
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                j = (r + dr) * side + (c + dc)
                if 0 <= r + dr < side and 0 <= c + dc < side and j < n and j != i:
                    row.append(j)
            nb.append(row)
        return nb
    # Erdos-Renyi p = 0.5 on the upper triangle, then at least one neighbour per agent.
    coin = (torch.rand(n, n, generator=generator, device=generator.device) < 0.5).tolist()
    nb = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if coin[i][j]:
                nb[i].append(j)
                nb[j].append(i)
    for i in range(n):
        j = (i + 1) % n
        if not nb[i] and j != i:
            nb[i].append(j)
            nb[j].append(i)
    return nb


def temperature(step: int, group: dict) -> float:
    """The cooling schedule's temperature at step (1 without total_steps)."""
    total = group["total_steps"]
    if total is None or total <= 0:
        return 1.0
    min_t, cooling = group["min_temp"], group["cooling"]
    t = min(step / total, 1.0)
    if cooling == "cosine":
        return min_t + (1.0 - min_t) * 0.5 * (1.0 + math.cos(math.pi * t))
    if cooling == "linear":
        return min_t + (1.0 - min_t) * (1.0 - t)
    if cooling == "exponential":
        return max(min_t, math.exp(-5.0 * t))
    return 1.0


class _Bucket:
    """The swarm of the parameters sharing one (device, dtype): flat (agents, P) positions and
    the RMSProp averages and gradients of the agents [first, end) (owned: this rank's block of
    a swarm sharded over a process group; every agent by default)."""

    def __init__(self, params, groups, n: int, backend: str,
                 owned: Optional[Tuple[int, int]] = None):
        self.params = params
        self.groups = groups  # index of each parameter's group
        self.device, self.dtype = params[0].device, params[0].dtype
        self.backend = backend
        bounds = [0]
        for p in params:
            bounds.append(bounds[-1] + p.numel())
        self.bounds = bounds
        self.P = bounds[-1]
        self.first, self.end = (0, n) if owned is None else owned
        m = self.end - self.first
        # Once per swarm, before its buffers (the torch backend's step: SwarmRuntime.build).
        _memory.check_swarm(n, self.P, self.dtype, self.device, m)
        opts = dict(device=self.device, dtype=self.dtype)
        self.theta = torch.empty(n, self.P, **opts)
        self.square_avg = torch.zeros(m, self.P, **opts)
        self.grad = torch.zeros(m, self.P, **opts)
        self.best = torch.empty(self.P, **opts)
        self.segments = torch.tensor(bounds, dtype=torch.int64, device=self.device)
        self.theta_rows = list(self.theta.unbind(0))
        self.agent_views = [self.views(row) for row in self.theta_rows]
        # Per agent of [first, end): its gradient row, and that row's views.
        self.grad_rows = list(self.grad.unbind(0))
        self.grad_views = [self.views(row) for row in self.grad_rows]
        self.best_views = self.views(self.best)

    @property
    def own_theta(self) -> torch.Tensor:
        """The positions of the agents [first, end): the rows a checkpoint of it saves."""
        return self.theta[self.first:self.end]

    def views(self, buf: torch.Tensor) -> List[torch.Tensor]:
        """Each parameter's slice of buf (..., P), shaped (..., *parameter.shape)."""
        return [buf[..., a:b].view(*buf.shape[:-1], *p.shape)
                for p, a, b in zip(self.params, self.bounds, self.bounds[1:])]

    def set_hyper(self, groups: List[dict], k_index: Dict[float, int]) -> None:
        """Per-segment learning rate, gamma and fidelity matrix index, and the columns' box,
        from the groups' current values."""
        opts = dict(device=self.device, dtype=self.dtype)
        self.seg_eta = torch.tensor([groups[g]["lr"] for g in self.groups], **opts)
        self.box = column_box(self.params, self.groups, groups)
        self.seg_gamma = torch.tensor([groups[g]["gamma"] for g in self.groups], **opts)
        self.seg_w = torch.tensor([k_index[float(groups[g]["k"])] for g in self.groups],
                                  dtype=torch.int64, device=self.device)
