"""sb_native.io: G-set and qbsolv files, round trips, sparse results, errors with line numbers."""

import gzip
import itertools
import pickle
import resource
import tracemalloc

import numpy as np
import pytest
import torch

from sb_native import io as sio
from sb_native.models import QUBO


def random_upper(n: int, density: float, seed: int, integer: bool) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    mask = np.triu(rng.random((n, n)) < density, k=1)
    values = rng.integers(-3, 4, (n, n)) if integer else rng.normal(size=(n, n))
    values = np.where(values == 0, 1, values)
    return torch.from_numpy((mask * values).astype(np.float64))


def write(path, text: str):
    path.write_text(text)
    return path


# G-set


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("name", ["graph.txt", "graph.txt.gz"])
def test_gset_round_trip(tmp_path, integer, name):
    upper = random_upper(60, 0.1, seed=1, integer=integer)
    symmetric = upper + upper.t()
    path = tmp_path / name
    sio.write_gset(path, upper.to_sparse())
    adjacency = sio.read_gset(path)
    assert adjacency.layout == torch.sparse_coo and adjacency.shape == (60, 60)
    assert torch.equal(adjacency.to_dense(), symmetric)  # bit-exact, floats included
    # Writing what was read gives the same file again.
    again = tmp_path / ("again-" + name)
    sio.write_gset(again, adjacency)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as first, opener(again, "rt") as second:
        assert first.read() == second.read()


def test_gset_file_layout(tmp_path):
    upper = torch.zeros(4, 4, dtype=torch.float64)
    upper[0, 1], upper[1, 3], upper[2, 3] = 1, -2, 0.5
    sio.write_gset(tmp_path / "g.txt", upper)
    # Upper triangle, 1-based ids, row-major order; a non-integer weight makes all floats.
    assert (tmp_path / "g.txt").read_text() == "4 3\n1 2 1.0\n2 4 -2.0\n3 4 0.5\n"


def test_gset_integer_weights_written_as_integers(tmp_path):
    sio.write_gset(tmp_path / "g.txt", torch.tensor([[0.0, 3.0], [3.0, 0.0]]))
    assert (tmp_path / "g.txt").read_text() == "2 1\n1 2 3\n"


def test_gset_reads_known_text(tmp_path):
    # Comments, blank lines, trailing spaces, CRLF, a repeated edge (weights add up).
    text = "# made by hand\r\n3 4 \r\n1 2 1\r\n\r\n2 3 -1\r\n3 1 2.5\r\n1 2 1\r\n"
    path = write(tmp_path / "g.txt", text)
    expected = torch.tensor([[0, 2, 2.5], [2, 0, -1], [2.5, -1, 0]], dtype=torch.float64)
    assert torch.equal(sio.read_gset(path).to_dense(), expected)
    nodes, table = sio.read_gset_edges(path)
    assert nodes == 3 and table.tolist() == [[0, 1, 1], [1, 2, -1], [2, 0, 2.5], [0, 1, 1]]


def test_gset_gzip_detected_by_content(tmp_path):
    path = tmp_path / "graph.bin"
    path.write_bytes(gzip.compress(b"2 1\n1 2 7\n"))
    assert sio.read_gset(path).to_dense()[0, 1] == 7


def test_gset_sparse_file_stays_sparse(tmp_path):
    n = 20_000  # dense float64 would be 3.2 GB
    lines = [f"{n} {n - 1}"] + [f"{k} {k + 1} 1" for k in range(1, n)]
    adjacency = sio.read_gset(write(tmp_path / "path.txt", "\n".join(lines) + "\n"))
    assert adjacency.layout == torch.sparse_coo and adjacency._nnz() == 2 * (n - 1)


GSET_ERRORS = [
    ("", 1, "empty file"),
    ("3\n1 2 1\n", 1, "bad header"),
    ("3 1 7\n1 2 1\n", 1, "bad header"),
    ("three 1\n1 2 1\n", 1, "number of nodes N must be an integer"),
    ("0 0\n", 1, "N must be >= 1"),
    ("3 2\n1 2 1\n1 4 1\n", 3, "node id 4 out of range 1..3"),
    ("3 2\n1 2 1\n0 2 1\n", 3, "node id 0 out of range 1..3"),
    ("3 2\n1 2 1\n1 2.5 1\n", 3, "node id j must be an integer"),
    ("3 2\n1 2 1\n1.0 2 1\n", 3, "node id i must be an integer, got '1.0'"),
    ("3 2\n1 2 1\n1 2 1 1\n", 3, "expected 'i j w', got 4 fields"),
    ("# c\n\n3 2\n1 2 1 # inline\n2 3 1 x\n", 5, "expected 'i j w', got 4 fields"),
    ("3 2\n1 2 1\n2 3 heavy\n", 3, "weight must be a number, got 'heavy'"),
    ("3 2\n1 2 1\n2 3 nan\n", 3, "weight must be finite"),
    ("3 2\n1 2 1\n2 3\n", 3, "expected 'i j w', got 2 fields"),
    ("3 2\n1 2 1\n2 2 1\n", 3, "self-loop on node 2"),
    ("3 3\n1 2 1\n2 3 1\n", 1, "the header declares 3 edges, the file has 2"),
    ("3 1\n1 2 1\n2 3 1\n", 1, "the header declares 1 edges, the file has 2"),
]


@pytest.mark.parametrize("text, line, message", GSET_ERRORS)
def test_gset_errors_name_the_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(sio.ProblemFileError) as caught:
        sio.read_gset(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


def test_gset_error_deep_in_a_large_file(tmp_path):
    # The fast parser rejects the file; the line-by-line pass must still name the line.
    lines = ["500 2000"] + [f"{1 + k % 499} {2 + k % 499} 1" for k in range(2000)]
    lines[1500] = "7 9 x1"
    path = write(tmp_path / "big.txt", "# comment\n" + "\n".join(lines) + "\n")
    with pytest.raises(sio.ProblemFileError, match=r"big.txt:1502: weight must be a number"):
        sio.read_gset(path)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        sio.read_gset(tmp_path / "absent.txt")


def test_write_rejects_bad_matrices(tmp_path):
    with pytest.raises(ValueError, match="square"):
        sio.write_gset(tmp_path / "g.txt", torch.ones(2, 3))
    with pytest.raises(ValueError, match="finite"):
        sio.write_qubo(tmp_path / "q.qubo", torch.tensor([[1.0, float("nan")], [0, 0]]))
    with pytest.raises(TypeError, match="adjacency"):
        sio.write_gset(tmp_path / "g.txt", "1 2 3")


# qbsolv


def brute_force_energies(Q: torch.Tensor) -> torch.Tensor:
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=Q.shape[0])), dtype=torch.float64)
    return torch.einsum("ki,ij,kj->k", bits, Q.to_dense(), bits)


@pytest.mark.parametrize("name", ["problem.qubo", "problem.qubo.gz"])
def test_qubo_round_trip_upper_triangular(tmp_path, name):
    Q = torch.triu(torch.from_numpy(np.random.default_rng(3).normal(size=(9, 9))))
    Q[4, 4] = 0  # a missing diagonal term must stay missing
    sio.write_qubo(tmp_path / name, Q)
    read = sio.read_qubo(tmp_path / name)
    assert read.layout == torch.sparse_coo
    assert torch.equal(read.to_dense(), Q)


def test_qubo_write_folds_lower_triangle_and_keeps_energy(tmp_path):
    Q = torch.from_numpy(np.random.default_rng(4).integers(-5, 6, (6, 6)).astype(np.float64))
    sio.write_qubo(tmp_path / "q.qubo", Q)
    read = sio.read_qubo(tmp_path / "q.qubo")
    assert torch.equal(torch.tril(read.to_dense(), -1), torch.zeros(6, 6, dtype=torch.float64))
    assert torch.equal(brute_force_energies(read), brute_force_energies(Q))
    sio.write_qubo(tmp_path / "model.qubo", QUBO(Q, dtype=torch.float64))
    assert torch.equal(sio.read_qubo(tmp_path / "model.qubo").to_dense(), read.to_dense())


def test_qubo_reads_known_text(tmp_path):
    text = ("c a QUBO by hand\nc\np qubo 0 4 2 3\nc nodes\n0 0 -1\n3 3 2.5\n"
            "c couplers\n0 1 4\n2 1 -3\n0 1 1\n")
    Q = sio.read_qubo(write(tmp_path / "q.qubo", text)).to_dense()
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[0, 0], expected[3, 3], expected[0, 1], expected[1, 2] = -1, 2.5, 5, -3
    assert torch.equal(Q, expected)
    # x^T Q x is the file's objective: x = (1, 1, 1, 0) -> -1 + 4 - 3 + 1.
    assert float(QUBO(Q, dtype=torch.float64)(torch.tensor([1.0, 1, 1, 0]))) == 1.0


QUBO_ERRORS = [
    ("c nothing\n", None, "no program line"),
    ("0 0 1\np qubo 0 2 1 0\n", 1, "entry before the program line"),
    ("c x\np qubo 0 2 1\n0 0 1\n", 2, "bad program line"),
    ("p qubit 0 2 1 0\n0 0 1\n", 1, "bad program line"),
    ("p qubo 0 two 1 0\n0 0 1\n", 1, "maxDiagonals must be an integer"),
    ("p qubo 0 2 1 0\n0 0 1\np qubo 0 2 1 0\n", 3, "a second program line"),
    ("p qubo 0 2 1 1\n0 0 1\n0 2 1\n", 3, "variable id 2 out of range 0..1"),
    ("p qubo 0 2 1 1\n0 0 1\n0 -1 1\n", 3, "variable id -1 out of range"),
    ("p qubo 0 2 1 1\n0 0 1\n0 1 abc\n", 3, "weight must be a number, got 'abc'"),
    ("p qubo 0 2 1 1\n0 0 1\n0 1\n", 3, "expected 'i j w'"),
    ("p qubo 0 2 2 1\n0 0 1\n0 1 1\n", 1,
     "declares 2 diagonal and 1 coupler lines, the file has 1 and 1"),
]


@pytest.mark.parametrize("text, line, message", QUBO_ERRORS)
def test_qubo_errors_name_the_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.qubo", text)
    with pytest.raises(sio.ProblemFileError) as caught:
        sio.read_qubo(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert message in str(caught.value)


# Format detection


def test_detect_format(tmp_path):
    gset = "2 1\n1 2 1\n"
    qubo = "c x\np qubo 0 2 0 1\n0 1 1\n"
    assert sio.detect_format(write(tmp_path / "a.qubo", "")) == "qubo"  # suffix wins
    assert sio.detect_format(tmp_path / "never-opened.rudy.gz") == "gset"
    assert sio.detect_format(write(tmp_path / "a.dat", gset)) == "gset"
    assert sio.detect_format(write(tmp_path / "b.txt", qubo)) == "qubo"
    kind, matrix = sio.read_problem(tmp_path / "b.txt")
    assert kind == "qubo" and matrix.layout == torch.sparse_coo and matrix.shape == (2, 2)
    with pytest.raises(sio.ProblemFileError, match="c.dat:1: unknown format"):
        sio.detect_format(write(tmp_path / "c.dat", "1 2 3\n"))
    with pytest.raises(sio.ProblemFileError, match="empty file"):
        sio.detect_format(write(tmp_path / "d.dat", "\n\n"))


# Hardening (issue 19, item 3; tests/interfaces/test_io_fuzz.py fuzzes the same readers)


def error_of(read, path):
    """(line, message) of the ProblemFileError that read(path) raises, with peak bytes traced."""
    tracemalloc.start()
    try:
        read(path)
    except sio.ProblemFileError as err:
        assert str(err).startswith(f"{path}:{err.line}: ")
        return err.line, err.message, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError(f"{path} was read")


DECLARED = [
    pytest.param("# comment\n\n1000000000000 3\n1 2 1\n2 3 1\n1 3 1\n", 3,
                 "the number of nodes N = 1000000000000 is more than 3037000499", id="N=10^12"),
    pytest.param("3 1000000000000\n1 2 1\n2 3 1\n1 3 1\n", 1,
                 "the header declares 1000000000000 edges, the file has 3", id="E=10^12"),
    pytest.param("3 100000000000000000000\n1 2 1\n", 1, "the number of edges E = "
                 "100000000000000000000 is more than 9223372036854775807", id="E=10^20"),
    pytest.param(f"{'9' * 5000} 3\n1 2 1\n", 1,
                 "N = 999999999999999999999999... (5000 digits) is more", id="N-5000-digits"),
    pytest.param("-3 2\n1 2 1\n", 1, "N must be >= 1 and E >= 0, got N=-3, E=2", id="N<0"),
    pytest.param("c x\np qubo 0 1000000000000 1 0\n0 0 1\n", 2,
                 "maxDiagonals = 1000000000000 is more than", id="qubo-n=10^12"),
    pytest.param("p qubo 0 3 1000000000000 1000000000000\n0 0 1\n0 1 1\n", 1,
                 "declares 1000000000000 diagonal and 1000000000000 coupler lines, the file "
                 "has 1 and 1", id="qubo-counts=10^12"),
    pytest.param("p qubo 0 0 0 0\n", 1, "maxDiagonals must be >= 1", id="qubo-n=0"),
]


@pytest.mark.parametrize("text, line, message", DECLARED)
def test_declared_sizes_allocate_nothing(tmp_path, text, line, message):
    """A header's sizes are checked, and nothing is allocated from them: the data decides."""
    path = write(tmp_path / "declared.txt", text)
    whole, rows = ((sio.read_qubo, sio.read_qubo_rows) if text.startswith(("c", "p")) else
                   (sio.read_gset, sio.read_gset_rows))
    for read in (whole, sio.read_problem, lambda p: rows(p, (0, 1))):
        found, said, peak = error_of(read, path)
        assert found == line and message in said
        assert peak < 4 << 20  # a chunk read at most, nothing in proportion to the header


def test_the_largest_size_reads_sparse(tmp_path):
    # N = MAX_SIZE with 3 edges: an O(N) allocation would be 24 GB; this reads in kilobytes.
    n = sio.MAX_SIZE
    path = write(tmp_path / "largest.txt", f"{n} 3\n1 {n} 1\n{n} 2 2\n5 7 3\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    W, rows = sio.read_gset(path), sio.read_gset_rows(path, lambda size: (size - 1, size))
    assert W.shape == (n, n) and W._nnz() == 6 and rows._nnz() == 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB
    with pytest.raises(sio.ProblemFileError, match=r"over.txt:1: .* is more than 3037000499"):
        sio.read_gset(write(tmp_path / "over.txt", f"{n + 1} 1\n1 2 1\n"))


PLAIN = b"3 2\n1 2 1\n2 3 1\n"
EXACT = [
    pytest.param(gzip.compress(PLAIN) + b"trailing", 4, "data after the end of the gzip",
                 id="gzip-trailing-garbage"),
    pytest.param(gzip.compress(PLAIN)[:-6], 4, "the gzip data ends early", id="gzip-no-trailer"),
    pytest.param(gzip.compress(PLAIN)[:12], 1, "the gzip data ends early", id="gzip-truncated"),
    pytest.param(gzip.compress(PLAIN)[:-8] + bytes(8), 4, "incorrect data check", id="gzip-crc"),
    pytest.param(b"\x1f\x8b", 1, "the gzip data ends early", id="gzip-magic-only"),
    pytest.param(b"\x1f\x8bnot gzip at all", 1, "damaged gzip data", id="gzip-not"),
    pytest.param("3 1\n1 2 1\n# caf\u00e9\n".encode("latin-1"), 3, "not UTF-8 text (byte 0xe9",
                 id="latin-1"),
    pytest.param("3 1\n1 2 1\n".encode("utf-16"), 1, "not UTF-8 text (byte 0xff", id="utf-16"),
    pytest.param(b"3 1\n1 2 x\n\xff\n", 2, "weight must be a number",
                 id="format-error-before-bad-byte"),
    pytest.param(b"\xef\xbb\xbf# BOM\r\n\r\n3 2\r\n1 2 1\r\n1 4 1\r\n", 5,
                 "node id 4 out of range 1..3", id="BOM-CRLF"),
    pytest.param(b"3 2\r1 2 1\r1 4 1\r", 3, "node id 4 out of range 1..3", id="CR"),
    pytest.param(b"3 2\r\n1 2 1\r2 3 1\r\n1 3 1", 1, "declares 2 edges, the file has 3",
                 id="mixed-line-ends"),
    pytest.param(b"3 1\n1 2 " + b"9" * 100_000 + b"\n", 2,
                 "weight must be finite, got '999999999999", id="weight-10^100000"),
    pytest.param(b"3 1\n1 2 1_0\n", 2, "weight must be a number, got '1_0'", id="underscore"),
    pytest.param("3 1\n1 \u0662 1\n".encode(), 2, "node id j must be an integer, got '\u0662'",
                 id="arabic-digit"),
    pytest.param(b"3 1\n1 2 " + b"1 " * 100_000 + b"\n", 2,
                 "expected 'i j w', got 8 or more fields", id="100000-fields"),
    pytest.param(b"3 2\n1 2 1e308\n2 1 1e308\n", 3, "edge 1-2, summed over its lines, is inf",
                 id="sum-overflow"),
]


@pytest.mark.parametrize("data, line, message", EXACT)
def test_not_text_and_edge_cases_name_the_line(tmp_path, data, line, message):
    path = tmp_path / "exact.bin"
    path.write_bytes(data)
    for read in (sio.read_gset, lambda p: sio.read_gset_rows(p, (0, 3)), sio.read_problem):
        found, said, _ = error_of(read, path)
        assert found == line and message in said, said
    if data[:2] != b"\x1f\x8b":  # the same error, the same line, in a gzip file
        packed = tmp_path / "exact.gz"
        packed.write_bytes(gzip.compress(data))
        assert error_of(sio.read_gset, packed)[:2] == error_of(sio.read_gset, path)[:2]


def test_gzip_members_and_zero_padding_are_read(tmp_path):
    path = tmp_path / "members.gz"
    path.write_bytes(gzip.compress(b"3 2\n1 2 1\n") + gzip.compress(b"2 3 5\n") + bytes(9))
    assert sio.read_gset(path).to_dense()[1, 2] == 5


def test_weights_past_the_dtype_name_the_line(tmp_path):
    path = write(tmp_path / "big.txt", "3 2\n1 2 1\n2 3 1e39\n")
    assert sio.read_gset(path)[1, 2] == 1e39  # float64 holds it
    for read in (sio.read_gset, lambda p, dtype: sio.read_gset_rows(p, (0, 3), dtype)):
        with pytest.raises(sio.ProblemFileError, match=r"big.txt:3: the weight of edge 2-3, "
                                                       r"summed over its lines, is inf in "
                                                       r"torch.float32"):
            read(path, dtype=torch.float32)
    qubo = write(tmp_path / "big.qubo", "p qubo 0 2 1 2\n0 0 1\n0 1 1.5e308\n1 0 1.5e308\n")
    for read in (sio.read_qubo, lambda p: sio.read_qubo_rows(p, (0, 1))):
        with pytest.raises(sio.ProblemFileError, match=r"big.qubo:4: the weight of entry "
                                                       r"\(0, 1\), summed over its lines, is inf"):
            read(qubo)


def test_decompression_limit_variable(tmp_path, monkeypatch):
    path = tmp_path / "small.gz"
    path.write_bytes(gzip.compress(b"2 1\n1 2 1\n"))  # 10 bytes of text
    for value in ("lots", "-5", "0"):
        monkeypatch.setenv("SB_NATIVE_MAX_DECOMPRESSED", value)
        with pytest.raises(ValueError, match="SB_NATIVE_MAX_DECOMPRESSED must be a positive"):
            sio.read_gset(path)
    monkeypatch.setenv("SB_NATIVE_MAX_DECOMPRESSED", "9")
    with pytest.raises(sio.ProblemFileError, match=r"small.gz:2: decompresses to more than 9 "
                                                   r"bytes.*set SB_NATIVE_MAX_DECOMPRESSED"):
        sio.read_gset(path)
    monkeypatch.setenv("SB_NATIVE_MAX_DECOMPRESSED", "10")
    assert sio.read_gset(path)._nnz() == 2
    assert sio.DEFAULT_MAX_DECOMPRESSED == 1 << 30


def test_error_pickles():
    again = pickle.loads(pickle.dumps(sio.ProblemFileError("f.txt", 3, "bad")))
    assert (again.path, again.line, again.message, str(again)) == ("f.txt", 3, "bad", "f.txt:3: bad")
