"""The coupling matrix SB runs on: symmetric, zero diagonal, dense or CSR.

A CSR coupling is held as three flat tensors (crow, col, values) so memory stays
O(nnz + variables) end to end; no n x n buffer is ever made for a sparse problem.
The engine owns the storage decision: `for_run` picks dense, CSR or int8 for a backend,
and `prefer_sparse` tells the models which storage to build.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .. import _memory, _sparse

# Edge density below which the native engine stores a dense coupling as CSR
# (bench/sb/bench_density.py measures the crossover; see bench/RESULTS.md).
SPARSE_DENSITY = 0.1
# dSB's native kernels keep the local field J @ sign(x) incrementally within an op call and
# recompute it exactly at each call's start. On weights whose sums round, the result then
# depends on where calls start, so those runs start calls on a grid of steps fixed by the
# problem's size, never by the clock (field_period). FIELD_PERIOD_WORK is one call's work
# (steps x variables x agents): the longest call that keeps timeouts and Ctrl-C responsive,
# so each call's exact product is amortised over as many steps as that allows
# (bench/RESULTS.md, "dSB on a fixed grid of calls").
FIELD_PERIOD_WORK = 1 << 26
MAX_FIELD_PERIOD = 1000
# Entries that are multiples of 2^-FIELD_FRACTION_BITS with row sums below the mantissa's
# range add up exactly in any order (integer Max-Cut weights, their QUBO halves and quarters).
FIELD_FRACTION_BITS = 8


def field_period(work_per_step: int, work: int = FIELD_PERIOD_WORK) -> int:
    """Steps between exact field products for a dSB run of work_per_step = variables x
    agents (x problems), with calls of about `work`."""
    return max(1, min(MAX_FIELD_PERIOD, work // max(1, work_per_step)))


def sums_exactly(values: torch.Tensor, row_sums: torch.Tensor) -> bool:
    """True when entries `values` with absolute row sums `row_sums` add up exactly in any
    order in their dtype."""
    scale = float(1 << FIELD_FRACTION_BITS)
    if row_sums.numel() == 0:
        return True
    # Integers up to 1 / eps * 2 (2^24 in float32, 2^53 in float64) are exact.
    if float(row_sums.max()) * scale >= 2.0 / torch.finfo(values.dtype).eps:
        return False
    scaled = values * scale
    return bool(torch.all(scaled == torch.round(scaled)))


def csr_sums_exactly(crow: torch.Tensor, values: torch.Tensor) -> bool:
    """sums_exactly for the rows of a CSR matrix (crow, values)."""
    rows = torch.repeat_interleave(torch.arange(crow.numel() - 1, device=values.device),
                                   crow.diff())
    sums = torch.zeros(crow.numel() - 1, dtype=values.dtype, device=values.device)
    return sums_exactly(values, sums.index_add_(0, rows, values.abs()))


def dense_sums_exactly(matrix: torch.Tensor) -> bool:
    """sums_exactly for the rows of a dense matrix (the last dimension), taken in blocks of
    about 2^22 entries so the test's temporaries stay small."""
    rows = matrix.reshape(-1, matrix.shape[-1])
    block = max(1, (1 << 22) // max(1, rows.shape[1]))
    return all(sums_exactly(part, part.abs().sum(dim=1)) for part in rows.split(block))


def prefer_sparse(nnz: int, n: int) -> bool:
    """True when an n x n coupling with nnz stored entries is sparse enough to keep as CSR."""
    return nnz < SPARSE_DENSITY * n * n


def quadratic_scale(n: int, squared_norm: torch.Tensor) -> torch.Tensor:
    """xi0 = 0.5 * sqrt(n - 1) / ||J||_F of an n-variable coupling of squared Frobenius norm
    squared_norm (a 0-d tensor; xi0 is 0 for a coupling with no entries)."""
    norm = torch.sqrt(squared_norm)
    if norm.item() == 0.0:
        return torch.zeros((), dtype=norm.dtype, device=norm.device)
    return 0.5 * (n - 1) ** 0.5 / norm


# (crow, col, values) of a CSR coupling; (K int8, scale) of an exact integer one.
CsrParts = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]
IntegerForm = Tuple[torch.Tensor, float]


class Coupling:
    def __init__(self, n: int, dtype: torch.dtype, device: torch.device,
                 matrix: Optional[torch.Tensor] = None, csr: Optional[CsrParts] = None,
                 integer: Optional[IntegerForm] = None) -> None:
        self.n = n
        self.dtype = dtype
        self.device = device
        self.matrix = matrix  # dense (n, n), or None
        self.csr = csr  # (crow, col, values) or None
        self.integer = integer  # (K int8, scale) with matrix == scale * K, or None

    @property
    def is_sparse(self) -> bool:
        return self.csr is not None

    @staticmethod
    def dense(matrix: torch.Tensor) -> "Coupling":
        return Coupling(matrix.shape[0], matrix.dtype, matrix.device, matrix=matrix)

    @staticmethod
    def from_sparse_ising(J: torch.Tensor, h: Optional[torch.Tensor]) -> "Coupling":
        """(J + J^T) / 2 without its diagonal, plus the extra spin for h, kept sparse."""
        J = J.to_sparse_coo().coalesce()
        n = J.shape[0]
        rows, cols = J.indices()
        values = J.values() / 2.0
        off = rows != cols
        rows, cols, values = rows[off], cols[off], values[off]
        rows, cols = torch.cat([rows, cols]), torch.cat([cols, rows])
        values = torch.cat([values, values])
        size = n
        if h is not None:
            nz = torch.nonzero(h).reshape(-1)
            extra = torch.full_like(nz, n)
            rows = torch.cat([rows, nz, extra])
            cols = torch.cat([cols, extra, nz])
            values = torch.cat([values, -h[nz], -h[nz]])
            size = n + 1
        matrix = _sparse.coo(torch.stack([rows, cols]), values, (size, size))
        return Coupling(size, J.dtype, J.device, csr=_sparse.to_csr_parts(matrix))

    def matrix_itemsize(self) -> int:
        """Bytes of one coupling entry in the coupling's dtype."""
        return torch.empty((), dtype=self.dtype).element_size()

    def tensors(self) -> tuple:
        """The tensors that hold the coupling (dense matrix, or CSR crow, col, values)."""
        return self.csr if self.csr is not None else (self.matrix,)

    def density(self) -> float:
        if self.csr is not None:
            return self.csr[2].numel() / max(1, self.n * self.n)
        assert self.matrix is not None  # a coupling is CSR or dense
        return int(torch.count_nonzero(self.matrix)) / max(1, self.n * self.n)

    def check_run(self, agents, max_steps, polish: bool = False) -> None:
        """Before a run's state is drawn on this coupling: agents and max_steps within the
        ops' int64, the state within memory (sb_native/_memory.py)."""
        _memory.check_run(self.n, agents, max_steps, self.dtype, self.device, polish=polish)

    def exact_field(self) -> bool:
        """True when J @ signs is exact whatever order its terms are added in (sums_exactly),
        so dSB's incremental field never drifts from the exact one."""
        if self.integer is not None:
            return True
        if self.csr is not None:
            crow, _, values = self.csr
            return csr_sums_exactly(crow, values)
        assert self.matrix is not None  # a coupling is CSR or dense
        return dense_sums_exactly(self.matrix)

    def field_period(self, agents: int, backend: str, discrete: bool) -> Optional[int]:
        """The grid of steps (field_period) a run's op calls must start on so its result does
        not depend on how the calls split, or None when any split gives the same result
        (bSB, the torch reference, exact fields). Called on the run's storage (for_run)."""
        if backend != "native" or not discrete or self.exact_field():
            return None
        return field_period(self.n * agents)

    def to_csr(self) -> "Coupling":
        if self.is_sparse:
            return self
        assert self.matrix is not None  # a coupling is CSR or dense
        # The COO indices, then the CSR, of every non-zero: up to 10x the dense matrix itself
        # (float32, no zeros) when polish asks a dense coupling for its CSR form.
        nnz = int(torch.count_nonzero(self.matrix))
        _memory.check_fits(
            f"A dense {self.n} x {self.n} coupling with {nnz} non-zeros",
            nnz * (_memory.CSR_BYTES_PER_NONZERO + 2 * self.matrix_itemsize())
            + self.n * self.n, self.device, "its CSR form (the sparse kernels' and polish's)",
            "pass the coupling sparse (a torch sparse tensor, a scipy.sparse matrix, or "
            "sb_native.io's readers), or polish=False")
        return Coupling(self.n, self.dtype, self.device,
                        csr=_sparse.to_csr_parts(self.matrix.to_sparse_coo()))

    def for_run(self, backend: str, discrete: bool) -> "Coupling":
        """The storage the run uses on backend: the native kernels take CSR below
        SPARSE_DENSITY, and int8 for dSB on an exact integer coupling (sb_run_int8); the
        torch reference runs on the coupling as given."""
        return for_runs([self], backend, discrete)[0]

    def _float_storage(self, backend: str) -> "Coupling":
        """for_run's storage but for the int8 form: CSR below SPARSE_DENSITY on the native
        backend, else the coupling itself."""
        if backend == "native" and self.density() < SPARSE_DENSITY:
            return self.to_csr()
        return self

    def integer_form_fits(self) -> bool:
        """Whether the int8 form, its test's temporaries and what the run takes beside it fit
        (_memory.py); where they do not, the run keeps the float coupling."""
        entries, item = self.n * self.n, self.matrix_itemsize()
        return _memory.fits(entries * (_memory.INT8_FORM_BYTES + _memory.INT8_FORM_ITEMS * item)
                            + min(entries, _memory.INT8_FORM_CHUNK)
                            * _memory.INT8_FORM_CHUNK_ITEMS * item, self.device)

    def integer_form(self) -> Optional[IntegerForm]:
        """(K int8, scale) with matrix == scale * K exactly, or None.

        Max-Cut, K2000 and most G-set couplings are small integers times one scale; dSB on
        them runs with int8 signs and an exact int32 local field (sb_run_int8).
        """
        if self.matrix is None or self.n == 0:  # CSR, or nothing to scale
            return None
        # The form is n x n bytes; its test runs over chunks of INT8_FORM_CHUNK entries, whose
        # temporaries stay in cache (a pass over the whole matrix per operation took 4 times
        # as long: bench/RESULTS.md). Where the form and what the run then takes beside it do
        # not fit (_memory.py) the run keeps the float coupling: the same spins, only slower.
        entries, chunk = self.n * self.n, _memory.INT8_FORM_CHUNK
        if not self.integer_form_fits():
            return None
        flat = self.matrix.reshape(1, -1)
        pieces = [flat[:, start:start + chunk] for start in range(0, entries, chunk)]
        scale = torch.cat([_smallest_magnitudes(piece) for piece in pieces], dim=1).amin(
            dim=1, keepdim=True)
        K = torch.empty(entries, dtype=torch.int8, device=self.device)
        for start, piece in zip(range(0, entries, chunk), pieces):
            # integer_forms' test, on one matrix: torch.equal makes no masks of the chunk's
            # size, and a large matrix's form is part of its run's set-up (bench/RESULTS.md).
            q = piece / scale
            rounded = q.round()
            if (not torch.equal(q, rounded) or not torch.equal(rounded * scale, piece)
                    or rounded.abs().max() > 127):
                return None
            K[start:start + piece.shape[1]] = rounded[0].to(torch.int8)
        return K.view(self.n, self.n), float(scale)

    def torch_csr(self) -> torch.Tensor:
        assert self.csr is not None, "a dense coupling has no CSR parts"
        return _sparse.csr_tensor(*self.csr, (self.n, self.n))

    def squared_norm(self) -> torch.Tensor:
        # Same reduction as simulated-bifurcation 2.0.0 for dense input (bitwise parity).
        if self.csr is not None:
            return torch.sum(self.csr[2] ** 2)
        assert self.matrix is not None  # a coupling is CSR or dense
        return torch.sum(self.matrix ** 2)

    def quadratic_scale(self) -> torch.Tensor:
        """xi0 = 0.5 * sqrt(n - 1) / ||J||_F (0 for a coupling with no entries)."""
        return quadratic_scale(self.n, self.squared_norm())

    def matmul(self, t: torch.Tensor) -> torch.Tensor:
        if self.matrix is None:  # CSR
            return self.torch_csr() @ t
        return self.matrix @ t


def _smallest_magnitudes(rows: torch.Tensor) -> torch.Tensor:
    """Each row's smallest non-zero magnitude, (rows, 1): NaN where the row holds a NaN, inf
    where it is all zeros: the forms' tests find no form for either (0 * inf is NaN)."""
    magnitudes = rows.abs()
    return magnitudes.masked_fill_(magnitudes == 0, math.inf).amin(dim=1, keepdim=True)


def integer_forms(couplings: Sequence[Coupling]) -> List[Optional[IntegerForm]]:
    """Coupling.integer_form of each of dense couplings of one size, the same forms: small
    ones are tested together, stacked into chunks of about INT8_FORM_CHUNK entries, instead
    of a dozen small torch ops each (bench/RESULTS.md, issue 21)."""
    n = couplings[0].n
    entries = n * n
    if not 0 < entries <= _memory.INT8_FORM_CHUNK or not couplings[0].integer_form_fits():
        return [c.integer_form() for c in couplings]
    per = _memory.INT8_FORM_CHUNK // entries
    forms: List[Optional[IntegerForm]] = []
    for start in range(0, len(couplings), per):
        stack = torch.stack([c.matrix for c in couplings[start:start + per]  # type: ignore[misc]
                             ]).reshape(-1, entries)
        scale = _smallest_magnitudes(stack)
        q = stack / scale
        rounded = q.round()
        exact = ((q == rounded) & (rounded * scale == stack) & (rounded.abs() <= 127)).all(dim=1)
        K = rounded.masked_fill_(~exact[:, None], 0).to(torch.int8).view(-1, n, n)
        forms.extend((K[b], float(scale[b])) if bool(exact[b]) else None
                     for b in range(stack.shape[0]))
    return forms


def for_runs(couplings: Sequence[Coupling], backend: str, discrete: bool) -> List[Coupling]:
    """Coupling.for_run of each coupling, the int8 forms of the dense ones of each size tested
    together (integer_forms)."""
    storages = [c._float_storage(backend) for c in couplings]
    if backend != "native" or not discrete:
        return storages
    by_size: Dict[int, List[int]] = {}
    for i, storage in enumerate(storages):
        if storage.matrix is not None and storage.integer is None:
            by_size.setdefault(storage.n, []).append(i)
    for indices in by_size.values():
        for i, form in zip(indices, integer_forms([storages[i] for i in indices])):
            if form is not None:
                s = storages[i]
                storages[i] = Coupling(s.n, s.dtype, s.device, matrix=s.matrix, integer=form)
    return storages
