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

import hashlib
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.distributed as dist

_MAX = dist.ReduceOp.MAX if dist.is_available() else None


class RankFailed(RuntimeError):
    """Another rank of the process group failed; its own exception says why."""


def resolve_group(process_group):
    """The ProcessGroup of the ``process_group`` option (True: the default group), or None."""
    if process_group is None or process_group is False:
        return None
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError("process_group needs torch.distributed initialised "
                         "(torch.distributed.init_process_group, or a torchrun launch)")
    return dist.group.WORLD if process_group is True else process_group


@dataclass(frozen=True)
class AgentShard:
    """This rank's block of the agents and how to talk to the others."""

    group: object
    rank: int
    world: int
    counts: Tuple[int, ...]  # agents per rank
    device: torch.device  # where the collectives' tensors live (CUDA for NCCL)

    @classmethod
    def of(cls, group, agents: int) -> "AgentShard":
        world, rank = dist.get_world_size(group), dist.get_rank(group)
        counts = tuple(agents // world + (r < agents % world) for r in range(world))
        nccl = dist.get_backend(group) == "nccl"
        device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        return cls(group, rank, world, counts, device)

    @property
    def lo(self) -> int:
        return sum(self.counts[:self.rank])

    @property
    def hi(self) -> int:
        return self.lo + self.counts[self.rank]

    def _all_reduce_max(self, values) -> torch.Tensor:
        t = torch.tensor(values, dtype=torch.int64, device=self.device)
        dist.all_reduce(t, op=_MAX, group=self.group)
        return t.cpu()

    def start(self, digest: int, seed: Optional[int]) -> int:
        """Checks every rank has the same digest; returns the seed (rank 0's draw if None)."""
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,))) if self.rank == 0 else 0
        shared = self._all_reduce_max([digest, -digest, seed if self.rank == 0 else 0])
        if int(shared[0]) != -int(shared[1]):
            raise ValueError("the ranks of process_group were given different problems or "
                             "settings: every rank must call with the same model and options")
        return int(shared[2])

    def agree(self, *, running: bool, timed_out: bool, chunk: int) -> Tuple[bool, bool, int]:
        """After a chunk: (any agent still running, timed out on rank 0, next chunk)."""
        shared = self._all_reduce_max([0, int(timed_out and self.rank == 0), -chunk,
                                       int(running)])
        self._raise_if_failed(shared)
        return bool(shared[3]), bool(shared[1]), int(-shared[2])

    def fail(self) -> None:
        """Tells the other ranks, waiting in agree(), that this one failed; a broken group
        (the reason it failed, maybe) is left to the caller's exception."""
        try:
            self._all_reduce_max([self.rank + 1, 0, 0, 0])
        except Exception:  # noqa: BLE001 - the original error is the one to raise
            pass

    @staticmethod
    def _raise_if_failed(shared: torch.Tensor) -> None:
        if int(shared[0]) > 0:
            raise RankFailed(f"rank {int(shared[0]) - 1} of the process group failed during "
                             "the SB run (its own error says why)")

    def any(self, flag: bool) -> bool:
        return bool(self._all_reduce_max([int(flag)])[0])

    def gather_spins(self, spins: torch.Tensor) -> torch.Tensor:
        """Every rank's (variables, block) spins, side by side in agent order."""
        width = max(self.counts)
        block = torch.zeros((spins.shape[0], width), dtype=torch.int8, device=self.device)
        block[:, :spins.shape[1]] = spins.to(self.device, torch.int8)
        blocks = [torch.empty_like(block) for _ in range(self.world)]
        dist.all_gather(blocks, block, group=self.group)
        whole = torch.cat([b[:, :c] for b, c in zip(blocks, self.counts)], dim=1)
        return whole.to(device=spins.device, dtype=spins.dtype)


def digest(coupling, settings: tuple) -> int:
    """A checksum of the coupling's tensors and the run's settings, equal on ranks given the
    same problem: integer sums of the values' bit patterns weighted by position, which no
    summation order changes."""
    h = hashlib.blake2b(digest_size=7)
    h.update(repr((coupling.n, str(coupling.dtype), settings)).encode())
    for tensor in coupling.tensors():
        flat = tensor.detach().reshape(-1)
        if flat.dtype.is_floating_point:
            flat = flat.view(torch.int64 if flat.element_size() == 8 else torch.int32)
        flat = flat.to(torch.int64)
        weights = torch.arange(1, flat.numel() + 1, device=flat.device) * 2654435761
        h.update(repr((tuple(tensor.shape), int((flat * weights).sum()))).encode())
    return int.from_bytes(h.digest(), "little")
