"""qimad_minimize: the forms of bounds and functions give the same run, what it reports, its
stopping rules and errors, and that it finds what it should."""

import math
from types import SimpleNamespace

import pytest
import torch

import sb_native
from sb_native import _ops
from sb_native.optim import QIMADTorch, qimad_minimize
from tests.qimad.test_qimad_ops import QIMAD_OPS


def shifted_sphere(X):
    return ((X - 0.75) ** 2).sum(-1)


def rastrigin(X):
    return 10 * X.shape[-1] + (X * X - 10 * torch.cos(2 * math.pi * X)).sum(-1)


def test_finds_the_minimum_inside_the_box():
    result = qimad_minimize(shifted_sphere, [(-3.0, 3.0)] * 4, seed=0, maxiter=300)
    assert result.success and result.status == 0
    assert result.fun < 1e-6 and float((result.x - 0.75).abs().max()) < 1e-3
    assert result.fun == pytest.approx(float(shifted_sphere(result.x)), rel=1e-12, abs=1e-15)
    assert result.nit == 300 and result.nfev == result.njev == 300 * 8
    assert result["x"] is result.x and len(result.history) == 300
    assert all(a >= b for a, b in zip(result.history, result.history[1:]))


def test_the_minimum_on_the_boundary():
    """The unconstrained minimum lies outside the box: the best point is on its face."""
    result = qimad_minimize(shifted_sphere, [(-1.0, 0.25)] * 3, seed=1, maxiter=200)
    assert torch.allclose(result.x, torch.full((3,), 0.25, dtype=torch.float64), atol=1e-6)


def test_bounds_in_every_form_give_the_same_run():
    lower = torch.tensor([-5.12, -4.0, -3.0], dtype=torch.float64)
    upper = torch.tensor([5.12, 4.0, 2.0], dtype=torch.float64)
    forms = [list(zip(lower.tolist(), upper.tolist())), (lower, upper),
             (lower.numpy(), upper.numpy()), SimpleNamespace(lb=lower.tolist(), ub=upper.tolist())]
    results = [qimad_minimize(rastrigin, b, seed=3, maxiter=40) for b in forms]
    for r in results[1:]:
        assert torch.equal(r.x, results[0].x) and r.history == results[0].history


def test_per_point_functions_and_given_gradients_give_the_same_run():
    grad = lambda X: 2 * X + 20 * math.pi * torch.sin(2 * math.pi * X)  # noqa: E731
    box = [(-5.12, 5.12)] * 5
    batched = qimad_minimize(rastrigin, box, seed=4, maxiter=60)
    per_point = qimad_minimize(rastrigin, box, seed=4, maxiter=60, vectorized=False)
    given = qimad_minimize(rastrigin, box, jac=grad, seed=4, maxiter=60)
    per_point_given = qimad_minimize(rastrigin, box, jac=grad, seed=4, maxiter=60,
                                     vectorized=False)
    for r in (per_point, given, per_point_given):
        torch.testing.assert_close(r.x, batched.x, rtol=0, atol=1e-12)
        assert r.fun == pytest.approx(batched.fun, rel=1e-12, abs=1e-12)


def test_it_is_qimadtorch_with_the_published_dynamics():
    """The same run as QIMADTorch over one parameter with the documented options."""
    box = [(-5.0, 10.0)] * 6
    rosenbrock = lambda X: (100 * (X[..., 1:] - X[..., :-1] ** 2) ** 2  # noqa: E731
                            + (1 - X[..., :-1]) ** 2).sum(-1)
    result = qimad_minimize(rosenbrock, box, seed=9, maxiter=50)
    x = torch.nn.Parameter(torch.full((6,), 2.5, dtype=torch.float64))
    opt = QIMADTorch([x], seed=9, bounds=(-5.0, 10.0), init="uniform", cooling=None,
                     stagnation="personal", update_order="sequential")
    history = [opt.step_vectorized(rosenbrock) for _ in range(50)]
    assert history == result.history and torch.equal(x.detach(), result.x)


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_backends_agree(backend):
    if backend == "native" and not _ops.has_kernels(QIMAD_OPS, torch.device("cpu")):
        pytest.skip("no native kernels")
    ours = qimad_minimize(rastrigin, [(-5.12, 5.12)] * 10, seed=42, backend=backend,
                          stagnation="global")
    reference = qimad_minimize(rastrigin, [(-5.12, 5.12)] * 10, seed=42, backend="torch",
                               stagnation="global")
    torch.testing.assert_close(ours.x, reference.x, rtol=0, atol=1e-12)
    assert ours.fun == pytest.approx(reference.fun, rel=1e-12)


def test_f_target_and_callback_stop_the_run():
    box = [(-2.0, 2.0)] * 3
    reached = qimad_minimize(shifted_sphere, box, seed=0, maxiter=500, f_target=1e-3)
    assert reached.status == 1 and reached.message == "f_target reached"
    assert reached.fun < 1e-3 <= reached.history[-2] and reached.nit < 500
    seen = []
    stopped = qimad_minimize(shifted_sphere, box, seed=0, maxiter=500,
                             callback=lambda it, best: seen.append((it, best)) or it == 7)
    assert stopped.status == 2 and stopped.nit == 7 and [s[0] for s in seen] == list(range(1, 8))
    assert [s[1] for s in seen] == stopped.history


def test_no_finite_value():
    result = qimad_minimize(lambda X: X.sum(-1) * math.inf, [(0.5, 1.0)] * 2, maxiter=3, seed=0)
    assert not result.success and result.status == -1 and result.fun == math.inf


@pytest.mark.parametrize("bounds, match", [
    ((-1.0, 1.0), "a sequence of \\(lower, upper\\) pairs"),
    ([(-1.0, 1.0, 2.0)], "a sequence of \\(lower, upper\\) pairs"),
    ([], "a sequence of \\(lower, upper\\) pairs"),
    ([(-math.inf, 1.0)], "bounds must be finite"),
    ([(1.0, -1.0)], "lower <= upper"),
    ((torch.zeros(2), torch.ones(3)), "lower and upper must be \\(d,\\)"),
])
def test_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        qimad_minimize(shifted_sphere, bounds)


def test_bad_maxiter():
    with pytest.raises(ValueError, match="maxiter must be a positive int"):
        qimad_minimize(shifted_sphere, [(0.0, 1.0)], maxiter=0)


def test_exported():
    assert sb_native.qimad_minimize is qimad_minimize
    assert "qimad_minimize" in sb_native.__all__ and "QimadResult" in sb_native.__all__
