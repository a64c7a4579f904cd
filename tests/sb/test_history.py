"""A run's history (`callback=`, sb_native.History; sb_native/engine/history.py): the points
are the values minimize/maximize return, on both backends; a callback may stop the run and
never changes it otherwise."""

import pytest
import torch

import sb_native as sb
from tests.helpers import NATIVE_ONLY, symmetric

BACKENDS = ["torch", pytest.param("native", marks=NATIVE_ONLY)]
RUN = dict(agents=8, max_steps=200, seed=1, verbose=False, early_stopping=False,
           sampling_period=20, best_only=False)


def problem(domain, sparse, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = torch.randn(12, 12, generator=g, dtype=torch.float64)
    linear = torch.randn(12, generator=g, dtype=torch.float64)
    if sparse:
        Q = (Q * (Q.abs() > 1)).to_sparse()
    return Q, linear, 3.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sense", ["minimize", "maximize"])
@pytest.mark.parametrize("domain,sparse", [("spin", False), ("spin", True), ("binary", False),
                                           ("binary", True), ("int3", False)])
def test_last_point_is_the_returned_values(backend, sense, domain, sparse):
    """No early stopping and max_steps a multiple of the period: the last point samples the
    returned spins, so its best and mean are the returned values'."""
    history = sb.History()
    _, values = getattr(sb, sense)(*problem(domain, sparse), domain=domain, backend=backend,
                                   dtype=torch.float64, callback=history, **RUN)
    best = values.max() if sense == "maximize" else values.min()
    assert history.steps == list(range(20, 201, 20))
    assert history.best[-1] == pytest.approx(float(best), rel=1e-9, abs=1e-9)
    assert history.mean[-1] == pytest.approx(float(values.mean()), rel=1e-9, abs=1e-9)
    assert history.seconds == sorted(history.seconds) and history.seconds[0] > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_ising_history_is_its_energy(backend):
    J = symmetric(10, torch.float64, seed=2)
    h = torch.linspace(-1, 1, 10, dtype=torch.float64)
    ising = sb.Ising(J, h, dtype=torch.float64)
    history = sb.History()
    spins = ising.minimize(agents=6, max_steps=100, seed=3, verbose=False,
                           early_stopping=False, sampling_period=25, backend=backend,
                           callback=history)
    energies = -0.5 * torch.einsum("ia,ij,ja->a", spins, J, spins) + h @ spins
    assert history.best[-1] == pytest.approx(float(energies.min()), rel=1e-12)
    assert history.mean[-1] == pytest.approx(float(energies.mean()), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_callback_does_not_change_the_run(backend):
    """Sampling for the callback (early stopping off) leaves the trajectory alone."""
    Q, linear, c = problem("spin", False, seed=4)
    kwargs = dict(domain="spin", backend=backend, **RUN)
    plain = sb.minimize(Q, linear, c, **kwargs)
    watched = sb.minimize(Q, linear, c, callback=sb.History(), **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(plain, watched))


@pytest.mark.parametrize("backend", BACKENDS)
def test_callback_returning_true_stops_the_run(backend):
    Q, linear, c = problem("spin", False, seed=5)
    seen = []

    def stop_at_60(point):
        seen.append(point.step)
        return point.step >= 60

    kwargs = dict(RUN, max_steps=1000)
    stopped = sb.minimize(Q, linear, c, domain="spin", backend=backend, callback=stop_at_60,
                          **kwargs)
    assert seen == [20, 40, 60]
    short = sb.minimize(Q, linear, c, domain="spin", backend=backend, **dict(kwargs,
                                                                            max_steps=60))
    assert all(torch.equal(a, b) for a, b in zip(stopped, short))


def test_frozen_agents_end_at_all_agents_with_early_stopping():
    J = symmetric(16, torch.float32, seed=6, integer=True)
    history = sb.History()
    sb.minimize(J, domain="spin", mode="discrete", agents=5, max_steps=None, seed=2,
                verbose=False, sampling_period=10, convergence_threshold=5, callback=history)
    assert history.frozen == sorted(history.frozen)  # a frozen agent stays frozen
    assert history.frozen[-1] == 5
    assert history.to_dict()["frozen"] == history.frozen


def test_models_report_their_objective():
    edges = [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0), (3, 0, 1.0), (0, 2, 1.0)]
    model = sb.models.MaxCut.from_edges(edges, n_nodes=4)
    history = sb.History()
    _, cut = model.maximize(agents=4, max_steps=100, seed=0, verbose=False,
                            early_stopping=False, sampling_period=50, callback=history)
    assert history.best == [pytest.approx(float(cut))] * 2 and float(cut) == 4.0


def test_callback_errors():
    Q = torch.eye(3)
    with pytest.raises(TypeError, match="Expected callback to be a callable or None"):
        sb.minimize(Q, domain="spin", callback=5, verbose=False)
    with pytest.raises(TypeError, match="Expected callback to be a callable or None"):
        sb.minimize([Q, 2 * Q], domain="spin", callback=5, verbose=False)


def test_a_failing_callback_raises_its_error():
    def broken(point):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        sb.minimize(torch.eye(4), domain="spin", max_steps=100, sampling_period=10,
                    verbose=False, callback=broken)
