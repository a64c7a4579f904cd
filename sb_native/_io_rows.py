"""Reading one block of rows of a problem file (sb_native.io.read_gset_rows and
read_qubo_rows), for variables across ranks: the file is streamed in pieces and only the
entries of the block's rows are kept, so no rank ever holds the whole matrix. A malformed
file is handed to the whole-file reader, whose ProblemFileError names the line."""

import gzip
import itertools
from typing import Iterator, Optional, Tuple

import numpy as np
import torch

from . import _sparse

# Lines parsed at a time.
LINES_PER_PIECE = 1 << 20


def lines(path) -> Iterator[str]:
    """The file's lines, streamed (gzip recognised by its magic bytes), split on "\\n" only
    as the whole-file readers split them."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    with opener(path, "rt", encoding="utf-8", newline="\n") as handle:
        yield from handle


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


def gset_rows(stream, n: int, edges: int, rows, dtype, parse) -> Optional[torch.Tensor]:
    """Rows lo..hi-1 of the G-set edges on the stream's lines after the header, as
    read_gset's (N, N) COO, parse(body) giving each piece's (E, 3) table of 1-based ids;
    None when a piece does not parse or the edges do not add up to the header's."""
    lo, hi = _check_rows(rows, n)
    kept, reverse, seen = [], [], 0
    for piece in iter(lambda: list(itertools.islice(stream, LINES_PER_PIECE)), []):
        table = parse("".join(piece))
        if table is None:
            return None
        seen += len(table)
        i, j, w = table[:, 0].astype(np.int64) - 1, table[:, 1].astype(np.int64) - 1, table[:, 2]
        mine_i, mine_j = (lo <= i) & (i < hi), (lo <= j) & (j < hi)
        kept.append((i[mine_i], j[mine_i], w[mine_i]))
        reverse.append((j[mine_j], i[mine_j], w[mine_j]))
    if seen != edges:
        return None
    # read_gset's order, the edges then their reverses, so repeated edges add up alike.
    return _block(kept + reverse, n, dtype)


def read_qubo_rows(entries, n: int, rows: Tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """The entries (i <= j, w) of a qbsolv file that touch rows lo..hi-1 as a row or a
    column, upper-triangular (n, n) COO: what rows lo..hi-1 of Q + Q^T need."""
    lo, hi = _check_rows(rows, n)
    kept = []
    for chunk in iter(lambda: list(itertools.islice(entries, LINES_PER_PIECE)), []):
        table = np.asarray(chunk, dtype=np.float64).reshape(-1, 3)
        i, j = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
        touch = ((lo <= i) & (i < hi)) | ((lo <= j) & (j < hi))
        kept.append((i[touch], j[touch], table[touch, 2]))
    return _block(kept, n, dtype)
