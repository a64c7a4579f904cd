"""Public API behaviour: validation, shapes, conversions, stopping, warnings, progress bars."""

import itertools
import warnings

import pytest
import sympy
import torch

import sb_native as sb
from sb_native import _ops
from sb_native.engine import runner as engine
from tests.helpers import NATIVE_ONLY

BACKENDS = ["torch", pytest.param("native", marks=NATIVE_ONLY)]
Q3 = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0], [2.0, -1.0, -4.0]])
QUIET = dict(verbose=False, agents=8, max_steps=50)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kwargs,error,message", [
    (dict(domain="foo"), ValueError, 'Domain type must be one of "spin" or "binary"'),
    (dict(domain=["spin", "binary"]), ValueError, "Expected 3 domains to be provided, got 2."),
    (dict(domain=5), TypeError, "domain should be a string or a list of strings"),
    (dict(domain="spin", mode="quantum"), ValueError, "Unknwown Simulated Bifurcation engine: quantum. The argument mode"),
    (dict(domain="spin", backend="gpu"), ValueError, "backend must be one of"),
    (dict(domain="spin", agents=0), ValueError, "agents should be a positive integer, received 0"),
    (dict(domain="spin", agents=2.5), TypeError, "agents should be an integer"),
    (dict(domain="spin", agents=True), TypeError, "agents should be an integer"),
    (dict(domain="spin", max_steps=-3), ValueError, "max_steps should be a positive integer"),
    (dict(domain="spin", sampling_period=0), ValueError, "sampling_period should be a positive integer"),
    (dict(domain="spin", convergence_threshold=0), ValueError, "convergence_threshold should be a positive integer, received 0."),
    (dict(domain="spin", convergence_threshold=40000), ValueError, "convergence_threshold should be less than or equal to 32767, received 40000."),
    (dict(domain="spin", convergence_threshold="3"), TypeError, "convergence_threshold should be an integer, received 3."),
    (dict(domain="spin", timeout=-1.0), ValueError, "timeout should be non-negative"),
    (dict(domain="spin", timeout="soon"), TypeError, "timeout should be a number of seconds"),
    (dict(domain="spin", seed="x"), TypeError, "seed should be an integer or None"),
    (dict(domain="spin", heated="yes"), TypeError, "heated should be a boolean"),
    (dict(domain="spin", max_steps=None, early_stopping=False), ValueError, "No stopping criterion provided."),
])
def test_bad_solver_arguments(backend, kwargs, error, message):
    kwargs = {"verbose": False, "backend": backend, **kwargs}
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        sb.minimize(Q3, **kwargs)
    with pytest.raises(error):
        sb.build_model(Q3).maximize(**kwargs)


@pytest.mark.parametrize("data,kwargs,error,message", [
    ((torch.zeros(3, 4),), {}, ValueError, "Provided quadratic coefficients tensor is not square."),
    ((torch.zeros(2, 2, 2, 2),), {}, ValueError, "Expected a tensor with at most 2 dimensions, got 4."),
    ((Q3, torch.zeros(4)), {}, ValueError, "Inconsistant shape among provided tensors. Expected 3 but got 4."),
    ((Q3, Q3), {}, ValueError, "Providing two tensors for the same degree is ambiguous"),
    ((torch.tensor([[1.0, float("nan")], [0.0, 1.0]]),), {}, ValueError, "quadratic coefficients must be finite"),
    ((Q3, torch.tensor([1.0, float("inf"), 0.0])), {}, ValueError, "linear coefficients must be finite"),
    ((torch.zeros(0, 0),), {}, ValueError, "no variables"),
    ((4.0,), {}, ValueError, "no variables"),
    (("abc",), {}, ValueError, "Unsupported coefficient tensor type"),
    ((Q3,), dict(dtype=torch.float16), ValueError, "can only run with a torch.float32 or a torch.float64 dtype"),
    ((Q3,), dict(device="nonsense"), ValueError, "device 'nonsense' is not a valid torch device"),
    ((sympy.poly(sympy.Symbol("x") ** 3),), {}, ValueError, "Expected a quadratic polynomial but got a total degree of 3."),
])
def test_bad_polynomial_data(data, kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        sb.minimize(*data, domain="spin", verbose=False, **kwargs)


def test_native_backend_unavailable_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_ops, "NATIVE", False)
    monkeypatch.setattr(_ops, "_REASON", "ImportError: no _C")
    with pytest.raises(RuntimeError, match="backend='native' was requested.*no _C"):
        sb.minimize(Q3, domain="spin", backend="native", **QUIET)
    vector, _ = sb.minimize(Q3, domain="spin", backend="auto", **QUIET)
    assert vector.shape == (3,)


def test_backend_info_keys():
    info = sb.backend_info()
    assert set(info) >= {"native", "cuda", "cuda_device", "reason", "torch"}
    assert info["torch"] == torch.__version__
    assert (info["reason"] is None) == info["native"]
    if not torch.cuda.is_available():
        assert info["cuda_device"] is False


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(backend, dtype):
    best, value = sb.minimize(Q3, domain="int2", dtype=dtype, backend=backend, **QUIET)
    assert best.shape == (3,) and value.shape == () and best.dtype == dtype
    vectors, values = sb.maximize(Q3, domain="binary", dtype=dtype, best_only=False,
                                  backend=backend, **QUIET)
    assert vectors.shape == (8, 3) and values.shape == (8,)
    assert set(vectors.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(values, sb.build_model(Q3, dtype=dtype)(vectors))
    assert value == sb.build_model(Q3, dtype=dtype)(best)


def brute_force(poly, values_per_variable):
    points = torch.tensor(list(itertools.product(*values_per_variable)), dtype=poly.dtype)
    evaluations = poly(points)
    return evaluations.min(), evaluations.max()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("domain,values", [
    ("spin", [-1, 1]), ("binary", [0, 1]), ("int2", [0, 1, 2, 3])])
def test_finds_brute_force_optimum(backend, domain, values):
    g = torch.Generator().manual_seed(4)
    poly = sb.build_model(torch.randn(5, 5, generator=g), torch.randn(5, generator=g), 1.5,
                          dtype=torch.float64)
    low, high = brute_force(poly, [values] * 5)
    _, best_low = poly.minimize(domain=domain, agents=64, max_steps=2000, verbose=False,
                                backend=backend, seed=1)
    _, best_high = poly.maximize(domain=domain, agents=64, max_steps=2000, verbose=False,
                                 backend=backend, seed=1)
    assert torch.isclose(best_low, low) and torch.isclose(best_high, high)


def test_ising_reduction_is_exact_for_every_point():
    g = torch.Generator().manual_seed(2)
    poly = sb.build_model(torch.randn(3, 3, generator=g, dtype=torch.float64),
                          torch.randn(3, generator=g, dtype=torch.float64), 0.7,
                          dtype=torch.float64)
    domain = ["int2", "spin", "binary"]
    ising = poly.to_ising(domain)
    bits = ising.dimension
    assert bits == 4
    spins = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=bits)), dtype=torch.float64).t()
    energies = -0.5 * torch.einsum("ia,ij,ja->a", spins, ising.J, spins) + ising.h @ spins
    values = poly(poly.convert_spins(spins, domain).t())
    offsets = values - energies
    assert torch.allclose(offsets, offsets[0].expand_as(offsets))
    converted = poly.convert_spins(spins, domain)
    assert set(converted[0].tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert set(converted[1].tolist()) == {-1.0, 1.0}


def test_sympy_and_tensor_inputs_agree():
    x, y = sympy.symbols("x y")
    from_poly = sb.build_model(sympy.poly(x**2 - 2 * x * y + 3 * y**2 + 4 * x - 5))
    from_tensors = sb.build_model(torch.tensor([[1.0, -2.0], [0.0, 3.0]]), torch.tensor([4.0, 0.0]), -5)
    assert torch.equal(from_poly.quadratic, from_tensors.quadratic)
    assert torch.equal(from_poly.linear, from_tensors.linear)
    assert torch.equal(from_poly.bias, from_tensors.bias)
    points = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])
    assert torch.equal(from_poly(points), torch.tensor([-5.0, 8.0, 25.0]))
    assert from_poly([1.0, 2.0]).item() == 8.0
    with pytest.raises(ValueError, match="Size of the input along the last axis should be 2, it is 3."):
        from_poly(torch.zeros(3))


def test_sb_result_and_polynomial_methods():
    poly = sb.build_model(Q3)
    assert poly.sb_result is None
    vectors, _ = poly.minimize(domain="spin", best_only=False, **QUIET)
    assert poly.sb_result.shape == (3, 8)
    assert torch.equal(poly.sb_result.t(), vectors)


def test_environment_functions():
    try:
        assert sb.get_env() == {"time_step": 0.1, "pressure_slope": 0.01, "heat_coefficient": 0.06}
        sb.set_env(time_step=0.2, heat_coefficient=0.1)
        assert sb.get_env() == {"time_step": 0.2, "pressure_slope": 0.01, "heat_coefficient": 0.1}
        with pytest.raises(TypeError, match="Expected a float but got a <class 'int'>."):
            sb.set_env(pressure_slope=1)
    finally:
        sb.reset_env()
    assert sb.get_env()["time_step"] == 0.1


@pytest.mark.parametrize("backend", BACKENDS)
def test_convergence_warning_when_no_agent_converges(backend):
    with pytest.warns(sb.ConvergenceWarning, match="No agent has converged"):
        sb.minimize(Q3, domain="spin", verbose=False, agents=4, max_steps=60,
                    sampling_period=10, convergence_threshold=50, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_stops_before_max_steps(backend, monkeypatch):
    steps = []
    original = engine._Stepper.advance

    def counting(self, position, momentum, start, count):
        steps.append(count)
        return original(self, position, momentum, start, count)

    monkeypatch.setattr(engine._Stepper, "advance", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb.minimize(Q3, domain="spin", verbose=False, agents=4, max_steps=100000,
                    sampling_period=10, convergence_threshold=3, backend=backend)
    assert 30 <= sum(steps) < 100000 and sum(steps) % 10 == 0


def chunk_runner(**kwargs):
    options = dict(agents=4, max_steps=None, timeout=None, mode="ballistic", heated=False,
                   verbose=False, early_stopping=False, sampling_period=50,
                   convergence_threshold=50, backend="torch", generator=None)
    options.update(kwargs)
    return engine.SBRunner(**options)


def test_chunks_grow_from_a_single_step_and_stay_within_the_time_budget():
    runner = chunk_runner()
    budget = engine.CHUNK_SECONDS
    assert runner._chunk(0, None) == 1
    # A call costing a fixed set-up (25% of the budget) plus 10 us per step: its rate
    # overstates the cost per step, so chunks double until a call takes half the budget.
    cost = lambda steps: 0.25 * budget + 1e-5 * steps  # noqa: E731
    sizes, last = [], (1, cost(1))
    for _ in range(12):
        chunk = runner._chunk(0, last)
        sizes.append(chunk)
        assert cost(chunk) <= budget
        last = (chunk, cost(chunk))
    steps = [1] + sizes
    assert all(b >= min(2 * a, engine.MAX_CHUNK_STEPS)
               for a, b in zip(steps, steps[1:]) if cost(a) < budget / 2)
    assert sizes[-1] == engine.MAX_CHUNK_STEPS or cost(sizes[-1]) >= budget / 2
    # A slow call (twice the budget for 10 steps) gives the budget's worth of steps.
    assert runner._chunk(0, (10, 2 * budget)) == 5


def test_chunks_amortise_a_set_up_longer_than_the_budget():
    """A call whose fixed set-up alone exceeds the budget (K2000's int8 GEMM on 2 cores)
    must not be run one step at a time, each step paying the set-up: after a second call
    length tells set-up and per-step cost apart, calls last about twice the set-up."""
    runner = chunk_runner()
    budget = engine.CHUNK_SECONDS
    cost = lambda steps: 1.5 * budget + 1e-3 * steps  # noqa: E731
    first = (1, cost(1))
    assert runner._chunk(1, (1, cost(1)), first) == 2
    chunk = runner._chunk(3, (2, cost(2)), first)
    assert 1.9 * 1.5 * budget <= cost(chunk) <= 2.01 * 1.5 * budget


def test_chunks_probe_a_second_length_when_one_step_takes_half_the_budget():
    """A single step taking 60% of the budget (a batch's first dSB step, set-up included)
    must not repeat forever: a call of two steps is tried, and when it was no slower (the
    first call's set-up and costlier early steps), the chunk keeps doubling."""
    runner = chunk_runner()
    budget = engine.CHUNK_SECONDS
    first = (1, 0.6 * budget)
    assert runner._chunk(1, first, first) == 2
    assert runner._chunk(3, (2, 0.55 * budget), first) == 4
    # Genuinely costly steps (twice the first call for twice the steps): back to one step.
    assert runner._chunk(3, (2, 1.2 * budget), first) == 1


def test_batch_calls_aim_at_a_longer_budget():
    from sb_native.engine.batched import BATCH_CHUNK_SECONDS, BatchRunner
    runner = BatchRunner(agents=4, max_steps=None, timeout=None, mode="ballistic",
                         heated=False, verbose=False, early_stopping=False, sampling_period=50,
                         convergence_threshold=50, backend="torch", generator=None)
    assert runner._chunk(0, (10, 0.1)) == int(10 * BATCH_CHUNK_SECONDS / 0.1)


def test_chunks_respect_sampling_points_and_max_steps():
    runner = chunk_runner(early_stopping=True, sampling_period=50, max_steps=120)
    fast = (1, 1e-9)
    assert runner._chunk(10, fast) == 40  # up to the next sampling point
    assert runner._chunk(100, fast) == 20  # up to max_steps
    assert chunk_runner()._chunk(0, fast) == engine.MAX_CHUNK_STEPS


@pytest.mark.parametrize("backend", BACKENDS)
def test_timeout_stops_the_run(backend):
    g = torch.Generator().manual_seed(0)
    Q = torch.randn(200, 200, generator=g)
    import time
    start = time.perf_counter()
    vector, _ = sb.minimize(Q, domain="spin", verbose=False, agents=32, max_steps=None,
                            early_stopping=False, timeout=0.3, backend=backend)
    assert time.perf_counter() - start < 10.0
    assert vector.shape == (200,)


def test_keyboard_interrupt_returns_current_spins(monkeypatch):
    calls = []
    original = engine._Stepper.advance

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(engine._Stepper, "advance", interrupted)
    with pytest.warns(RuntimeWarning, match="Simulation interrupted by user. Current spins will be returned."):
        vectors, values = sb.minimize(Q3, domain="spin", verbose=False, agents=5, max_steps=1000,
                                      sampling_period=10, convergence_threshold=1000,
                                      best_only=False)
    assert vectors.shape == (5, 3) and set(vectors.unique().tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize("kwargs,bars", [
    (dict(max_steps=100, timeout=30.0, early_stopping=True), ["🔁 Iterations", "⏳ Simulation time", "🏁 Bifurcated agents"]),
    (dict(max_steps=100, early_stopping=False), ["🔁 Iterations"]),
    (dict(max_steps=None, timeout=0.2, early_stopping=False), ["⏳ Simulation time"]),
])
def test_progress_bars(capsys, kwargs, bars):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb.minimize(Q3, domain="spin", agents=4, verbose=True, sampling_period=10, **kwargs)
    err = capsys.readouterr().err
    for name in ["🔁 Iterations", "⏳ Simulation time", "🏁 Bifurcated agents"]:
        assert (name in err) == (name in bars), name
    if "🔁 Iterations" in bars:
        assert "100/100" in err and "steps/s" in err
    sb.minimize(Q3, domain="spin", agents=4, verbose=False, max_steps=20, early_stopping=False)
    assert capsys.readouterr().err == ""
