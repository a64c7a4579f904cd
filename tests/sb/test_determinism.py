"""Determinism (issue 19, item 7): for a given seed and backend, results are bit-identical
across repeated runs and across thread counts (1 and 2), on every code path; where a path
cannot promise it, the deviation is named here and the test checks what does hold.

Each SB case runs the same seeded call twice with one thread and twice with two, with sizes
that split every parallel loop between two threads (agents >= 2 blocks of the small dense
kernel, n * agents above the element-wise grain, rows of CSR and agents of dSB in several
chunks), and compares vectors and values with torch.equal.

QIMADTorch and qimad_minimize (every entry point, both update orders, both backends, the
48-agent path through BLAS) hold as they are. SB has two deviations, both in the Python
layer, not in the kernels (the pinned runs below hold every kernel to bit-identity across
thread counts):

1. Thread count: xi0 = 0.5 sqrt(n - 1) / ||J||_F comes from Coupling.squared_norm, a
   torch.sum(J ** 2) kept for bitwise parity with simulated-bifurcation 2.0.0. ATen splits
   a reduction of GRAIN_SIZE (32768) elements or more between the threads and adds the
   partial sums, so the norm of a non-integer coupling with that many entries (dense n >= 182,
   CSR nnz >= 32768) can differ in its last bit between 1 and 2 threads, and from there SB's
   trajectory (test_result_with_unpinned_norm_across_threads, xfail: a float32 dSB run of
   400 variables ends with one agent of 64 elsewhere). Cases marked `serial_norm=False`
   therefore check 1 against 2 threads with the norm taken on one thread (`pin_norm`), which
   makes them bit-identical; integer couplings (exact sums while under 2^24 in float32) and
   small couplings are checked as they are.
2. Fixed before this file's tests found it (repeated runs): dSB's incremental local field
   (small dense kernel, agent-by-agent dense path, CSR, batches) is recomputed exactly at
   the start of each op call and drifts by rounding within it, so on non-integer weights
   the result depended on where calls split, and calls were sized by the clock. Such runs
   now start their calls on a grid of steps fixed by the problem's size
   (Coupling.field_period, SBRunner._chunk); test_result_does_not_depend_on_call_split
   checks every case under one-step and unbounded call budgets.
"""

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest
import torch

import sb_native as sb
from sb_native.engine import Coupling, SBRunner
from sb_native.engine.batched import BatchRunner
from tests.helpers import NATIVE_ONLY, symmetric

THREADS = (1, 2)
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]

SMALL = 180  # <= 256: the small dense kernel; 180^2 < 32768: its norm is summed serially
LARGE = 400  # > 256: bSB through ATen's GEMM, dSB agent by agent (incremental field)
CSR_N = 800  # ~16,000 non-zeros at density 0.025: the norm is summed serially
CSR_BIG = 1400  # ~59,000 non-zeros: the norm's sum is split between threads
# The GEMM and CSR bSB paths and the torch reference open parallel regions at every step,
# which a loaded 2-core machine can stall: their runs are shorter.
PER_STEP = dict(max_steps=80)
EARLY_STOPPING = dict(early_stopping=True, max_steps=400, sampling_period=10,
                      convergence_threshold=4)
# A quicker pressure ramp (time step 0.5, pressure 1 at step 200) for the early-stopping
# cases: their agents freeze at different sampling points from about step 200 on, and all
# have frozen before max_steps.
QUICK_RAMP = sb.presets.Preset(mode="ballistic", agents=64, max_steps=200, time_step=0.5)


@pytest.fixture
def at_threads():
    """at_threads(n, call): call() with torch's intra-op threads set to n; the count the
    test started with is restored afterwards."""
    previous = torch.get_num_threads()

    def run(threads: int, call: Callable[[], Any]) -> Any:
        torch.set_num_threads(threads)
        return call()

    yield run
    torch.set_num_threads(previous)


_SQUARED_NORM = Coupling.squared_norm


def _serial_squared_norm(self: Coupling) -> torch.Tensor:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _SQUARED_NORM(self)
    finally:
        torch.set_num_threads(previous)


def pin_norm(monkeypatch) -> None:
    """Deviation 1: ||J||_F^2 summed on one thread whatever the thread count, so xi0 is the
    one-thread run's at any count (one-thread results are unchanged)."""
    monkeypatch.setattr(Coupling, "squared_norm", _serial_squared_norm)


def call_budget(monkeypatch, seconds: float) -> None:
    """The wall time an op call aims at, for one problem and for a batch (BatchRunner has
    its own, BATCH_CHUNK_SECONDS)."""
    monkeypatch.setattr(SBRunner, "chunk_seconds", seconds)
    monkeypatch.setattr(BatchRunner, "chunk_seconds", seconds)


def long_calls(monkeypatch) -> None:
    """An op call's budget no run reaches: after the first single step every call runs to
    the next sampling point, max_steps or MAX_CHUNK_STEPS, whatever the clock."""
    call_budget(monkeypatch, 1e9)


def one_step_calls(monkeypatch) -> None:
    """The opposite split: every op call one step (each call over its budget)."""
    call_budget(monkeypatch, 1e-12)


def flat(result: Any) -> List[torch.Tensor]:
    """The tensors of a result (tuples, lists, dicts, numbers), in a fixed order."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (int, float)):
        return [torch.tensor(result, dtype=torch.float64)]
    if isinstance(result, dict):
        return [t for key in sorted(result, key=str) for t in flat(result[key])]
    if isinstance(result, (list, tuple)):
        return [t for item in result for t in flat(item)]
    return []


def assert_identical(a: Any, b: Any, what: str) -> None:
    ta, tb = flat(a), flat(b)
    assert len(ta) == len(tb) and ta, what
    for i, (x, y) in enumerate(zip(ta, tb)):
        assert x.dtype == y.dtype and x.shape == y.shape, (what, i)
        if not torch.equal(x, y):
            diff = (x.double() - y.double()).abs().max().item()
            pytest.fail(f"{what}: tensor {i} differs (max difference {diff:g})")


# ── SB: minimize on every path ───────────────────────────────────────────────


def csr(n: int, dtype, *, seed: int, density: float) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return symmetric(n, dtype, seed=seed, density=density).to_sparse_csr()


def batch(dtype) -> torch.Tensor:
    return torch.stack([symmetric(64, dtype, seed=20 + b) for b in range(8)])


def qubo_int(dtype) -> tuple:
    g = torch.Generator().manual_seed(30)
    Q = torch.randn(100, 100, generator=g, dtype=dtype)
    return Q, torch.randn(100, generator=g, dtype=dtype)


@dataclass(frozen=True)
class Case:
    name: str
    problem: Callable[[torch.dtype], Any]  # dtype -> minimize's positional data
    options: Dict[str, Any] = field(default_factory=dict)
    serial_norm: bool = True  # False: deviation 1 (1 vs 2 threads checked with pin_norm)
    native: bool = True
    ramp: Optional[sb.presets.Preset] = None  # a preset's environment, else the defaults

    def call(self, dtype) -> tuple:
        data = self.problem(dtype)
        data = data if isinstance(data, tuple) else (data,)
        options = dict(domain="spin", dtype=dtype, agents=64, max_steps=200,
                       early_stopping=False, best_only=False, verbose=False, seed=3,
                       backend="native")
        if not self.native:
            options.update(backend="torch", **PER_STEP)
        options.update(self.options)
        environment = self.ramp.environment() if self.ramp else contextlib.nullcontext()
        with warnings.catch_warnings(), environment:
            warnings.simplefilter("ignore", sb.ConvergenceWarning)
            return sb.minimize(*data, **options)


SB_CASES = [
    # Small dense kernel (sb_small_dense.h): 128 agents = 2 blocks of 64 (f32) or 4 of 32.
    Case("bsb-small-dense", lambda dt: symmetric(SMALL, dt, seed=1), dict(agents=128)),
    Case("hbsb-small-dense", lambda dt: symmetric(SMALL, dt, seed=1),
         dict(agents=128, heated=True)),
    Case("dsb-small-dense", lambda dt: symmetric(SMALL, dt, seed=2),
         dict(agents=128, mode="discrete")),
    Case("hdsb-small-dense", lambda dt: symmetric(SMALL, dt, seed=2),
         dict(agents=128, mode="discrete", heated=True)),
    # Dense bSB through ATen's GEMM (momentum.addmm_), element-wise passes over 25,600 > 16,384.
    Case("bsb-gemm", lambda dt: symmetric(LARGE, dt, seed=3), PER_STEP, serial_norm=False),
    Case("hbsb-gemm", lambda dt: symmetric(LARGE, dt, seed=3), dict(heated=True, **PER_STEP),
         serial_norm=False),
    Case("bsb-gemm-integer", lambda dt: symmetric(LARGE, dt, seed=4, integer=True), PER_STEP),
    # Dense dSB agent by agent from one GEMM per call (sb_discrete.h, incremental field).
    Case("dsb-incremental", lambda dt: symmetric(LARGE, dt, seed=5),
         dict(mode="discrete"), serial_norm=False),
    Case("hdsb-incremental", lambda dt: symmetric(LARGE, dt, seed=5),
         dict(mode="discrete", heated=True), serial_norm=False),
    # dSB on integer weights: int8 signs and an exact int32 field (sb_run_int8).
    Case("dsb-int8", lambda dt: symmetric(LARGE, dt, seed=6, integer=True),
         dict(mode="discrete")),
    Case("dsb-int8-small", lambda dt: symmetric(SMALL, dt, seed=6, integer=True),
         dict(agents=128, mode="discrete")),
    # CSR (csr_ballistic.h row-parallel; dSB agent by agent with column corrections).
    Case("bsb-csr", lambda dt: csr(CSR_N, dt, seed=7, density=0.025), PER_STEP),
    Case("dsb-csr", lambda dt: csr(CSR_N, dt, seed=7, density=0.025),
         dict(mode="discrete")),
    Case("bsb-csr-many-nonzeros", lambda dt: csr(CSR_BIG, dt, seed=8, density=0.03),
         dict(agents=32, **PER_STEP), serial_norm=False),
    # Early stopping on (sb_sample, the stop window, frozen agents' spins), QUICK_RAMP.
    Case("bsb-small-early-stopping", lambda dt: symmetric(SMALL, dt, seed=1),
         dict(agents=128, **EARLY_STOPPING), ramp=QUICK_RAMP),
    Case("bsb-gemm-early-stopping", lambda dt: symmetric(LARGE, dt, seed=3), EARLY_STOPPING,
         serial_norm=False, ramp=QUICK_RAMP),
    Case("dsb-int8-early-stopping", lambda dt: symmetric(LARGE, dt, seed=6, integer=True),
         dict(mode="discrete", **EARLY_STOPPING), ramp=QUICK_RAMP),
    # Polish (sb_polish: agents in parallel); best_only=True.
    Case("dsb-int8-polish-best-only", lambda dt: symmetric(LARGE, dt, seed=6, integer=True),
         dict(mode="discrete", polish=True, best_only=True)),
    Case("bsb-gemm-polish", lambda dt: symmetric(LARGE, dt, seed=3),
         dict(polish=True, **PER_STEP), serial_norm=False),
    # An integer domain with a linear term (201 spins: the small kernel, one extra spin).
    Case("bsb-int2-linear", qubo_int, dict(domain="int2", agents=128), serial_norm=False),
    # Many problems in one call (sb_run_batched: (problem, agent block) tiles).
    Case("batch-bsb", batch, dict(agents=128)),
    Case("batch-dsb", batch, dict(agents=128, mode="discrete")),
    Case("batch-list-sizes",
         lambda dt: [symmetric(50, dt, seed=40), symmetric(300, dt, seed=41),
                     symmetric(120, dt, seed=42)],
         PER_STEP, serial_norm=False),
    # The pure-torch reference (addmm, sign, sparse matmul), PER_STEP's steps.
    Case("torch-bsb", lambda dt: symmetric(LARGE, dt, seed=3), serial_norm=False, native=False),
    Case("torch-dsb", lambda dt: symmetric(LARGE, dt, seed=5), dict(mode="discrete"),
         serial_norm=False, native=False),
    Case("torch-bsb-csr", lambda dt: csr(CSR_N, dt, seed=7, density=0.025), native=False),
    Case("torch-batch-dsb", batch, dict(agents=128, mode="discrete"), native=False),
]


def sb_params(cases: Sequence[Case]) -> list:
    return [pytest.param(case, id=case.name, marks=[NATIVE_ONLY] if case.native else [])
            for case in cases]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sb_params(SB_CASES))
def test_sb_minimize_is_bit_identical(case, dtype, at_threads, monkeypatch):
    """Twice at 1 thread, twice at 2: every repeat identical, and 1 thread identical to 2."""
    runs = {t: [at_threads(t, lambda: case.call(dtype)) for _ in range(2)] for t in THREADS}
    for t in THREADS:
        assert_identical(runs[t][0], runs[t][1], f"repeat at {t} thread(s)")
    if not case.serial_norm:
        pin_norm(monkeypatch)  # unchanged at 1 thread; the 2-thread run gets its xi0
        runs[2] = [at_threads(2, lambda: case.call(dtype))]
    assert_identical(runs[1][0], runs[2][0], "1 thread vs 2 threads")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sb_params(SB_CASES))
def test_result_does_not_depend_on_call_split(case, dtype, at_threads, monkeypatch):
    """The clock cannot change a result: one-step call budgets give the long calls' result
    (at one thread: the split, not the thread count, is under test). bSB recomputes J @ x
    every step and dSB's field is exact on integer weights; dSB on other weights starts its
    calls on the field grid whatever the budget."""
    long_calls(monkeypatch)
    long = at_threads(1, lambda: case.call(dtype))
    one_step_calls(monkeypatch)
    assert_identical(long, at_threads(1, lambda: case.call(dtype)),
                     "one-step calls vs long calls")


@NATIVE_ONLY
@pytest.mark.parametrize("name,grid", [("dsb-incremental", True), ("dsb-csr", True),
                                       ("dsb-int8", False), ("bsb-gemm", False)])
def test_dsb_calls_start_on_the_field_grid(name, grid, monkeypatch):
    """Non-integer dSB: every op call starts on a multiple of the coupling's field period
    and runs to the next one (or max_steps) whatever the budget; elsewhere the clock sizes
    calls."""
    from sb_native.engine import coupling, runner
    case = next(case for case in SB_CASES if case.name == name)
    calls: List[tuple] = []
    advance = runner._Stepper.advance

    def recorded(self, position, momentum, start, steps):
        calls.append((start, steps))
        return advance(self, position, momentum, start, steps)

    monkeypatch.setattr(runner._Stepper, "advance", recorded)
    one_step_calls(monkeypatch)
    case.call(torch.float32)
    steps = case.options.get("max_steps", 200)
    n = CSR_N if name == "dsb-csr" else LARGE
    period = coupling.field_period(n * 64)
    grid_calls = [(start, min(period, steps - start)) for start in range(0, steps, period)]
    if grid:
        assert calls == grid_calls
    else:  # the clock's calls: a first single step measures the speed
        assert calls[0] == (0, 1) and calls != grid_calls


def test_field_period_only_where_the_field_rounds():
    """Coupling.field_period: None for bSB, the torch backend and couplings whose sums are
    exact (integers, multiples of 2^-8 such as a QUBO's quarters), else the work grid."""
    from sb_native.engine.coupling import FIELD_PERIOD_WORK, MAX_FIELD_PERIOD
    integer = Coupling.dense(symmetric(50, torch.float32, seed=1, integer=True))
    quarters = Coupling.dense(symmetric(50, torch.float32, seed=1, integer=True) / 4)
    gaussian = Coupling.dense(symmetric(50, torch.float32, seed=1))
    huge = Coupling.dense(torch.full((3, 3), 2.0 ** 23).fill_diagonal_(0))
    sparse_gaussian = Coupling.dense(symmetric(50, torch.float64, seed=1)).to_csr()
    sparse_integer = integer.to_csr()
    assert integer.field_period(64, "native", True) is None
    assert quarters.field_period(64, "native", True) is None
    assert sparse_integer.field_period(64, "native", True) is None
    assert gaussian.field_period(64, "native", False) is None
    assert gaussian.field_period(64, "torch", True) is None
    # Integers whose row sums pass float32's 2^24 round like any other weights.
    assert huge.field_period(1, "native", True) == MAX_FIELD_PERIOD
    assert gaussian.field_period(10_000, "native", True) == FIELD_PERIOD_WORK // 500_000
    assert sparse_gaussian.field_period(10_000, "native", True) == FIELD_PERIOD_WORK // 500_000
    assert gaussian.field_period(10 ** 9, "native", True) == 1


@pytest.mark.xfail(reason="deviation 1: ||J||_F^2 is a torch.sum that ATen splits between "
                          "threads, so xi0 and then the trajectory depend on the thread count",
                   strict=False)
def test_result_with_unpinned_norm_across_threads(at_threads):
    # An instance whose Ising coupling's sum of squares rounds differently at 2 threads
    # (639190.4375 against 639190.375 in float32); on the torch backend, as the deviation is
    # in the Python layer (the native backend alike).
    g = torch.Generator().manual_seed(5)
    J = torch.triu(torch.randn(LARGE, LARGE, generator=g, dtype=torch.float64), 1)
    run = dict(domain="spin", mode="discrete", agents=64, max_steps=200, early_stopping=False,
               best_only=False, verbose=False, seed=3, backend="torch")
    one, two = (at_threads(t, lambda: sb.minimize(J + J.t(), **run)) for t in THREADS)
    assert_identical(one, two, "1 thread vs 2 threads, norm summed by each")


@pytest.mark.parametrize("dtype", DTYPES)
def test_coupling_norm_differs_across_threads_by_rounding_only(dtype, at_threads):
    """Deviation 1's source, bounded: xi0 at 1 and at 2 threads agree to a few ulps."""
    for J in (symmetric(LARGE, dtype, seed=3), symmetric(1000, dtype, seed=9)):
        coupling = Coupling.dense(J)
        xi = [at_threads(t, coupling.quadratic_scale) for t in THREADS]
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(xi[0], xi[1], rtol=8 * eps, atol=0.0)


# ── solve_within with steps= and max_runs= (no clock) ─────────────────────────


def maxcut(dtype) -> sb.models.MaxCut:
    g = torch.Generator().manual_seed(50)
    adjacency = torch.triu((torch.rand(LARGE, LARGE, generator=g) < 0.5).to(dtype), 1)
    return sb.models.MaxCut(adjacency + adjacency.t(), dtype=dtype)


def qubo(dtype) -> sb.QuadraticPolynomial:
    g = torch.Generator().manual_seed(51)
    return sb.build_model(torch.randn(300, 300, generator=g, dtype=dtype),
                          torch.randn(300, generator=g, dtype=dtype), dtype=dtype)


@NATIVE_ONLY
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["maxcut-int8", "qubo-incremental"])
def test_solve_within_fixed_runs_is_bit_identical(kind, dtype, at_threads, monkeypatch):
    """Max-Cut's integer coupling (dSB on int8, exact norm) holds as it is; the non-integer
    QUBO (dSB agent by agent, 301 spins) needs deviation 1 pinned."""
    if kind == "qubo-incremental":
        problem, sense, domain = qubo(dtype), "minimize", "binary"
    else:
        problem, sense, domain = maxcut(dtype), "maximize", None

    def call():
        result = sb.solve_within(problem, 600.0, sense=sense, domain=domain, seed=5,
                                 steps=300, max_runs=2, backend="native", verbose=False)
        return result.vector, result.value, list(result.seeds), result.runs

    runs = {t: [at_threads(t, call) for _ in range(2)] for t in THREADS}
    for t in THREADS:
        assert_identical(runs[t][0], runs[t][1], f"repeat at {t} thread(s)")
    if kind == "qubo-incremental":
        pin_norm(monkeypatch)
        runs[2] = [at_threads(2, call)]
    assert_identical(runs[1][0], runs[2][0], "1 thread vs 2 threads")


# ── QIMADTorch and qimad_minimize ─────────────────────────────────────────────


def regression(dtype):
    """A 64 -> 32 tanh layer (2,080 parameters) and its data."""
    g = torch.Generator().manual_seed(60)
    X = torch.randn(64, 64, generator=g, dtype=dtype)
    y = torch.tanh(X @ torch.randn(64, 32, generator=g, dtype=dtype))
    layer = torch.nn.Linear(64, 32).to(dtype)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=dtype))
    return layer, X, y


def rastrigin_rows(X: torch.Tensor) -> torch.Tensor:
    return 10 * X.shape[1] + (X ** 2 - 10 * torch.cos(2 * math.pi * X)).sum(1)


def qimad_run(entry: str, backend: str, order: str, dtype, agents: int) -> tuple:
    """Every tensor the run leaves: best losses per step, the parameters (best weights) and
    the optimizer's state (swarm positions, RMSProp state, angles, records)."""
    settings = dict(num_agents=agents, seed=1, backend=backend, update_order=order)
    if entry == "qimad_minimize":
        result = sb.qimad_minimize(rastrigin_rows, [(-5.12, 5.12)] * 3000, maxiter=10,
                                   dtype=dtype, **settings)
        return result.x, result.fun, result.history
    if entry == "step_vectorized":
        x = torch.nn.Parameter(torch.zeros(4000, dtype=dtype))
        optimizer = sb.QIMADTorch([x], bounds=(-5.12, 5.12), init="uniform", lr=0.05,
                                  total_steps=10, **settings)
        best = [optimizer.step_vectorized(rastrigin_rows) for _ in range(10)]
        return best, x.detach(), optimizer.state_dict()["state"]
    layer, X, y = regression(dtype)
    optimizer = sb.QIMADTorch(layer.parameters(), lr=0.01, total_steps=5, **settings)

    def loss_of(forward):
        return torch.nn.functional.mse_loss(torch.tanh(forward(X)), y)

    def closure():
        optimizer.zero_grad()
        loss = loss_of(layer)
        loss.backward()
        return loss

    if entry == "step":
        best = [optimizer.step(closure) for _ in range(5)]
    else:
        best = [optimizer.step_batched(loss_of, module=layer) for _ in range(5)]
    return best, [p.detach() for p in layer.parameters()], optimizer.state_dict()["state"]


QIMAD_ENTRIES = ["step", "step_batched", "step_vectorized", "qimad_minimize"]
QIMAD_CASES = [
    pytest.param(entry, backend, order, 16,
                 id=f"{entry}-{backend}-{order}",
                 marks=[NATIVE_ONLY] if backend == "native" else [])
    for entry in QIMAD_ENTRIES for backend in ("native", "torch")
    for order in ("sequential", "synchronous")
] + [
    # Above 32 agents the synchronous native update takes W @ theta from one BLAS GEMM
    # (csrc/qimad/mix.h) instead of the fused pass.
    pytest.param(entry, "native", "synchronous", 48, id=f"{entry}-native-synchronous-gemm",
                 marks=NATIVE_ONLY)
    for entry in QIMAD_ENTRIES
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry,backend,order,agents", QIMAD_CASES)
def test_qimad_is_bit_identical(entry, backend, order, agents, dtype, at_threads):
    runs = {t: [at_threads(t, lambda: qimad_run(entry, backend, order, dtype, agents))
                for _ in range(2)] for t in THREADS}
    for t in THREADS:
        assert_identical(runs[t][0], runs[t][1], f"repeat at {t} thread(s)")
    assert_identical(runs[1][0], runs[2][0], "1 thread vs 2 threads")
