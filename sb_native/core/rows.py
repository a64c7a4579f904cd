"""RowBlock: a problem whose variables are spread over the ranks of a process group, each rank
holding only its rows of the quadratic matrix (SB variables across ranks, engine/rows.py).

The problem is f(x) = x^T S x + l^T x + c over spins or bits, S symmetric; rank r holds
rows lo_r..hi_r - 1 of S (RowBlock.bounds) and l[lo_r:hi_r]. It is turned into the Ising
form SB runs on (-0.5 s^T J s + h^T s + constant, with the extra spin of h when h != 0) row
by row, with the values the single-process path (QuadraticPolynomial.to_ising, then the
coupling of core/ising.py) computes, so a run gives what one process gives on the whole
problem stored sparse (tests/sb/test_rows_ranks.py).
"""

from typing import Optional, Tuple, Union

import torch
import torch.distributed as dist

from .. import _checks, _ops, io
from .._distributed import collective_device, resolve_group
from .._options import BackendChoice, Callback, GroupChoice, Mode, SolverOptions
from ..engine.history import Objective
from ..engine.rows import RowRunner
from ..engine.rows_layout import RowCoupling, RowLayout, RowStats

DOMAINS = ("spin", "binary")


def _sum(values, group) -> torch.Tensor:
    """values (a list of floats, or a float64 tensor) summed over the ranks, on the CPU."""
    t = torch.as_tensor(values, dtype=torch.float64).to(collective_device(group))
    dist.all_reduce(t, group=group)
    return t.cpu()


def _group(process_group):
    if process_group is None or process_group is False:
        raise ValueError("RowBlock needs a process group: process_group=True (the default "
                         "group) or a torch.distributed ProcessGroup")
    _checks.check_process_group(process_group)
    return resolve_group(process_group)


class RowBlock:
    """This rank's rows of f(x) = x^T S x + l^T x + c (S symmetric) over n spins or bits.

    quadratic: (n, n) torch sparse COO (or dense) holding rows lo..hi - 1 of S, where
    (lo, hi) = RowBlock.bounds(n, process_group); its other rows must be empty. linear: this
    rank's l[lo:hi] (or None), constant: c (the same on every rank). domain: "spin" or
    "binary". process_group: a torch.distributed process group, True for the default one
    (required: None raises ValueError). dtype: the solver's dtype (float32 by default), device:
    where it runs (default CPU).

    Not a doctest (it needs an initialised process group; run it under torchrun, or with
    world size 1 after dist.init_process_group("gloo", ...))::

        import torch, torch.distributed as dist
        import sb_native as sb

        dist.init_process_group("gloo")
        n = 4
        lo, hi = sb.RowBlock.bounds(n)                    # this rank's rows
        S = torch.zeros(n, n)                             # -(s_i s_j) on a ring, rows lo..hi-1
        for i in range(lo, hi):
            S[i, (i + 1) % n] = S[i, (i - 1) % n] = -0.5
        block = sb.RowBlock(S.to_sparse(), domain="spin")
        vector, value = block.minimize(agents=8, max_steps=200, seed=0, verbose=False,
                                       early_stopping=False)  # value -4.0, every rank
        block = sb.RowBlock.from_gset("G81.txt")          # Max-Cut; reads only its rows
    """

    # The file's size, set by from_gset (total_weight, edges) and from_qubo (entries).
    total_weight: float
    edges: int
    entries: int

    def __init__(self, quadratic: torch.Tensor, linear: Optional[torch.Tensor] = None,
                 constant: float = 0.0, *, domain: str = "spin", process_group: GroupChoice = True,
                 dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        self.group = _group(process_group)
        if domain not in DOMAINS:
            raise ValueError(f"domain must be 'spin' or 'binary' for a RowBlock, got {domain!r}")
        if not isinstance(quadratic, torch.Tensor) or quadratic.ndim != 2 \
                or quadratic.shape[0] != quadratic.shape[1] or quadratic.shape[0] == 0:
            raise ValueError("quadratic must be a non-empty square (n, n) tensor holding this "
                             "rank's rows")
        self.dimension = n = quadratic.shape[0]
        self.lo, self.hi = RowBlock.bounds(n, self.group)
        self.domain = domain
        self.dtype = dtype or torch.float32
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        S = quadratic.detach().cpu().to(torch.float64)
        S = (S.to_sparse() if S.layout == torch.strided else S.to_sparse_coo()).coalesce()
        rows = S.indices()[0]
        if bool(((rows < self.lo) | (rows >= self.hi)).any()):
            raise ValueError(f"quadratic holds entries outside this rank's rows {self.lo}.."
                             f"{self.hi - 1} (RowBlock.bounds)")
        self.quadratic = S
        if linear is None:
            linear = torch.zeros(self.hi - self.lo, dtype=torch.float64)
        linear = torch.as_tensor(linear).detach().cpu().to(torch.float64).reshape(-1)
        if linear.numel() != self.hi - self.lo:
            raise ValueError(f"linear must hold this rank's {self.hi - self.lo} entries "
                             f"l[{self.lo}:{self.hi}], got {linear.numel()}")
        self.linear = linear
        self.constant = float(constant)
        self.sb_result: Optional[torch.Tensor] = None
        self.stats: Optional[RowStats] = None

    @staticmethod
    def bounds(n: int, process_group: GroupChoice = True) -> Tuple[int, int]:
        """This rank's rows (lo, hi) of a problem of n variables: blocks of ceil(n / world).

        process_group: as the constructor's (True: the default group)."""
        group = _group(process_group)
        layout = RowLayout.split(n, dist.get_world_size(group), dist.get_rank(group))
        return layout.lo, layout.hi

    @classmethod
    def from_gset(cls, path, process_group: GroupChoice = True,
                  dtype: Optional[torch.dtype] = None,
                  device: Optional[Union[str, torch.device]] = None) -> "RowBlock":
        """Max-Cut of a G-set/rudy file (maximize: the value is the cut), as MaxCut.from_gset;
        this rank reads only its rows (io.read_gset_rows). path: the file (plain or gzip);
        process_group, dtype, device: as the constructor's."""
        group = _group(process_group)
        W = io.read_gset_rows(path, lambda n: RowBlock.bounds(n, group)).coalesce()
        total = _sum([float(W.values().sum())], group)
        block = cls(-0.25 * W, None, float(total[0]) / 4, domain="spin", process_group=group,
                    dtype=dtype, device=device)
        block.total_weight = float(total[0]) / 2
        block.edges = int(_sum([float(W.values().numel())], group)[0]) // 2
        return block

    @classmethod
    def from_qubo(cls, path, process_group: GroupChoice = True,
                  dtype: Optional[torch.dtype] = None,
                  device: Optional[Union[str, torch.device]] = None) -> "RowBlock":
        """The QUBO of a qbsolv file (minimize x^T Q x over bits), as QUBO(io.read_qubo(path));
        this rank reads only the entries its rows need (io.read_qubo_rows). path: the file
        (plain or gzip); process_group, dtype, device: as the constructor's."""
        group = _group(process_group)
        Q = io.read_qubo_rows(path, lambda n: RowBlock.bounds(n, group)).coalesce()
        n = Q.shape[0]
        lo, hi = RowBlock.bounds(n, group)
        (i, j), w = Q.indices(), Q.values()
        off = i != j
        # Rows of S = (Q + Q^T) / 2: a coupler's half on each of its two rows.
        rows = torch.cat([i[~off], i[off], j[off]])
        cols = torch.cat([j[~off], j[off], i[off]])
        values = torch.cat([w[~off], w[off] / 2, w[off] / 2])
        mine = (rows >= lo) & (rows < hi)
        S = torch.sparse_coo_tensor(torch.stack([rows[mine], cols[mine]]), values[mine], (n, n))
        block = cls(S, None, 0.0, domain="binary", process_group=group, dtype=dtype,
                    device=device)
        block.entries = int(_sum([float(((i >= lo) & (i < hi)).sum())], group)[0])
        return block

    # The Ising form

    def _ising(self, sense: str):
        """(RowCoupling, constant): this rank's rows of the SB coupling of the problem to
        minimize (f, or -f to maximize) and its Ising constant."""
        S = self.quadratic
        (i, j), s = S.indices(), S.values()
        diagonal = i == j
        rowsum = torch.zeros(self.hi - self.lo, dtype=torch.float64).index_add_(
            0, i - self.lo, s)
        trace, total, linear_total = _sum(
            [float(s[diagonal].sum()), float(s.sum()), float(self.linear.sum())],
            self.group).tolist()
        if self.domain == "spin":  # f = s^T S_off s + l s + (c + tr S)
            scale, h = -2.0, self.linear.clone()
            constant = self.constant + trace
        else:  # x = (s + 1) / 2
            scale, h = -0.5, 0.5 * (rowsum + self.linear)
            constant = 0.25 * trace + 0.25 * total + 0.5 * linear_total + self.constant
        J = scale * s[~diagonal]
        if sense == "maximize":
            J, h, constant = -J, -h, -constant
        n = self.dimension
        extra = int(_sum([float((h != 0).any())], self.group)[0] > 0)
        world, rank = dist.get_world_size(self.group), dist.get_rank(self.group)
        layout = RowLayout.split(n, world, rank, extra)
        rows, cols, values = i[~diagonal], j[~diagonal], J
        if extra:
            mine = torch.nonzero(h).reshape(-1)
            rows = torch.cat([rows, mine + self.lo])
            cols = torch.cat([cols, torch.full_like(mine, n)])
            values = torch.cat([values, -h[mine]])
            full = torch.zeros(n, dtype=torch.float64)  # O(n): every h_j, for the extra row
            full[self.lo:self.hi] = h
            full = _sum(full, self.group)
            if layout.hi > n:  # this rank holds the extra spin's row
                others = torch.nonzero(full).reshape(-1)
                rows = torch.cat([rows, torch.full_like(others, n)])
                cols = torch.cat([cols, others])
                values = torch.cat([values, -full[others]])
        order = torch.argsort(rows * (n + 1) + cols)
        rows, cols, values = rows[order], cols[order], values[order]
        counts = torch.bincount(rows - layout.lo, minlength=layout.rows)
        crow = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
        coupling = RowCoupling(layout, crow.to(self.device), cols.to(self.device),
                               values.to(dtype=self.dtype, device=self.device))
        return coupling, constant

    # Solving

    def _optimize(self, sense: str, options: SolverOptions):
        options.validate()
        if options.process_group not in (None, True) and \
                resolve_group(options.process_group) is not self.group:
            raise ValueError("process_group must be the RowBlock's own group (or None)")
        if options.polish:
            raise ValueError("polish is not available for variables across ranks yet: a flip "
                             "needs its neighbours' spins, held by other ranks")
        coupling, constant = self._ising(sense)
        backend = _ops.resolve_backend(options.backend, self.device)
        settings = (self.dimension, self.domain, sense)
        sign = -1.0 if sense == "maximize" else 1.0
        # f = sign * (-0.5 * energy + constant): the runner's energies in the caller's values.
        objective = Objective(scale=-0.5 * sign, offset=sign * constant,
                              maximize=sense == "maximize")
        runner = RowRunner(options, backend, self.group, objective)
        result = runner.run(coupling, settings)
        self.stats = runner.stats  # this rank's steps, compute and communication times, bytes
        values = (sign * (-0.5 * result.energies + constant)).to(self.dtype)
        best = int(torch.argmin(sign * values))
        agents = torch.tensor([best]) if options.best_only else None
        spins = result.column_spins(coupling.layout.size, agents)
        if coupling.layout.size > self.dimension:  # the extra spin fixes the sign
            spins = spins[:-1] * spins[-1]
        vectors = spins if self.domain == "spin" else (spins + 1) / 2
        vectors = vectors.t().to(dtype=self.dtype, device=self.device)
        self.sb_result = vectors.t()
        if options.best_only:
            return vectors[0], values[best]
        return vectors, values

    def minimize(self, *, agents: int = 128, max_steps: Optional[int] = 10_000,
                 best_only: bool = True, mode: Mode = "ballistic", heated: bool = False,
                 verbose: bool = True, early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto", seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None,
                 polish: bool = False):
        """Minimize f with SB, the variables across the block's ranks; every rank returns
        the same (vector(s), value(s)) as minimize() on the whole problem.

        See sb_native.minimize for every argument; process_group must be None or the
        block's own group; callback gets the same points on every rank (rank 0's clock and
        stop decision count). `stats` then
        holds this rank's step, compute and communication figures (see the class docstring
        for an example)."""
        return self._optimize("minimize", SolverOptions.of(locals()))

    def maximize(self, *, agents: int = 128, max_steps: Optional[int] = 10_000,
                 best_only: bool = True, mode: Mode = "ballistic", heated: bool = False,
                 verbose: bool = True, early_stopping: bool = True, sampling_period: int = 50,
                 convergence_threshold: int = 50, timeout: Optional[float] = None,
                 backend: BackendChoice = "auto", seed: Optional[int] = None,
                 process_group: GroupChoice = None,
                 callback: Optional[Callback] = None,
                 polish: bool = False):
        """Maximize f with SB, the variables across the block's ranks; same arguments and
        results as minimize."""
        return self._optimize("maximize", SolverOptions.of(locals()))
