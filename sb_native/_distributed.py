"""What the solvers share to run across the ranks of a torch.distributed process group: the
``process_group=`` option, the collectives' device, failure signalling, block partitions and
checksums. SB's agents (engine/distributed.py) and QIMADTorch's swarm (optim/qimad.py) are
built on it."""

import hashlib
from typing import List, Sequence, Tuple

import torch
import torch.distributed as dist


class RankFailed(RuntimeError):
    """Another rank of the process group failed; its own exception says why."""


def resolve_group(process_group):
    """The ProcessGroup of a ``process_group`` option that _checks.check_process_group
    accepted (True: the default group), or None."""
    if not process_group:
        return None
    return dist.group.WORLD if process_group is True else process_group


def collective_device(group) -> torch.device:
    """Where the group's collectives take their tensors: CUDA for NCCL, else the CPU."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def blocks(total: int, group) -> Tuple[Tuple[int, ...], int, int]:
    """total items in one contiguous block per rank, sizes differing by at most one: every
    rank's size, and this rank's first item and the one past its last."""
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    counts = tuple(total // world + (r < total % world) for r in range(world))
    lo = sum(counts[:rank])
    return counts, lo, lo + counts[rank]


def all_reduce_max(values: Sequence[int], group) -> torch.Tensor:
    t = torch.tensor(list(values), dtype=torch.int64, device=collective_device(group))
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return t.cpu()


def raise_if_failed(failed_rank_plus_one: int, what: str) -> None:
    if failed_rank_plus_one > 0:
        raise RankFailed(f"rank {failed_rank_plus_one - 1} of the process group failed during "
                         f"{what} (its own error says why)")


# Rank 0's seed travels in an int64 all_reduce(MAX) against the other ranks' zeros, so it is
# sent as non-negative 31-bit pieces of seed - SEED_MIN: torch's whole seed range, [-2**63,
# 2**64 - 1], in three pieces (a negative seed sent as it is would lose to the zeros).
SEED_MIN = -2**63
_PIECE_BITS, _PIECES = 31, 3


def handshake(group, digest: int, seed, what: str) -> int:
    """Checks every rank has the same digest; returns rank 0's seed (its draw when None)."""
    rank = dist.get_rank(group)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,))) if rank == 0 else 0
    offset = seed - SEED_MIN if rank == 0 else 0
    mask = (1 << _PIECE_BITS) - 1
    pieces = [(offset >> (_PIECE_BITS * k)) & mask for k in range(_PIECES)]
    shared = all_reduce_max([digest, -digest, *pieces], group)
    if int(shared[0]) != -int(shared[1]):
        raise ValueError(f"the ranks of process_group were given different problems or "
                         f"settings: every rank must {what}")
    return SEED_MIN + sum(int(piece) << (_PIECE_BITS * k)
                          for k, piece in enumerate(shared[2:].tolist()))


# checksum's elements per chunk: its int64 temporaries stay a few MiB whatever the tensor's
# size (whole, they were 3 tensors of 8 bytes per element, beside a swarm or coupling that may
# fill the memory).
CHECKSUM_CHUNK = 1 << 18


def checksum(tensors: Sequence[torch.Tensor], settings) -> int:
    """Equal on ranks given the same tensors and settings: integer sums of the values' bit
    patterns weighted by position, which no summation order changes (int64 wraps around, and
    wrapping sums are the same in any order: so are the chunks')."""
    h = hashlib.blake2b(digest_size=7)
    h.update(repr(settings).encode())
    for tensor in tensors:
        flat = tensor.detach().reshape(-1)
        if flat.dtype.is_floating_point:
            flat = flat.view(torch.int64 if flat.element_size() == 8 else torch.int32)
        total = 0
        for start in range(0, flat.numel(), CHECKSUM_CHUNK):
            chunk = flat[start:start + CHECKSUM_CHUNK].to(torch.int64)
            weights = torch.arange(start + 1, start + chunk.numel() + 1,
                                   device=flat.device) * 2654435761
            total += int((chunk * weights).sum())
        total = (total + 2**63) % 2**64 - 2**63  # the whole tensor's int64 sum, wrapped
        h.update(repr((tuple(tensor.shape), total)).encode())
    return int.from_bytes(h.digest(), "little")


def gather_rows(block: torch.Tensor, counts: Sequence[int], group) -> List[torch.Tensor]:
    """Every rank's block (rows, ...) of counts[r] rows, in rank order, on block's device."""
    device = collective_device(group)
    width = max(counts)
    padded = torch.zeros((width, *block.shape[1:]), dtype=block.dtype, device=device)
    padded[:block.shape[0]] = block.to(device)
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded, group=group)
    return [p[:c].to(block.device) for p, c in zip(parts, counts)]
