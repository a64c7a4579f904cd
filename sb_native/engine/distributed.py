"""SB agents across the ranks of a torch.distributed process group (``process_group=``).

Each rank runs a contiguous block of the agents (rank r: agents ``lo`` to ``hi``); every rank
holds the whole problem. What makes the result the one a single process gets for the same
seed, whatever the world size:

* every rank draws the whole initial state from the seeded generator (the single-process
  stream, variables x agents) and keeps its block of columns;
* agents never interact, so each column evolves as in one process wherever the kernels'
  per-agent arithmetic does not depend on how many agents share a call: dSB on integer
  weights (exact fields), the CSR path, and dense problems up to the small-problem size of
  the CPU kernels; above it bSB's dense product is BLAS's, whose sums may round differently
  for another number of columns (docs/distributed.md);
* the ranks step in lockstep: after every chunk of steps one all_reduce agrees on the next
  chunk (the smallest any rank proposes), on stopping (rank 0's clock alone decides the
  timeout; at a sampling point the run stops when no rank has an agent still running), and
  carries a failed rank's flag, so the others raise at once instead of waiting;
* at the end the spins (one byte per spin and agent) are all-gathered in agent order, so
  every rank evaluates the same agents, picks the same best (ties to the lowest index) and
  returns what one process returns.

The run starts with one all_reduce that checks the ranks were given the same problem and
settings (a checksum of the coupling and the options) and shares rank 0's seed when none was
given. The caller who created the process group destroys it.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.distributed as dist

from .._distributed import (
    RankFailed,
    all_reduce_max,
    blocks,
    checksum,
    gather_rows,
    handshake,
    raise_if_failed,
    resolve_group,
)

__all__ = ["AgentShard", "RankFailed", "digest", "resolve_group"]


@dataclass(frozen=True)
class AgentShard:
    """This rank's block of the agents and how to talk to the others."""

    group: object
    rank: int
    counts: Tuple[int, ...]  # agents per rank
    lo: int  # this rank's agents: lo to hi - 1
    hi: int

    @classmethod
    def of(cls, group, agents: int) -> "AgentShard":
        return cls(group, dist.get_rank(group), *blocks(agents, group))

    def start(self, digest: int, seed: Optional[int]) -> int:
        """Checks every rank has the same digest; returns the seed (rank 0's draw if None)."""
        return handshake(self.group, digest, seed, "call with the same model and options")

    def agree(self, *, running: bool, timed_out: bool, chunk: int) -> Tuple[bool, bool, int]:
        """After a chunk: (any agent still running, timed out on rank 0, next chunk)."""
        shared = all_reduce_max([0, int(timed_out and self.rank == 0), -chunk, int(running)],
                                self.group)
        raise_if_failed(int(shared[0]), "the SB run")
        return bool(shared[3]), bool(shared[1]), int(-shared[2])

    def fail(self) -> None:
        """Tells the other ranks, waiting in agree(), that this one failed; a broken group
        (the reason it failed, maybe) is left to the caller's exception."""
        try:
            all_reduce_max([self.rank + 1, 0, 0, 0], self.group)
        except Exception:  # noqa: BLE001 - the original error is the one to raise
            pass

    def any(self, flag: bool) -> bool:
        return bool(all_reduce_max([int(flag)], self.group)[0])

    def gather_rows(self, row: torch.Tensor) -> list:
        """Every rank's row (one tensor each), in rank order."""
        return [part[0] for part in gather_rows(row.reshape(1, -1), (1,) * len(self.counts),
                                                self.group)]

    def gather_spins(self, spins: torch.Tensor) -> torch.Tensor:
        """Every rank's (variables, block) spins, side by side in agent order."""
        blocks = gather_rows(spins.t().to(torch.int8), self.counts, self.group)
        return torch.cat(blocks, dim=0).t().contiguous().to(dtype=spins.dtype)


def digest(coupling, settings: tuple) -> int:
    """A checksum of the coupling's tensors and the run's settings (equal on every rank
    given the same problem)."""
    return checksum(coupling.tensors(), (coupling.n, str(coupling.dtype), settings))
