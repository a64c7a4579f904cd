"""QIMADTorch across the ranks of a process group: each rank evaluates its block of the agents
(their closures, or one step_batched / step_vectorized call), and then

* update_order='synchronous': the swarm is sharded. A rank holds the RMSProp averages and
  gradients of its agents only, moves only them (qimad_step's `first`), and then each rank
  broadcasts its block of moved positions, so every rank holds the whole swarm's positions for
  the next step's communication term. Every agent reads the positions from before the step, so
  each rank's update of its agents is the single-process update of those agents.
* update_order='sequential': each agent reads the agents moved before it this step, an order
  no two ranks can share out; each rank broadcasts its block of gradients and every rank makes
  the whole update (the swarm replicated).

The records (losses, stagnation, best loss), the angles and the draws are the same small
computation on every rank, from the all-gathered losses and one generator seeded alike."""

from typing import Callable, List, Optional, Tuple

import torch

from .. import _distributed
from ._owner import SwarmOwner


class RankSteps:
    """QIMADTorch's step across a process group (its base class: it reads its swarm)."""

    def _shard_of(self: SwarmOwner) -> Optional[Tuple[int, int]]:
        """The agents [first, end) whose RMSProp state and gradients this rank holds, or None
        when it holds every agent's (one process, or the sequential order)."""
        if self._group is None or self._sequential:
            return None
        _, lo, hi = _distributed.blocks(self.param_groups[0]["num_agents"], self._group)
        return lo, hi

    def _step_shared(self: SwarmOwner, evaluate: Callable[[List[int], List[float]], None],
                     rows: List[int]) -> float:
        """A step across the process group: evaluate(mine, losses) of this rank's due agents
        (their closures, or one vectorised call), then every rank's losses (and, sequential,
        gradients) on every rank, then the update."""
        group = self._group
        rank, n = torch.distributed.get_rank(group), self.param_groups[0]["num_agents"]
        counts, lo, hi = _distributed.blocks(n, group)
        assert self._swarm is not None  # built by _begin_step
        if self._gather_pending:  # a sharded checkpoint was loaded: only its rows are known
            self._gather_positions()
        losses = self._swarm.agent_loss.tolist()
        try:
            evaluate([i for i in rows if lo <= i < hi], losses)
        except Exception:
            _distributed.all_reduce_max([rank + 1], group)
            raise
        _distributed.raise_if_failed(int(_distributed.all_reduce_max([0], group)[0]),
                                     "a QIMADTorch step")
        due = set(rows)
        with torch.no_grad():
            if self._shard_of() is None:
                self._share_blocks([b.grad for b in self._buckets])
                mine = torch.tensor(losses[lo:hi], dtype=torch.float64)
                shared = torch.cat(_distributed.gather_rows(mine, counts, group)).tolist()
                losses = [shared[i] if i in due else losses[i] for i in range(n)]
                return self._update(rows, losses)
            # Each agent's loss, and whether its gradient is finite: only its owner holds it.
            # Row by row: isfinite's temporaries (a float copy among them) stay a row's size.
            fine = [float(all(bool(torch.isfinite(b.grad[i - lo]).all()) for b in self._buckets))
                    if i in due else 1.0 for i in range(lo, hi)]
            mine = torch.tensor([losses[lo:hi], fine], dtype=torch.float64).t()
            shared = torch.cat(_distributed.gather_rows(mine, counts, group)).tolist()
            losses = [shared[i][0] if i in due else losses[i] for i in range(n)]
            unfit = {i for i in rows if not shared[i][1]}
            return self._update(rows, losses, unfit)

    def _gather_positions(self: SwarmOwner) -> None:
        """Every rank's block of the positions into every rank's swarm."""
        self._share_blocks([b.theta for b in self._buckets])
        self._gather_pending = False

    def _share_blocks(self: SwarmOwner, buffers: List[torch.Tensor]) -> None:
        """Each rank's block of rows of each (agents, P) buffer into every rank's: one broadcast
        per rank straight into the block's rows, which takes uneven blocks and, unlike an
        all_gather into a padded buffer, no memory of the buffer's size (bench/RESULTS.md)."""
        counts, _, _ = _distributed.blocks(self.param_groups[0]["num_agents"], self._group)
        device = _distributed.collective_device(self._group)
        for buffer in buffers:
            shared = buffer if buffer.device == device else buffer.to(device)
            start = 0
            for rank, count in enumerate(counts):
                if count:
                    source = torch.distributed.get_global_rank(self._group, rank)
                    torch.distributed.broadcast(shared[start:start + count], src=source,
                                                group=self._group)
                start += count
            if shared is not buffer:
                buffer.copy_(shared)
