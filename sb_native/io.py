"""Problem files: G-set/rudy Max-Cut graphs and qbsolv `.qubo` QUBOs, as sparse tensors.

G-set / rudy (Max-Cut), plain or gzip::

    N E          number of nodes, number of edges
    i j w        E lines, one edge each: 1-based node ids, numeric weight

qbsolv (QUBO, minimize x^T Q x over x in {0, 1}^n), plain or gzip::

    c comment
    p qubo topology maxDiagonals nDiagonals nElements
    i i w        nDiagonals lines: diagonal terms, 0-based ids below maxDiagonals
    i j w        nElements lines: couplers, i != j

Readers return torch sparse COO tensors (float64 unless `dtype` says otherwise), never a
dense n x n matrix, and raise ProblemFileError naming the file and line of the first
problem. Writers take dense or sparse tensors, numpy arrays, scipy.sparse matrices, or
the matching model (MaxCut, QUBO).

Any input gives a result or a ProblemFileError (sb_native/_io_checks.py says why): text is
UTF-8, a BOM skipped, lines end in "\n", "\r\n" or "\r"; N is at most MAX_SIZE
(3,037,000,499); a header's sizes are checked, never allocated (arrays grow with the lines
read); a gzip file may expand to SB_NATIVE_MAX_DECOMPRESSED bytes (default 1 GiB).
"""

import gzip
import io
import os
import warnings
from array import array
from typing import IO, Iterator, List, Optional, Tuple

import numpy as np
import torch

from . import _io_checks, _io_rows, _sparse
from ._io_checks import (
    DEFAULT_MAX_DECOMPRESSED,  # noqa: F401 (the gzip limit, part of this module's interface)
    MAX_COUNT,
    MAX_DECOMPRESSED_ENV,  # noqa: F401
    MAX_SIZE,
    PathLike,
    ProblemFileError,
    content_lines,
    count_text,
    int_field,
    show_integer,
    weight_field,
)


def _open_for_writing(path: PathLike) -> IO[str]:
    if os.fspath(path).endswith(".gz"):
        # Level 6: a third of level 9's time on K2000-sized files for a few % more bytes.
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=6)
    return open(path, "w", encoding="utf-8")


# G-set / rudy

def _gset_header(path, lines) -> Tuple[int, int, int]:
    try:
        number, fields = next(lines)
    except StopIteration:
        raise ProblemFileError(path, 1, "empty file: expected the header 'N E'") from None
    if len(fields) != 2:
        shown = _io_checks.show(" ".join(fields))
        raise ProblemFileError(path, number, f"bad header {shown}: expected 'N E' (number of "
                                             "nodes, number of edges)")
    nodes = int_field(path, number, fields[0], "the number of nodes N")
    edges = int_field(path, number, fields[1], "the number of edges E")
    if nodes < 1 or edges < 0:
        raise ProblemFileError(path, number, f"bad header: N must be >= 1 and E >= 0, got "
                                             f"N={show_integer(fields[0])}, "
                                             f"E={show_integer(fields[1])}")
    _io_checks.check_size(path, number, fields[0], "the number of nodes N")
    _io_checks.check_size(path, number, fields[1], "the number of edges E", MAX_COUNT)
    return number, nodes, edges


def _gset_edge(path, number: int, fields: List[str], nodes: int) -> Tuple[int, int, float]:
    if len(fields) != 3:
        raise ProblemFileError(path, number, f"expected 'i j w', got {count_text(fields)} fields")
    i = int_field(path, number, fields[0], "node id i")
    j = int_field(path, number, fields[1], "node id j")
    for node, text in ((i, fields[0]), (j, fields[1])):
        if not 1 <= node <= nodes:
            raise ProblemFileError(path, number, f"node id {show_integer(text)} out of range "
                                                 f"1..{nodes}")
    if i == j:
        raise ProblemFileError(path, number, f"self-loop on node {i}: an edge joins two nodes")
    return i, j, weight_field(path, number, fields[2])


GSET_ROW = np.dtype([("i", np.int64), ("j", np.int64), ("w", np.float64)])


def _gset_table(body: str, nodes: int) -> Optional[np.ndarray]:
    """The (E, 3) edge table of body's lines (1-based ids) by numpy's C parser, or None when
    anything looks wrong.

    The parser is as strict as the line-by-line pass (integer ids, numeric weights), and
    any None sends the caller to that pass, which finds and names the line.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a body of comments only: "no data"
            rows = np.loadtxt(io.StringIO(body), dtype=GSET_ROW, comments="#", ndmin=1)
    except ValueError:
        return None
    i, j, w = rows["i"], rows["j"], rows["w"]
    if len(rows) and (not np.all(np.isfinite(w)) or np.any(i == j)
                      or min(i.min(), j.min()) < 1 or max(i.max(), j.max()) > nodes):
        return None
    return np.column_stack([i, j, w]).astype(np.float64)


def _gset_slow(path, lines, nodes: int) -> np.ndarray:
    # Arrays, not a list of tuples: 24 bytes an edge instead of some 150.
    ids, weights = array("q"), array("d")
    for number, fields in lines:
        i, j, w = _gset_edge(path, number, fields, nodes)
        ids.extend((i, j))
        weights.append(w)
    table = np.empty((len(weights), 3))
    table[:, :2] = np.frombuffer(ids, dtype=np.int64).reshape(-1, 2)
    table[:, 2] = np.frombuffer(weights, dtype=np.float64)
    return table


def _edge_count(path, header_line: int, edges: int, found: int) -> ProblemFileError:
    return ProblemFileError(path, header_line, f"edge count mismatch: the header declares "
                                               f"{edges} edges, the file has {found}")


def _gset_entries(path) -> Iterator[Tuple[int, int, int, float]]:
    """(line, i, j, w) of each edge, 0-based i < j, streamed (to find the line of an error)."""
    lines = content_lines(_io_checks.lines(path), "#")
    _, nodes, _ = _gset_header(path, lines)
    for number, fields in lines:
        i, j, w = _gset_edge(path, number, fields, nodes)
        yield number, min(i, j) - 1, max(i, j) - 1, w


def _finite(path, matrix: torch.Tensor, kind: str, dtype: torch.dtype) -> torch.Tensor:
    """matrix, once sure that no value overflowed: repeated entries may add up past float64's
    range, or a weight past that of dtype (float32: 3.4e38); the error names the line."""
    bad = ~torch.isfinite(matrix.values())
    if not bool(bad.any()):
        return matrix
    k = int(bad.nonzero()[0])
    i, j = sorted(matrix.indices()[:, k].tolist())
    entries = _gset_entries(path) if kind == "gset" else _qubo_entries(path, content_lines(
        _io_checks.lines(path), "c"))[1]
    line = _io_checks.first_overflow(entries, (i, j), dtype)
    what = f"edge {i + 1}-{j + 1}" if kind == "gset" else f"entry ({i}, {j})"
    raise ProblemFileError(path, line, f"the weight of {what}, summed over its lines, is "
                                       f"{float(matrix.values()[k])} in {dtype}: out of range")


def read_gset_edges(path: PathLike) -> Tuple[int, np.ndarray]:
    """(N, edges): the node count and an (E, 3) float64 array of 0-based (i, j, w) rows.

    path: a G-set/rudy file, plain or gzip (str or os.PathLike).

    >>> import os, tempfile
    >>> from sb_native.io import read_gset_edges
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "triangle.gset")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("3 3\\n1 2 1\\n1 3 3\\n2 3 2\\n")
    >>> nodes, edges = read_gset_edges(path)
    >>> nodes, edges.tolist()
    (3, [[0.0, 1.0, 1.0], [0.0, 2.0, 3.0], [1.0, 2.0, 2.0]])
    >>> folder.cleanup()
    """
    text, problem = _io_checks.read_text(path)
    lines = content_lines(_io_checks.split_lines(text, problem), "#")
    header_line, nodes, edges = _gset_header(path, lines)
    # The header is the first content line: the body is whatever follows its line. The
    # edges are allocated as numpy reads them, never from the header's E.
    parts = text.split("\n", header_line)
    table = _gset_table(parts[header_line] if len(parts) > header_line else "", nodes)
    del parts
    if table is None:  # numpy refused a line: the line-by-line pass names it
        table = _gset_slow(path, lines, nodes)
    if problem is not None:  # every line before the one that is not text reads
        raise problem
    if len(table) != edges:
        raise _edge_count(path, header_line, edges, len(table))
    table[:, :2] -= 1
    return nodes, table


def read_gset(path: PathLike, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Symmetric weighted adjacency (N, N), sparse COO: W_ij = W_ji = sum of w over i-j edges.

    path: a G-set/rudy file, plain or gzip; dtype: the weights' dtype.

    >>> import os, tempfile
    >>> from sb_native.io import read_gset
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "triangle.gset")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("3 3\\n1 2 1\\n1 3 3\\n2 3 2\\n")
    >>> W = read_gset(path)
    >>> W.layout, W.dtype, W.to_dense().tolist()
    (torch.sparse_coo, torch.float64, [[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    >>> folder.cleanup()
    """
    nodes, table = read_gset_edges(path)
    rows, cols = torch.from_numpy(table[:, :2].astype(np.int64)).t()
    weights = torch.from_numpy(table[:, 2]).to(dtype)
    indices = torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])])
    return _finite(path, _sparse.coo(indices, torch.cat([weights, weights]), (nodes, nodes)),
                   "gset", dtype)


def _as_coo(matrix, name: str) -> torch.Tensor:
    """A coalesced float64 COO view of a square matrix given in any supported form."""
    if _sparse.is_scipy_sparse(matrix):
        matrix = _sparse.from_scipy(matrix)
    elif isinstance(matrix, np.ndarray):
        matrix = torch.from_numpy(matrix)
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"{name} should be a tensor, an array or a sparse matrix, "
                        f"got {type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, "
                         f"got shape {tuple(matrix.shape)}")
    matrix = matrix.detach().cpu().to(torch.float64)
    coo = matrix.to_sparse() if matrix.layout == torch.strided else matrix.to_sparse_coo()
    coo = coo.coalesce()
    if not bool(torch.all(torch.isfinite(coo.values()))):
        raise ValueError(f"{name} must hold finite numbers only")
    return coo


def _write_table(handle: IO[str], rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
    # Integer weights stay integers (the G-set convention); others use repr, the shortest
    # text that reads back as the same float64.
    if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
        values = values.astype(np.int64)
    handle.write("".join(f"{i} {j} {w!r}\n" for i, j, w in
                         zip(rows.tolist(), cols.tolist(), values.tolist())))


def write_gset(path: PathLike, adjacency) -> None:
    """Write a graph in G-set format (`.gz` suffix: gzip).

    `adjacency` is a weighted adjacency matrix (symmetric, or one triangle: a
    non-symmetric matrix counts A_ij + A_ji, as in MaxCut) or a MaxCut model. path: the file
    to write (replaced if it exists).

    >>> import os, tempfile, torch
    >>> from sb_native.io import write_gset
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "triangle.gset")
    >>> write_gset(path, torch.tensor([[0.0, 1.0, 3.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]))
    >>> with open(path) as handle:
    ...     print(handle.read(), end="")
    3 3
    1 2 1
    1 3 3
    2 3 2
    >>> folder.cleanup()
    """
    source = getattr(adjacency, "weights", adjacency)
    weights = _sparse.symmetric_weights(_as_coo(source, "adjacency"))
    rows, cols = weights.indices().numpy()
    upper = rows < cols
    nodes = weights.shape[0]
    with _open_for_writing(path) as handle:
        handle.write(f"{nodes} {int(upper.sum())}\n")
        _write_table(handle, rows[upper] + 1, cols[upper] + 1, weights.values().numpy()[upper])


# qbsolv .qubo

def _qubo_header(path, number: int, fields: List[str]) -> Tuple[int, int, int]:
    if len(fields) != 6 or fields[1] != "qubo":
        raise ProblemFileError(path, number, "bad program line: expected "
                                             "'p qubo topology maxDiagonals nDiagonals nElements'")
    whats = ("maxDiagonals", "nDiagonals", "nElements")
    counts = [int_field(path, number, value, what) for value, what in zip(fields[3:], whats)]
    if counts[0] < 1 or min(counts) < 0:
        raise ProblemFileError(path, number, "bad program line: maxDiagonals must be >= 1 and "
                                             "the counts >= 0")
    for value, what, most in zip(fields[3:], whats, (MAX_SIZE, MAX_COUNT, MAX_COUNT)):
        _io_checks.check_size(path, number, value, what, most)
    return counts[0], counts[1], counts[2]


def _qubo_entries(path, lines) -> Tuple[int, Iterator[Tuple[int, int, int, float]]]:
    """(n, entries) of a qbsolv file's content lines: n from the program line, then each
    entry as (line, min(i, j), max(i, j), w), the counts checked once the last has been read."""
    header = None
    for number, fields in lines:
        if fields[0] != "p":
            raise ProblemFileError(path, number, "entry before the program line 'p qubo ...'")
        header = (number,) + _qubo_header(path, number, fields)
        break
    if header is None:
        raise ProblemFileError(path, None, "no program line 'p qubo topology maxDiagonals "
                                           "nDiagonals nElements'")
    number, size, declared_diagonals, declared_couplers = header

    def entries():
        diagonals = couplers = 0
        for line, fields in lines:
            if fields[0] == "p":
                raise ProblemFileError(path, line, "a second program line 'p qubo ...'")
            if len(fields) != 3:
                raise ProblemFileError(path, line, f"expected 'i j w', got {count_text(fields)} "
                                                   "fields")
            i = int_field(path, line, fields[0], "variable id i")
            j = int_field(path, line, fields[1], "variable id j")
            if not (0 <= i < size and 0 <= j < size):
                text = fields[0] if not 0 <= i < size else fields[1]
                raise ProblemFileError(path, line, f"variable id {show_integer(text)} out of "
                                                   f"range 0..{size - 1}")
            if i == j:
                diagonals += 1
            else:
                couplers += 1
                i, j = (i, j) if i < j else (j, i)
            yield line, i, j, weight_field(path, line, fields[2])
        if (diagonals, couplers) != (declared_diagonals, declared_couplers):
            raise ProblemFileError(
                path, number, f"entry count mismatch: the program line declares "
                f"{declared_diagonals} diagonal and {declared_couplers} coupler lines, "
                f"the file has {diagonals} and {couplers}")
    return size, entries()


def read_qubo(path: PathLike, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Upper-triangular Q (n, n), sparse COO, with x^T Q x the file's objective.

    n is maxDiagonals; repeated entries add up and a coupler (j, i) with j > i is stored
    at (i, j), which leaves x^T Q x unchanged. path: a qbsolv file, plain or gzip; dtype: the
    entries' dtype.

    >>> import os, tempfile
    >>> from sb_native.io import read_qubo
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "tiny.qubo")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("p qubo 0 2 2 1\\n0 0 -1\\n1 1 -2\\n1 0 2.5\\n")
    >>> read_qubo(path).to_dense().tolist()
    [[-1.0, 2.5], [0.0, -2.0]]
    >>> folder.cleanup()
    """
    text, problem = _io_checks.read_text(path)
    size, entries = _qubo_entries(path, content_lines(_io_checks.split_lines(text, problem),
                                                       "c"))
    # Arrays, allocated as the entries are read (never from the program line's counts).
    ids, weights = array("q"), array("d")
    for _, i, j, w in entries:
        ids.extend((i, j))
        weights.append(w)
    indices = torch.from_numpy(np.frombuffer(ids, dtype=np.int64).reshape(-1, 2).T.copy())
    values = torch.from_numpy(np.frombuffer(weights, dtype=np.float64).copy()).to(dtype)
    return _finite(path, _sparse.coo(indices, values, (size, size)), "qubo", dtype)


def read_gset_rows(path: PathLike, rows, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Rows lo..hi-1 of read_gset(path) (the symmetric adjacency, (N, N) sparse COO, every
    other row empty), read in pieces: the other rows are never held (variables across
    ranks, sb_native.RowBlock). rows: (lo, hi), or a function of N that returns them. path,
    dtype: as read_gset's.

    >>> import os, tempfile
    >>> from sb_native.io import read_gset_rows
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "triangle.gset")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("3 3\\n1 2 1\\n1 3 3\\n2 3 2\\n")
    >>> read_gset_rows(path, (1, 2)).to_dense().tolist()
    [[0.0, 0.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]
    >>> folder.cleanup()
    """
    head, rest = _io_rows.split_header(_io_checks.text_blocks(path))
    header_line, nodes, edges = _gset_header(path, content_lines(head, "#"))
    found = _io_rows.gset_rows(rest(), nodes, rows, dtype, lambda body: _gset_table(body, nodes))
    if found is None:  # numpy refused a line: the whole-file reader names it
        return _io_rows.restrict(read_gset(path, dtype), rows)
    block, seen = found
    if seen != edges:
        raise _edge_count(path, header_line, edges, seen)
    return _finite(path, block, "gset", dtype)


def read_qubo_rows(path: PathLike, rows, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The entries of read_qubo(path) (upper-triangular Q, (n, n) sparse COO) that lie in
    rows or columns lo..hi-1, all that rows lo..hi-1 of Q + Q^T need, read line by line:
    the other entries are never held. rows: (lo, hi), or a function of n that returns
    them. path, dtype: as read_qubo's.

    >>> import os, tempfile
    >>> from sb_native.io import read_qubo_rows
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "tiny.qubo")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("p qubo 0 2 2 1\\n0 0 -1\\n1 1 -2\\n0 1 2.5\\n")
    >>> read_qubo_rows(path, lambda n: (1, n)).to_dense().tolist()  # row 1 of Q + Q^T
    [[0.0, 2.5], [0.0, -2.0]]
    >>> folder.cleanup()
    """
    size, entries = _qubo_entries(path, content_lines(_io_checks.lines(path), "c"))
    return _finite(path, _io_rows.read_qubo_rows(entries, size, rows, dtype), "qubo", dtype)


def write_qubo(path: PathLike, Q, comment: Optional[str] = "written by sb_native") -> None:
    """Write a QUBO matrix (or a QUBO model) in qbsolv format (`.gz` suffix: gzip).

    Off-diagonal pairs are folded onto the upper triangle (Q_ij + Q_ji), so x^T Q x is kept.
    path: the file to write (replaced if it exists); Q: a square matrix (dense or sparse
    tensor, array, scipy.sparse) or a QUBO model; comment: "c" lines at the top (None: none).

    >>> import os, tempfile, torch
    >>> from sb_native.io import write_qubo
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "tiny.qubo")
    >>> write_qubo(path, torch.tensor([[-1.0, 2.0], [0.5, -2.0]]))
    >>> with open(path) as handle:
    ...     print(handle.read(), end="")
    c written by sb_native
    p qubo 0 2 2 1
    0 0 -1
    1 1 -2
    0 1 2.5
    >>> folder.cleanup()
    """
    matrix = _as_coo(getattr(Q, "Q", Q), "Q")
    rows, cols = matrix.indices()
    folded = _sparse.coo(torch.stack([torch.minimum(rows, cols), torch.maximum(rows, cols)]),
                         matrix.values(), matrix.shape)
    rows, cols = folded.indices().numpy()
    values = folded.values().numpy()
    diagonal = rows == cols
    with _open_for_writing(path) as handle:
        if comment:
            handle.write("".join(f"c {line}\n" for line in comment.splitlines()))
        handle.write(f"p qubo 0 {matrix.shape[0]} {int(diagonal.sum())} {int((~diagonal).sum())}\n")
        _write_table(handle, rows[diagonal], cols[diagonal], values[diagonal])
        _write_table(handle, rows[~diagonal], cols[~diagonal], values[~diagonal])


# Format detection

def detect_format(path: PathLike) -> str:
    """"gset" or "qubo": from the suffix (.qubo, .gset, .rudy, also under .gz), else the content.

    path: the file; ProblemFileError when neither suffix nor content says.

    >>> import os, tempfile
    >>> from sb_native.io import detect_format
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "problem.txt")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("p qubo 0 1 1 0\\n0 0 -1\\n")
    >>> detect_format(path), detect_format("G22.gset.gz")  # the suffix alone decides
    ('qubo', 'gset')
    >>> folder.cleanup()
    """
    name = os.fspath(path).lower()
    name = name[:-3] if name.endswith(".gz") else name
    if name.endswith(".qubo"):
        return "qubo"
    if name.endswith((".gset", ".rudy")):
        return "gset"
    for number, fields in content_lines(_io_checks.lines(path), "#"):  # the first line only
        if fields[0] == "p" or fields[0].startswith("c"):
            return "qubo"
        if len(fields) == 2:
            return "gset"
        raise ProblemFileError(path, number, "unknown format: expected a G-set header "
                                             "'N E' or a qbsolv 'p qubo ...' line")
    raise ProblemFileError(path, None, "empty file")


def read_problem(path: PathLike, dtype: torch.dtype = torch.float64) -> Tuple[str, torch.Tensor]:
    """(format, sparse matrix): read_gset's adjacency or read_qubo's Q, by detect_format.

    path: the file; dtype: the entries' dtype.

    >>> import os, tempfile
    >>> from sb_native.io import read_problem
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "edge.txt")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("2 1\\n1 2 5\\n")
    >>> kind, matrix = read_problem(path)
    >>> kind, matrix.to_dense().tolist()
    ('gset', [[0.0, 5.0], [5.0, 0.0]])
    >>> folder.cleanup()
    """
    kind = detect_format(path)
    return kind, (read_gset if kind == "gset" else read_qubo)(path, dtype=dtype)
