"""What keeps the problem-file readers of sb_native.io safe on any input (issue 19, parser
fuzzing): bounded reading, decoding that names the line, strict numeric fields and the size
limit of a sparse matrix. A bad file raises ProblemFileError naming the file and the line,
never another exception, a hang or an allocation its data does not bear out.

Rules, and why:

* A gzip file may decompress to at most SB_NATIVE_MAX_DECOMPRESSED bytes (default 1 GiB,
  DEFAULT_MAX_DECOMPRESSED): a small file can expand a thousandfold (a decompression bomb),
  so its size on disk says nothing about the memory it needs. A plain file is read as it is.
* Text is UTF-8; a byte order mark at the start is skipped. Lines end with "\\n", "\\r\\n" or
  a lone "\\r" (as Python's text mode reads them) and are numbered from 1.
* N (G-set nodes, qbsolv maxDiagonals) is at most MAX_SIZE = 3,037,000,499: a sparse COO
  tensor flattens (row, col) into the int64 row * N + col, and coalesce fails past it.
* Ids are ASCII decimal integers, weights ASCII floats: int() and float() also take "1_0"
  and other scripts' digits, which numpy's parser (the G-set fast path) refuses, so both
  paths accept the same files.
"""

import math
import os
import zlib
from typing import Iterable, Iterator, List, Optional, Tuple, Union

import torch

PathLike = Union[str, os.PathLike]
GZIP_MAGIC = b"\x1f\x8b"
MAX_DECOMPRESSED_ENV = "SB_NATIVE_MAX_DECOMPRESSED"
DEFAULT_MAX_DECOMPRESSED = 1 << 30
MAX_SIZE = math.isqrt(2**63 - 1)
MAX_COUNT = 2**63 - 1  # the most edges or entries a header may declare: an int64
# A line is split into at most this many fields (the longest line, qbsolv's program line, has
# 6): a line of a billion tokens costs one string, not a billion.
MAX_FIELDS = 8
# Bytes read (and decompressed) at a time.
CHUNK = 1 << 20


class ProblemFileError(ValueError):
    """A malformed problem file; `path` and `line` (1-based, None for the whole file).

    >>> import os, tempfile
    >>> from sb_native.io import ProblemFileError, read_gset
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "bad.txt")
    >>> with open(path, "w") as handle:
    ...     _ = handle.write("2 1\\n1 3 1\\n")  # node 3 of a 2-node graph
    >>> try:
    ...     read_gset(path)
    ... except ProblemFileError as err:
    ...     print(err.line, err.message)
    2 node id 3 out of range 1..2
    >>> folder.cleanup()
    """

    __module__ = "sb_native.io"  # where users import it from (and where its doctest runs)

    def __init__(self, path: PathLike, line: Optional[int], message: str) -> None:
        self.path, self.line, self.message = os.fspath(path), line, message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")

    def __reduce__(self):
        # ValueError would pickle the formatted text alone, which __init__ cannot take back.
        return type(self), (self.path, self.line, self.message)


def max_decompressed() -> int:
    """The most bytes a gzip file may decompress to: SB_NATIVE_MAX_DECOMPRESSED, read at each
    call, else DEFAULT_MAX_DECOMPRESSED."""
    value = os.environ.get(MAX_DECOMPRESSED_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_DECOMPRESSED
    limit = int(value) if value.isascii() and value.isdigit() else 0
    if limit < 1:
        raise ValueError(f"{MAX_DECOMPRESSED_ENV} must be a positive number of bytes, "
                         f"got {value!r}")
    return limit


class _Damaged(Exception):
    """The compressed data cannot be read on; the reader that knows the line raises it as a
    ProblemFileError. too_large: the limit, which refuses the file as a whole."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def _gzip_chunks(handle) -> Iterator[bytes]:
    """The decompressed data of a gzip file (its members one after the other, zero padding
    skipped, as gzip.open reads them), CHUNK bytes at most at a time.

    zlib directly, not gzip.open: a damaged member then loses none of the data before the
    damage (the error names the right line), and no call ever returns more than a chunk,
    however far the data expands.
    """
    limit, total = max_decompressed(), 0
    inflate: Optional["zlib._Decompress"] = None
    data, full, members = b"", False, 0
    while True:
        if not data and not full:  # a full chunk out: the input read may hold more
            data = handle.read(CHUNK)
            if not data:
                if inflate is not None:
                    raise _Damaged("the gzip data ends early, a truncated file?")
                return
        if inflate is None:  # between members: zero padding, another member, or garbage
            data = data.lstrip(b"\0")
            if len(data) == 1:
                data += handle.read(1)
            if not data:
                continue
            if members and not data.startswith(GZIP_MAGIC):
                raise _Damaged("data after the end of the gzip data")
            inflate, members = zlib.decompressobj(wbits=31), members + 1  # 31: gzip, CRC checked
        wanted = min(CHUNK, limit + 1 - total)  # never more than a byte past the limit
        before = inflate.copy()  # some 40 kB, a chunk's worth of output apart
        try:
            out = inflate.decompress(data, wanted)
        except zlib.error as err:
            # The failed call's output is lost: decompress its input again in small steps,
            # so the error names the line that the damage cuts, not the chunk's first.
            yield _before_damage(before, data, wanted)
            raise _Damaged(f"damaged gzip data ({err})") from None
        full = len(out) == wanted
        if inflate.eof:
            data, inflate, full = inflate.unused_data, None, False
        else:
            data = inflate.unconsumed_tail
        total += len(out)
        if total > limit:
            yield out[:len(out) - (total - limit)]  # so the error names the line it reached
            raise _Damaged(f"decompresses to more than {limit} bytes, the limit for a gzip file "
                           f"(a decompression bomb?); set {MAX_DECOMPRESSED_ENV} to a larger "
                           "number of bytes to read it", too_large=True)
        if out:
            yield out


def _before_damage(inflate, data: bytes, most: int) -> bytes:
    """What inflate gives of data, at most `most` bytes, before the damage that stops it: 64
    input bytes at a time, then the failing 64 a byte at a time (from a copy)."""
    out, size, start, step = [], 0, 0, 64
    while start < len(data) and size < most:
        saved = inflate.copy() if step > 1 else inflate
        try:  # most - size > 0: a max_length of 0 would mean no limit
            piece = inflate.decompress(data[start:start + step], most - size)
        except zlib.error:
            if step == 1:
                break
            inflate, step = saved, 1
            continue
        out.append(piece)
        size, start = size + len(piece), start + step
        if inflate.unconsumed_tail or inflate.eof:
            break
    return b"".join(out)


def _breaks(data, end: int) -> int:
    """Line breaks ("\\n", "\\r\\n", "\\r") in data[:end]."""
    return data.count(b"\n", 0, end) + data.count(b"\r", 0, end) - data.count(b"\r\n", 0, end)


def _not_utf8(data, err: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte {data[err.start]:#04x}: {err.reason})"


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def read_text(path: PathLike) -> Tuple[str, Optional[ProblemFileError]]:
    """(text, problem): the whole text, BOM skipped and every line ending made "\\n"; or,
    where the file stops being text (bad UTF-8, damaged gzip), the lines before the one that
    is not and the error naming it, to raise once they have been read (split_lines): a
    format error on an earlier line comes first, as when streamed.

    Past the decompression limit, the error is raised at once: parsing a gigabyte to look for
    an earlier error would cost what the limit saves.
    """
    problem = None
    with open(path, "rb") as handle:
        if handle.read(2) != GZIP_MAGIC:
            handle.seek(0)
            data: Union[bytes, bytearray] = handle.read()
        else:
            handle.seek(0)
            data = bytearray()
            try:
                for chunk in _gzip_chunks(handle):
                    data += chunk
            except _Damaged as err:
                if err.too_large:
                    raise ProblemFileError(path, _breaks(data, len(data)) + 1, str(err)) from None
                problem = len(data), str(err)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:  # before any gzip damage, which ends the data
        problem = err.start, _not_utf8(data, err)
    if problem is not None:
        end, message = problem
        cut = max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end)) + 1
        text = data[:cut].decode("utf-8")
    del data
    text = _newlines(text[1:] if text.startswith("\ufeff") else text)
    if problem is None:
        return text, None
    return text, ProblemFileError(path, text.count("\n") + 1, message)


def split_lines(text: str, problem: Optional[ProblemFileError] = None) -> Iterator[str]:
    """text.split("\\n"), then `problem` raised, if any, in place of the line it names.

    The first lines one at a time (the header is near the top: finding it costs no list of
    every line, which the G-set fast path never needs), the rest split at C speed.
    """
    start = 0
    for _ in range(64):
        end = text.find("\n", start)
        if end < 0:
            break
        yield text[start:end]
        start = end + 1
    else:
        rest = text[start:].split("\n")
        start = len(text) - len(rest.pop())
        yield from rest
    if problem is not None:
        raise problem
    yield text[start:]


class _Splitter:
    """Text, fed a chunk at a time, into blocks of read_text's lines: line ends made "\\n" (a
    "\\r\\n" may be cut between chunks), a BOM skipped at the start, the unfinished last line
    kept in pieces (a long line is never copied per chunk)."""

    def __init__(self) -> None:
        self.breaks, self.started, self.after_cr = 0, False, False
        self.line: List[str] = []

    def feed(self, text: str) -> Optional[str]:
        """The lines that text completes, joined by "\\n" (None: none)."""
        if not self.started and text:
            self.started, text = True, text[1:] if text.startswith("\ufeff") else text
        if self.after_cr and text:
            self.after_cr, text = False, text[1:] if text[0] == "\n" else text
        if text:
            self.after_cr = text.endswith("\r")
        text = _newlines(text)
        end = text.rfind("\n")
        if end < 0:
            self.line.append(text)
            return None
        self.breaks += text.count("\n")
        block = "".join(self.line) + text[:end] if self.line else text[:end]
        self.line = [text[end + 1:]]
        return block


def text_blocks(path: PathLike) -> Iterator[str]:
    """read_text(path)'s lines, streamed CHUNK bytes at a time, in blocks (a chunk's complete
    lines joined by "\\n"): the same lines, then the same problem raised in place of the same
    line, between two blocks (the lines before it are all handed out first)."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        chunks = _gzip_chunks(handle) if compressed else iter(lambda: handle.read(CHUNK), b"")
        splitter, pending = _Splitter(), b""  # pending: a UTF-8 sequence cut by a chunk's end
        while True:
            problem = None
            try:
                chunk = next(chunks, None)
            except _Damaged as err:
                chunk, pending, problem = None, b"", str(err)
            data = pending + chunk if pending and chunk else chunk or pending
            try:
                text, pending = data.decode("utf-8"), b""
            except UnicodeDecodeError as err:
                if chunk is not None and err.end == len(data) and \
                        err.reason == "unexpected end of data":
                    text, pending = data[:err.start].decode("utf-8"), data[err.start:]
                else:
                    text, problem = data[:err.start].decode("utf-8"), _not_utf8(data, err)
            block = splitter.feed(text)
            if block is not None:
                yield block
            if problem is not None:
                raise ProblemFileError(path, splitter.breaks + 1, problem)
            if chunk is None:
                break
        last = "".join(splitter.line)
        if last:
            yield last


def lines(path: PathLike) -> Iterator[str]:
    """text_blocks(path), one line at a time (without "\\n")."""
    for block in text_blocks(path):
        yield from block.split("\n")


def content_lines(lines: Iterable[str], comment: str) -> Iterator[Tuple[int, List[str]]]:
    """(1-based line number, fields) of each line that is neither blank nor a comment, of
    the lines of split_lines or lines (every line ending already "\n").

    At most MAX_FIELDS fields, the last holding the rest of the line.
    """
    most = MAX_FIELDS - 1
    for number, line in enumerate(lines, start=1):
        fields = (line.split(comment, 1)[0].split(None, most) if comment == "#"
                  else line.split(None, most))
        if fields and not fields[0].startswith(comment):
            yield number, fields


def count_text(fields: List[str]) -> str:
    return f"{len(fields)}" if len(fields) < MAX_FIELDS else f"{MAX_FIELDS} or more"


def show(value: str) -> str:
    """value for a message, quoted and cut short: a field may be a megabyte long."""
    return repr(value) if len(value) <= 40 else f"{value[:24]!r}... ({len(value)} characters)"


def show_integer(value: str) -> str:
    """An integer field (int_field's syntax) for a message: its number, or cut short."""
    return str(int(value)) if len(value) <= 31 else f"{value[:24]}... ({len(value)} digits)"


def int_field(path: PathLike, number: int, value: str, what: str) -> int:
    """value as an int: ASCII digits, a sign at most (int() also takes "1_0" and other
    scripts' digits). Past 30 digits, beyond any id or count a file can hold, ±10**30: int()
    refuses past 4300, and the messages show the text, not the number."""
    digits = value[1:] if value[0] in "+-" else value
    if not (digits.isascii() and digits.isdigit()):
        raise ProblemFileError(path, number, f"{what} must be an integer, got {show(value)}")
    if len(value) <= 31:
        return int(value)
    return -10**30 if value[0] == "-" else 10**30


def check_size(path: PathLike, number: int, value: str, what: str, most: int = MAX_SIZE) -> None:
    """value, an int_field, is at most `most`: MAX_SIZE for a matrix's N (row * N + col must
    fit an int64), MAX_COUNT for a count."""
    if int_field(path, number, value, what) > most:
        reason = ("the largest N a sparse matrix can index (N * N must fit in an int64)"
                  if most == MAX_SIZE else "an int64")
        raise ProblemFileError(path, number, f"{what} = {show_integer(value)} is more than "
                                             f"{most}, {reason}")


def weight_field(path: PathLike, number: int, value: str) -> float:
    try:
        if not value.isascii() or "_" in value:
            raise ValueError(value)
        weight = float(value)
    except ValueError:
        raise ProblemFileError(path, number,
                               f"weight must be a number, got {show(value)}") from None
    if not math.isfinite(weight):
        raise ProblemFileError(path, number, f"weight must be finite, got {show(value)}")
    return weight


def first_overflow(entries: Iterable[Tuple[int, int, int, float]], pair: Tuple[int, int],
                   dtype: torch.dtype) -> Optional[int]:
    """The line at which the weights of pair ((i, j), i <= j) stop adding up to a finite dtype
    number, read from (line, i, j, w) entries; else the pair's last line."""
    total, last = torch.zeros((), dtype=dtype), None
    for number, i, j, weight in entries:
        if (i, j) == pair:
            total, last = total + torch.tensor(weight, dtype=torch.float64).to(dtype), number
            if not bool(torch.isfinite(total)):
                return number
    return last
