"""Parser fuzzing (issue 19, item 3): mutated G-set and qbsolv files, plain or gzip, give the
right matrix or a ProblemFileError naming the line, in bounded time and memory.

What the readers accept, by decision (sb_native/_io_checks.py says why):

* UTF-8 text; a byte order mark at the start is skipped; lines end with "\\n", "\\r\\n" or a
  lone "\\r", and are numbered from 1 (a "\\r\\n" is one line end).
* Blank lines, comments ("#" to the end of a G-set line, "c ..." lines in qbsolv),
  surrounding whitespace; repeated edges and entries add up.
* gzip: one member or more, zero padding after the last. Anything else after it, a
  truncated or damaged member, or more than SB_NATIVE_MAX_DECOMPRESSED bytes (1 GiB by
  default) of text is an error.
* Errors: self-loops, ids out of range, ids that are not ASCII decimal integers, weights that
  are not ASCII floats ("1_0" and other scripts' digits included) or not finite, N above
  MAX_SIZE, counts that do not match, sums of repeated weights past the dtype's range.

Every error is a ProblemFileError whose .line is the 1-based line of the first problem (None
only for a qbsolv file without a program line). The reference readers below restate the
formats from the documentation, line by line, as the oracle for mutated files.
"""

import gzip
import math
import os
import re
import struct
import tempfile
import time
import tracemalloc
import zlib
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb_native import _io_checks, _io_rows
from sb_native import io as sio

# Small sparse tensors: a second OpenMP thread only adds wake-up latency (tests/conftest.py),
# some 10 ms an operation on a loaded 2-core machine against 10 us.
pytestmark = pytest.mark.usefixtures("one_thread")
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MiB = 1 << 20


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# The reference readers: the formats as documented, one line at a time.

class Bad(Exception):
    def __init__(self, line):
        super().__init__(line)
        self.line = line


def ref_lines(data: bytes):
    """(number, line) of the text's lines; where it stops being UTF-8, (number, None) in
    place of the line that is not text, and nothing after it."""
    try:
        text, bad = data.decode("utf-8"), False
    except UnicodeDecodeError as err:
        cut = max(data.rfind(b"\n", 0, err.start), data.rfind(b"\r", 0, err.start)) + 1
        text, bad = data[:cut].decode("utf-8"), True
    text = text[1:] if text.startswith("\ufeff") else text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if bad:
        lines[-1] = None
    return list(enumerate(lines, start=1))


def ref_content(data, comment):
    """(number, fields) of the lines that are neither blank nor comments; fields None for a
    line that is not text, read as the other problems are, in order."""
    content = []
    for k, line in ref_lines(data):
        if line is None:
            return content + [(k, None)]
        fields = line.split("#", 1)[0].split() if comment == "#" else line.split()
        if fields and not fields[0].startswith(comment):
            content.append((k, fields))
    return content


def ref_int(text, line):
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise Bad(line)
    return int(text) if len(text) < 40 else (-1 if text[0] == "-" else 1) * 10**40


def ref_weight(text, line):
    try:
        if not text.isascii() or "_" in text:
            raise ValueError(text)
        weight = float(text)
    except ValueError:
        raise Bad(line) from None
    if not math.isfinite(weight):
        raise Bad(line)
    return weight


def ref_gset(data):
    """(N, {(i, j): summed w}) with 0-based i < j, or Bad(line)."""
    content = ref_content(data, "#")
    if not content:
        raise Bad(1)
    (top, header), body = content[0], content[1:]
    if header is None or len(header) != 2:
        raise Bad(top)
    n, e = ref_int(header[0], top), ref_int(header[1], top)
    if not (1 <= n <= sio.MAX_SIZE and 0 <= e < 2**63):
        raise Bad(top)
    sums = {}
    for k, fields in body:
        if fields is None or len(fields) != 3:
            raise Bad(k)
        i, j = ref_int(fields[0], k), ref_int(fields[1], k)
        if not (1 <= i <= n and 1 <= j <= n) or i == j:
            raise Bad(k)
        key = (min(i, j) - 1, max(i, j) - 1)
        sums[key] = sums.get(key, 0.0) + ref_weight(fields[2], k)
    if len(body) != e:
        raise Bad(top)
    return n, sums


def ref_qubo(data):
    """(n, {(i, j): summed w}) with i <= j, or Bad(line)."""
    content = ref_content(data, "c")
    if not content:
        raise Bad(None)
    (top, header), body = content[0], content[1:]
    if header is None or header[0] != "p" or len(header) != 6 or header[1] != "qubo":
        raise Bad(top)
    n, diagonals, couplers = (ref_int(value, top) for value in header[3:])
    if not (1 <= n <= sio.MAX_SIZE and 0 <= diagonals < 2**63 and 0 <= couplers < 2**63):
        raise Bad(top)
    sums, counted = {}, [0, 0]
    for k, fields in body:
        if fields is None or fields[0] == "p" or len(fields) != 3:
            raise Bad(k)
        i, j = ref_int(fields[0], k), ref_int(fields[1], k)
        if not (0 <= i < n and 0 <= j < n):
            raise Bad(k)
        key = (min(i, j), max(i, j))
        sums[key] = sums.get(key, 0.0) + ref_weight(fields[2], k)
        counted[i != j] += 1
    if counted != [diagonals, couplers]:
        raise Bad(top)
    return n, sums


def expected_matrix(n, sums, symmetric):
    keys = list(sums) + ([(j, i) for i, j in sums] if symmetric else [])
    values = list(sums.values()) * (2 if symmetric else 1)
    indices = torch.tensor(keys, dtype=torch.int64).reshape(-1, 2).t()
    return torch.sparse_coo_tensor(indices, torch.tensor(values, dtype=torch.float64), (n, n),
                                   check_invariants=True).coalesce()


# Running the readers


def outcome(read, path):
    """("ok", result) or ("error", line, message); any other exception fails the test."""
    try:
        return ("ok", read(path))
    except sio.ProblemFileError as err:
        where = f"{path}:{err.line}: " if err.line is not None else f"{path}: "
        assert str(err).startswith(where) and err.path == os.fspath(path)
        assert err.line is None or err.line >= 1
        assert len(err.message) < 400, "a message quotes the file's text cut short"
        return ("error", err.line, err.message)


def same(first, second):
    """Two outcomes agree: the same error, or equal matrices (to rounding: repeated entries
    may add up in another order)."""
    assert first[0] == second[0], (first, second)
    if first[0] == "error":
        assert first[1:] == second[1:]
    elif isinstance(first[1], torch.Tensor):
        a, b = first[1].coalesce(), second[1].coalesce()
        assert a.shape == b.shape and torch.equal(a.indices(), b.indices())
        torch.testing.assert_close(a.values(), b.values(), rtol=1e-12, atol=1e-300)
    else:
        assert first[1] == second[1]


def check_file(folder, data: bytes, kind: str):
    """Every reader of `kind` on data, plain and gzip: the reference's result or its error
    line; the row readers, detect_format and read_problem agree with the whole-file reader."""
    path, packed = folder / f"f.{kind}.txt", folder / f"f.{kind}.bin"
    path.write_bytes(data)
    packed.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    whole_reader = sio.read_gset if kind == "gset" else sio.read_qubo
    whole = outcome(whole_reader, path)
    if data[:2] == _io_checks.GZIP_MAGIC:  # read as gzip: only the outcome's type is checked
        outcome(sio.read_problem, path)
        return
    try:
        n, sums = (ref_gset if kind == "gset" else ref_qubo)(data)
    except Bad as bad:
        assert whole[0] == "error" and whole[1] == bad.line, (data[:300], whole, bad.line)
    else:
        assert whole[0] == "ok", (data[:300], whole)
        same(whole, ("ok", expected_matrix(n, sums, kind == "gset")))
    same(whole, outcome(whole_reader, packed))
    rows = (lambda size: (size // 3, size)) if kind == "gset" else (lambda size: (0, 1))
    row_reader = sio.read_gset_rows if kind == "gset" else sio.read_qubo_rows
    expected = whole
    if whole[0] == "ok":
        lo, hi = rows(whole[1].shape[0])
        i, j = whole[1].indices()
        # G-set: rows lo..hi-1; qbsolv: the entries in rows or columns lo..hi-1.
        keep = (i >= lo) & (i < hi) if kind == "gset" else (
            ((i >= lo) & (i < hi)) | ((j >= lo) & (j < hi)))
        expected = ("ok", torch.sparse_coo_tensor(whole[1].indices()[:, keep],
                                                  whole[1].values()[keep], whole[1].shape,
                                                  check_invariants=True).coalesce())
    # Default chunks, then tiny ones: a problem between two chunks, a piece cut anywhere.
    for chunk, piece in ((_io_checks.CHUNK, _io_rows.LINES_PER_PIECE), (5, 2)):
        with mock.patch.object(_io_checks, "CHUNK", chunk), \
                mock.patch.object(_io_rows, "LINES_PER_PIECE", piece):
            for source in (path, packed):
                block = outcome(lambda p: row_reader(p, rows), source)
                if whole[0] == "ok":
                    same(block, expected)
                else:
                    assert block[0] == "error" and block[1] == whole[1], (block, whole)
                detected = outcome(sio.detect_format, source)
                assert detected[0] == "error" or detected[1] in ("gset", "qubo")
    outcome(sio.read_problem, path)


# Valid files to mutate: written by the package's writers, and by hand.


def written(writer, matrix, name):
    with tempfile.TemporaryDirectory() as where:
        path = os.path.join(where, name)
        writer(path, matrix)
        with open(path, "rb") as handle:
            return handle.read()


_rng = np.random.default_rng(19)
_upper = np.triu(_rng.integers(-3, 4, (7, 7)) * (_rng.random((7, 7)) < 0.5), 1).astype(float)
GSET_BASES = [
    written(sio.write_gset, torch.from_numpy(_upper), "g.txt"),
    written(sio.write_gset, torch.from_numpy(np.round(_upper * 0.37, 3)), "g.txt"),
    b"# a graph by hand\n5 6\n1 2 1\n2 3 -1 # inline comment\n\n3 4 2.5\n4 5 1e3\n5 1 -0.5\n"
    b"1 2 1\n",
]
QUBO_BASES = [
    written(sio.write_qubo, torch.from_numpy(_upper + np.diag(_rng.integers(-2, 3, 7))), "q.qubo"),
    b"c by hand\np qubo 0 4 2 4\nc diagonal\n0 0 -1\n3 3 2.5\n0 1 4\n2 1 -3\n0 1 1e-3\n"
    b"3 0 7\n",
]
NASTY = ["1e400", "-1e400", "nan", "inf", "-Infinity", "1" + "0" * 30, "-" + "9" * 25,
         "9" * 5000, "0", "-1", "+2", "007", "1_0", "\u0661", "0x10", "1.5", "1e3", ".5", "5.",
         "1e-400", "x", "#", "c", "p", "qubo", "\x00", "\ufeff", "\u00a0", "\x0c", "\r",
         "4294967297", str(sio.MAX_SIZE), str(sio.MAX_SIZE + 1), "1000000000000", "1 2",
         "\n", "\r\n", "\xe9"]
NASTY_BYTES = [token.encode() for token in NASTY] + [b"\xff", b"\xc3", b"\xef\xbb\xbf",
                                                     b"\x1f\x8b", b"\x80\x80", b"\xf0\x9f\x98"]


def truncated(draw, data: bytes) -> bytes:
    return data[:draw(st.integers(0, len(data)))]


def flipped(draw, data: bytes, most: int) -> bytes:
    """data with 1 to `most` bytes set to random values."""
    changed = bytearray(data)
    for _ in range(draw(st.integers(1, most))):
        changed[draw(st.integers(0, len(changed) - 1))] = draw(st.integers(0, 255))
    return bytes(changed)


@st.composite
def mutated(draw, bases):
    data = draw(st.sampled_from(bases))
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "token", "lines"]))
    if kind == "truncate":
        return truncated(draw, data)
    if kind == "flip":
        return flipped(draw, data, 4)
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        junk = draw(st.sampled_from(NASTY_BYTES) | st.binary(min_size=1, max_size=8))
        return data[:at] + junk + data[at:]
    if kind == "token":
        for _ in range(draw(st.integers(1, 3))):
            spans = [match.span() for match in re.finditer(rb"\S+", data)]
            start, end = draw(st.sampled_from(spans))
            data = data[:start] + draw(st.sampled_from(NASTY)).encode() + data[end:]
        return data
    lines = data.split(b"\n")
    k, other = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
    operation = draw(st.sampled_from(["delete", "duplicate", "swap"]))
    if operation == "delete":
        del lines[k]
    elif operation == "duplicate":
        lines.insert(k, lines[k])
    else:
        lines[k], lines[other] = lines[other], lines[k]
    return b"\n".join(lines)


@FUZZ
@given(data=mutated(GSET_BASES))
def test_mutated_gset_files(folder, data):
    check_file(folder, data, "gset")


@FUZZ
@given(data=mutated(QUBO_BASES))
def test_mutated_qubo_files(folder, data):
    check_file(folder, data, "qubo")


@settings(FUZZ, max_examples=300)
@given(data=st.binary(max_size=200) | st.lists(st.sampled_from(NASTY_BYTES)).map(b" ".join))
def test_binary_garbage(folder, data):
    check_file(folder, data, "gset")
    check_file(folder, data, "qubo")


@st.composite
def valid_variant(draw, bases, comment):
    """A base file as another tool may write it: the same matrix."""
    data = draw(st.sampled_from(bases))
    lines = data.split(b"\n")
    for _ in range(draw(st.integers(0, 3))):
        extra = draw(st.sampled_from([b"", b"   ", b"\t", comment + b" note", comment]))
        lines.insert(draw(st.integers(0, len(lines))), extra)
    if comment == b"#" and draw(st.booleans()):
        lines = [line + b"  # tail" if line.strip() else line for line in lines]
    if draw(st.booleans()):
        lines = [b"  " + line + b" \t" for line in lines]
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    data = ending.join(lines)
    if draw(st.booleans()):
        data = data.rstrip(b"\r\n")  # no final line end
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + data


@settings(FUZZ, max_examples=300)
@given(gset=valid_variant(GSET_BASES[2:], b"#"), qubo=valid_variant(QUBO_BASES[1:], b"c"),
       packed=st.booleans())
def test_valid_variants_read_the_same(folder, gset, qubo, packed):
    for data, base, read in ((gset, GSET_BASES[2], sio.read_gset),
                             (qubo, QUBO_BASES[1], sio.read_qubo)):
        (folder / "base.txt").write_bytes(base)
        (folder / "variant.txt").write_bytes(gzip.compress(data) if packed else data)
        expected, got = read(folder / "base.txt"), read(folder / "variant.txt")
        assert torch.equal(expected.indices(), got.indices())
        assert torch.equal(expected.values(), got.values())


@st.composite
def damaged_gzip(draw):
    text = draw(st.sampled_from(GSET_BASES))
    data = gzip.compress(text, mtime=0)
    kind = draw(st.sampled_from(["truncate", "flip", "append", "members"]))
    if kind == "truncate":
        return truncated(draw, data)
    if kind == "flip":
        return flipped(draw, data, 3)
    if kind == "append":
        return data + draw(st.sampled_from([b"\0" * 7, b"garbage", b"\x1f", b"\x1f\x8b",
                                            b"\0\0\x1f\x8b\x08"]) | st.binary(max_size=16))
    return data + gzip.compress(b"# a second member\n", mtime=0) + draw(st.sampled_from(
        [b"", b"\0\0", b"x"]))


@settings(FUZZ, max_examples=400)
@given(data=damaged_gzip())
def test_damaged_gzip(folder, data):
    """A damaged gzip file is an error with a line (where the decompressed text stopped);
    what reads is what the gzip module reads."""
    path, plain = folder / "d.gz", folder / "d.txt"
    path.write_bytes(data)
    got = outcome(sio.read_gset, path)
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        assert got[0] == "error" and got[1] is not None
        return
    plain.write_bytes(text)
    expected = outcome(sio.read_gset, plain)
    if got[0] == "ok" or expected[0] == "error":
        same(got, expected)
    else:  # zlib checks what the gzip module skips: reserved flag bits, the header's CRC
        assert "header" in got[2], got
    rows = outcome(lambda p: sio.read_gset_rows(p, (0, 1)), path)
    assert rows[0] == got[0] and (got[0] == "ok" or rows[1:] == got[1:])


# The streamed lines are the whole text's lines, whatever the chunks cut.


def collect(lines, whole=False):
    """(the lines, and the (line, message) of the error that ends them, if any); whole: of
    split_lines, whose last line may be the empty one after the last line end."""
    read = []
    try:
        for line in lines:
            read.append(line)
    except sio.ProblemFileError as err:
        return read, (err.line, err.message)
    return (read[:-1] if whole and read and read[-1] == "" else read), None


@settings(FUZZ, max_examples=600)
@given(data=st.lists(st.sampled_from([b"\n", b"\r", b"\r\n", b"a", b" 1", b"\xef\xbb\xbf",
                                      b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80",
                                      b"\xff", b"\xe2\x82", b"\0"]), max_size=40).map(b"".join),
       chunk=st.integers(1, 9), packed=st.booleans())
def test_streamed_lines_match_the_whole_text(folder, data, chunk, packed):
    """The same lines, then the same error at the same line, whatever the chunks cut (a
    "\\r\\n", a UTF-8 sequence, the BOM)."""
    path = folder / "lines.txt"
    path.write_bytes(gzip.compress(data, mtime=0) if packed else data)
    with mock.patch.object(_io_checks, "CHUNK", chunk):
        whole = collect(_io_checks.split_lines(*_io_checks.read_text(path)), whole=True)
        streamed = collect(_io_checks.lines(path))
    assert streamed == whole
    expected = ref_lines(data)
    bad = expected[-1][0] if expected[-1][1] is None else None
    assert (whole[1] or (None,))[0] == bad
    assert whole[0] == [line for _, line in expected][:len(whole[0])]


# numpy's parser (the G-set fast path) accepts nothing the line-by-line pass refuses.


@settings(FUZZ, max_examples=600)
@given(rows=st.lists(st.lists(st.sampled_from(
    ["1", "2", "3", "+1", "-1", "0", "1.0", "1e5", ".5", "5.", "1_0", "0x1p3", "inf", "nan",
     "1e400", "\u0661", "1d3", "1,5", "#", "#x", "\x0c", "\u00a0", "\x85", "\r", "\x00",
     "99999999999999999999", "1e-400", "+.5e-3", "Infinity"]), min_size=1, max_size=4),
    min_size=1, max_size=6))
def test_fast_path_agrees_with_the_line_by_line_pass(folder, rows):
    body = "\n".join(" ".join(fields) for fields in rows) + "\n"
    fast = sio._gset_table(body, 3)
    if fast is None:
        return
    slow = sio._gset_slow(folder, _io_checks.content_lines(_io_checks.split_lines(body), "#"), 3)
    assert np.array_equal(fast, slow)


def _peak(read, *args):
    """(outcome, peak bytes traced) of read(*args)."""
    tracemalloc.start()
    try:
        result = outcome(read, *args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# Decompression bombs: refused at the limit, never read to the end.


def bomb(path, head: bytes, line: bytes, total: int):
    """A valid gzip file of head + line repeated to `total` bytes, written in kilobytes: the
    line block is deflated once, ending in a full flush (no reference back), and repeated."""
    block = line * (MiB // len(line))
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = deflate.flush(zlib.Z_FINISH)
    count = (total - len(head)) // len(block) + 1
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    size = len(head) + count * len(block)
    with open(path, "wb") as handle:
        handle.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first)
        for _ in range(count):
            handle.write(repeated)
        handle.write(last + struct.pack("<II", crc, size & 0xFFFFFFFF))
    return size


def test_bomb_builder_is_valid_gzip(folder):
    size = bomb(folder / "small.gz", b"3 2\n", b"1 2 1\n", 3 * MiB)
    with gzip.open(folder / "small.gz") as handle:
        text = handle.read()
    assert len(text) == size and text.startswith(b"3 2\n1 2 1\n") and text.endswith(b"1 2 1\n")


def test_bomb_stops_at_the_default_limit_in_bounded_memory(folder):
    """1.1 GB of comment lines from a 1 MB file: the streamed reader stops at 1 GiB, having
    held a few chunks at a time."""
    path = folder / "bomb.qubo.gz"
    line = b"c " + b"x" * (64 * 1024 - 3) + b"\n"
    size = bomb(path, b"p qubo 0 2 1 0\n", line, 1100 * MiB)
    assert size > sio.DEFAULT_MAX_DECOMPRESSED and os.path.getsize(path) < 2 * MiB
    start = time.perf_counter()
    result, peak = _peak(lambda p: sio.read_qubo_rows(p, (0, 1)), path)
    assert result[0] == "error" and "more than 1073741824 bytes" in result[2]
    assert "SB_NATIVE_MAX_DECOMPRESSED" in result[2]
    assert result[1] == 1 + (sio.DEFAULT_MAX_DECOMPRESSED - 15) // len(line) + 1
    assert peak < 32 * MiB
    assert time.perf_counter() - start < 120  # a bomb read to the end would never finish


@pytest.mark.parametrize("kind, limit", [("gset", 2 * MiB), ("qubo", MiB // 2)])
def test_bomb_of_valid_lines_stops_at_a_lowered_limit(folder, monkeypatch, kind, limit):
    """Lines that parse, under a header that declares 10^12 of them: every reader stops at
    the limit (lowered here, so the test stays small), holding about that much."""
    monkeypatch.setenv("SB_NATIVE_MAX_DECOMPRESSED", str(limit))
    monkeypatch.setattr(_io_rows, "CHARS_PER_PIECE", MiB // 4)
    head, line = ((b"3 1000000000000\n", b"1 2 1\n") if kind == "gset" else
                  (b"p qubo 0 3 0 1000000000000\n", b"0 1 1\n"))
    path = folder / f"bomb-{kind}.gz"
    assert bomb(path, head, line, 1100 * MiB) > 1 << 30
    readers = ([sio.read_gset, sio.read_gset_edges, lambda p: sio.read_gset_rows(p, (2, 3))]
               if kind == "gset" else [sio.read_qubo, lambda p: sio.read_qubo_rows(p, (2, 3))])
    for read in readers + [sio.read_problem]:
        result, peak = _peak(read, path)
        assert result[0] == "error" and f"more than {limit} bytes" in result[2], result
        assert result[1] == 1 + (limit - len(head)) // len(line) + 1
        assert peak < 8 * limit + 32 * MiB  # a chunk's lines as strings, a piece, the limit
