"""Reading one block of rows of a problem file (sb_native.io.read_gset_rows and
read_qubo_rows), for variables across ranks: the file is streamed in pieces and only the
entries of the block's rows are kept, so no rank ever holds the whole matrix (the lines
come from sb_native._io_checks.lines). A line that numpy refuses sends the G-set reader to
the whole-file reader, whose ProblemFileError names the line."""

import itertools
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
import torch

from . import _sparse
from ._io_checks import ProblemFileError

# Lines parsed at a time, and the most characters in a piece (past a chunk's lines), so a
# file of long lines (comments, say) costs no more memory than one of short ones.
LINES_PER_PIECE = 1 << 20
CHARS_PER_PIECE = 1 << 26


def _pieces(blocks: Iterator[str]) -> Iterator[str]:
    """Blocks of lines (joined by "\\n") joined in pieces of LINES_PER_PIECE lines, or fewer
    when they pass CHARS_PER_PIECE characters (counted a block, a chunk's lines, at a time).

    A line that is not text raises between two blocks: the lines before it are handed out
    first, so that a format error on one of them is found first, as the whole-file reader
    finds it.
    """
    parts: List[str] = []
    count = chars = 0
    try:
        for block in blocks:
            rest: Optional[str] = block
            while rest is not None:
                room, lines = LINES_PER_PIECE - count, rest.count("\n") + 1
                if lines > room:  # the piece ends inside the block
                    head = rest.split("\n", room)
                    part, rest, lines = "\n".join(head[:room]), head[room], room
                else:
                    part, rest = rest, None
                parts.append(part)
                count, chars = count + lines, chars + len(part)
                if count >= LINES_PER_PIECE or chars >= CHARS_PER_PIECE:
                    yield "\n".join(parts)
                    parts, count, chars = [], 0, 0
    except ProblemFileError:
        if parts:
            yield "\n".join(parts)
        raise
    if parts:
        yield "\n".join(parts)


def split_header(blocks: Iterator[str]) -> Tuple[Iterator[str], Callable[[], Iterator[str]]]:
    """(lines, rest) of blocks of lines: their lines one at a time, to read the header with,
    then rest(), the blocks of the lines not read yet."""
    where: List = ["", 0]  # the block being read, where its next line starts

    def lines() -> Iterator[str]:
        for block in blocks:
            where[0], start = block, 0
            while start <= len(block):
                end = block.find("\n", start)
                end = len(block) if end < 0 else end
                line = block[start:end]
                where[1] = start = end + 1
                yield line

    def rest() -> Iterator[str]:
        block, start = where
        return itertools.chain([block[start:]] if start <= len(block) else [], blocks)

    return lines(), rest


def _check_rows(rows, n: int) -> Tuple[int, int]:
    lo, hi = (int(r) for r in (rows(n) if callable(rows) else rows))
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"rows must be (lo, hi) with 0 <= lo <= hi <= {n} (the file's size), "
                         f"got {tuple(rows)}")
    return lo, hi


def _block(kept, n: int, dtype) -> torch.Tensor:
    """The (n, n) COO of the kept pieces of (row, col, value) arrays, coalesced."""
    if kept:
        i, j, w = (np.concatenate(part) for part in zip(*kept))
    else:
        i, j, w = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    indices = torch.from_numpy(np.stack([i, j]).astype(np.int64)).reshape(2, -1)
    return _sparse.coo(indices, torch.from_numpy(np.asarray(w, np.float64)).to(dtype), (n, n))


def restrict(matrix: torch.Tensor, rows) -> torch.Tensor:
    """The rows lo..hi-1 of a coalesced (n, n) COO, the others empty."""
    lo, hi = _check_rows(rows, matrix.shape[0])
    row = matrix.indices()[0]
    mine = (row >= lo) & (row < hi)
    return _sparse.coo(matrix.indices()[:, mine], matrix.values()[mine], matrix.shape)


def gset_rows(blocks, n: int, rows, dtype, parse) -> Optional[Tuple[torch.Tensor, int]]:
    """(rows lo..hi-1 of the G-set edges on the blocks' lines after the header, as
    read_gset's (N, N) COO, the number of edges read), parse(body) giving each piece's (E, 3)
    table of 1-based ids; None when a piece does not parse."""
    lo, hi = _check_rows(rows, n)
    kept, reverse, seen = [], [], 0
    for piece in _pieces(blocks):
        table = parse(piece)
        if table is None:
            return None
        seen += len(table)
        i, j, w = table[:, 0].astype(np.int64) - 1, table[:, 1].astype(np.int64) - 1, table[:, 2]
        mine_i, mine_j = (lo <= i) & (i < hi), (lo <= j) & (j < hi)
        kept.append((i[mine_i], j[mine_i], w[mine_i]))
        reverse.append((j[mine_j], i[mine_j], w[mine_j]))
    # read_gset's order, the edges then their reverses, so repeated edges add up alike.
    return _block(kept + reverse, n, dtype), seen


def read_qubo_rows(entries, n: int, rows: Tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """The entries (line, i <= j, w) of a qbsolv file that touch rows lo..hi-1 as a row or a
    column, upper-triangular (n, n) COO: what rows lo..hi-1 of Q + Q^T need."""
    lo, hi = _check_rows(rows, n)
    kept = []
    for chunk in iter(lambda: list(itertools.islice(entries, LINES_PER_PIECE)), []):
        table = np.asarray(chunk, dtype=np.float64).reshape(-1, 4)
        i, j = table[:, 1].astype(np.int64), table[:, 2].astype(np.int64)
        touch = ((lo <= i) & (i < hi)) | ((lo <= j) & (j < hi))
        kept.append((i[touch], j[touch], table[touch, 3]))
    return _block(kept, n, dtype)
