"""Reading one block of rows of a problem file (sb_native.io.read_gset_rows and
read_qubo_rows), for variables across ranks: the file is streamed in pieces and only the
entries of the block's rows are kept, so no rank ever holds the whole matrix. A malformed
file is handed to the whole-file reader, whose ProblemFileError names the line."""

import gzip
import io
import itertools
import warnings
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


def read_gset_rows(path, rows: Tuple[int, int], dtype: torch.dtype,
                   whole_file_reader) -> torch.Tensor:
    """Rows lo..hi-1 of read_gset(path)'s symmetric adjacency (N, N), sparse COO; every
    other row is empty."""
    try:
        return _gset_rows(path, rows, dtype, whole_file_reader)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError):
        return whole_file_reader(path)


def _gset_rows(path, rows, dtype, whole_file_reader) -> torch.Tensor:
    stream = lines(path)
    header: Optional[Tuple[int, int]] = None
    for line in stream:
        fields = line.split("#", 1)[0].split()
        if fields:
            if len(fields) != 2 or not all(f.isdigit() for f in fields):
                return whole_file_reader(path)  # raises, naming the line
            header = int(fields[0]), int(fields[1])
            break
    if header is None or header[0] < 1:
        return whole_file_reader(path)
    n, edges = header
    lo, hi = _check_rows(rows, n)
    kept, reverse, seen = [], [], 0
    while True:
        piece = list(itertools.islice(stream, LINES_PER_PIECE))
        if not piece:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a piece of comments only: "no data"
                table = np.loadtxt(io.StringIO("".join(piece)), comments="#", ndmin=2,
                                   dtype=np.float64)
        except ValueError:
            return whole_file_reader(path)
        if table.size == 0:
            continue
        i, j, w = table[:, 0], table[:, 1], table[:, 2] if table.shape[1] == 3 else None
        if w is None or table.shape[1] != 3 or not np.all(np.isfinite(w)) or np.any(i == j) \
                or np.any(i != np.round(i)) or np.any(j != np.round(j)) \
                or min(i.min(), j.min()) < 1 or max(i.max(), j.max()) > n:
            return whole_file_reader(path)
        seen += len(table)
        i, j = i.astype(np.int64) - 1, j.astype(np.int64) - 1
        mine_i, mine_j = (lo <= i) & (i < hi), (lo <= j) & (j < hi)
        kept.append((i[mine_i], j[mine_i], w[mine_i]))
        reverse.append((j[mine_j], i[mine_j], w[mine_j]))
    if seen != edges:
        return whole_file_reader(path)
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
