"""solve_within (sb_native/timed.py): the best answer within a time limit. Against brute force,
against the same runs made by hand with minimize/maximize, its reproducibility with a fixed
step count, its clock, its callback and its errors."""

import itertools
import math
from dataclasses import replace

import pytest
import torch

import sb_native as sb
from sb_native.engine import Coupling
from sb_native.models import QUBO, MaxCut
from tests.helpers import symmetric


def graph(n, density, seed):
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu((torch.rand(n, n, generator=g) < density).double(), 1)
    return MaxCut(upper * torch.randint(1, 4, (n, n), generator=g))


def brute_force_cut(model):
    n = model.dimension
    every = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=n)))
    return float(model(every).max())


FAST = dict(steps=60, max_runs=3, verbose=False)


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_small_max_cut_reaches_the_brute_force_optimum(backend):
    model = graph(12, 0.4, seed=1)
    result = sb.solve_within(model, 30.0, sense="maximize", backend=backend, **FAST)
    assert result.value == brute_force_cut(model)
    assert float(model(result.vector)) == result.value
    assert result.runs == 3 and result.steps == 60


def test_polynomial_over_integers_and_ising_problems():
    Q = symmetric(5, torch.float64, integer=True, seed=3)
    linear = torch.arange(5, dtype=torch.float64)
    polynomial = sb.QuadraticPolynomial(Q, linear, dtype=torch.float64)
    every = torch.tensor(list(itertools.product(range(4), repeat=5)), dtype=torch.float64)
    result = sb.solve_within(polynomial, 30.0, domain="int2", **FAST)
    assert result.value == float(polynomial(every).min())
    assert result.vector.dtype == torch.float64 and result.vector.shape == (5,)

    ising = sb.Ising(symmetric(10, torch.float32, integer=True, seed=4),
                     torch.arange(10, dtype=torch.float32) - 5)
    spins = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=10))).t()
    energies = -0.5 * ((ising.J @ spins) * spins).sum(0) + ising.h @ spins
    low = sb.solve_within(ising, 30.0, **FAST)
    high = sb.solve_within(ising, 30.0, sense="maximize", **FAST)
    assert low.value == float(energies.min()) and high.value == float(energies.max())


@pytest.mark.parametrize("polish", [False, True])
def test_equals_the_same_runs_made_with_maximize(polish):
    """Run r is maximize(seed=seed + r) with the pressure ramped over its steps, polished when
    the settings say so; the result is the best of the runs."""
    model = graph(80, 0.1, seed=2)
    settings = sb.Settings(mode="discrete", agents=16, time_step=0.5, max_steps=500,
                           polish=polish)
    result = sb.solve_within(model, 30.0, sense="maximize", seed=7, settings=settings,
                             **FAST)
    cuts = []
    with sb.presets.Preset(mode="discrete", agents=16, max_steps=60, time_step=0.5).environment():
        for run in range(3):
            _, cut = model.maximize(agents=16, max_steps=60, mode="discrete",
                                    seed=sb.timed.run_seed(7, run),
                                    early_stopping=False, verbose=False, polish=polish)
            cuts.append(float(cut))
    assert result.value == max(cuts)
    assert result.seeds == tuple(sb.timed.run_seed(7, run) for run in range(3))
    assert [value for _, value in result.improvements] == sorted(set(
        itertools.accumulate(cuts, max)))


def test_same_seed_same_answer_and_polish_never_hurts():
    model = graph(150, 0.05, seed=5)
    first = sb.solve_within(model, 30.0, sense="maximize", seed=3, **FAST)
    again = sb.solve_within(model, 30.0, sense="maximize", seed=3, **FAST)
    assert torch.equal(first.vector, again.vector) and first.value == again.value
    unpolished = sb.solve_within(model, 30.0, sense="maximize", seed=3, settings=replace(
        sb.settings_for(Coupling.dense(model.weights)), polish=False), **FAST)
    assert first.value >= unpolished.value


def test_the_clock_bounds_the_search():
    model = graph(300, 0.05, seed=6)
    result = sb.solve_within(model, 0.4, sense="maximize", verbose=False)
    assert result.runs >= 1
    assert result.seconds < 0.4 + 1.0  # a run's last chunk and its polish may overrun
    assert 0 < result.found_at <= result.seconds
    values = [value for _, value in result.improvements]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert result.improvements[-1] == (result.found_at, result.value)


def test_callback_sees_every_run_and_can_stop_the_search():
    model = graph(60, 0.1, seed=8)
    history = sb.History()
    result = sb.solve_within(model, 30.0, sense="maximize", callback=history, steps=50,
                             max_runs=4, verbose=False)
    assert history.frozen == [1, 2, 3, 4] and history.steps == [50, 100, 150, 200]
    assert history.best == list(itertools.accumulate(history.best, max))
    assert history.best[-1] == result.value
    assert all(mean <= best for mean, best in zip(history.mean, history.best))

    stopped = sb.solve_within(model, 30.0, sense="maximize", steps=50, verbose=False,
                              callback=lambda point: point.frozen == 2)
    assert stopped.runs == 2


def test_environment_is_restored_even_when_the_callback_fails():
    before = sb.get_env()

    def fail(point):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        sb.solve_within(graph(20, 0.3, seed=1), 5.0, sense="maximize", steps=50,
                        callback=fail, verbose=False)
    assert sb.get_env() == before


def test_settings_follow_the_problem_class():
    dense = sb.settings_for(Coupling.dense(symmetric(50, torch.float32)))
    sparse = sb.settings_for(Coupling.dense(symmetric(50, torch.float32, density=0.02)))
    assert (dense.mode, dense.time_step) == ("discrete", 0.25)
    assert sparse.time_step == 0.5 and sparse.agents == 16 and sparse.polish
    model = MaxCut(torch.ones(6, 6))
    assert sb.settings_for(model) == dense  # a model, its coupling
    assert sb.settings_for(sb.Ising(symmetric(50, torch.float32, density=0.02))) == sparse
    # Linear terms (an extra spin in SB's coupling): more agents, shorter runs.
    qubo = QUBO(symmetric(50, torch.float32, integer=True, density=0.02) + torch.eye(50))
    assert (sb.settings_for(qubo).agents, sb.settings_for(qubo).max_steps) == (64, 2000)
    assert sb.solve_within(qubo, 30.0, steps=50, max_runs=1, verbose=False).settings == \
        sb.settings_for(qubo)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(time_limit=0), ValueError, "time_limit should be a positive number"),
    (dict(time_limit=math.nan), ValueError, "time_limit should be a positive number"),
    (dict(time_limit=math.inf), ValueError, "time_limit should be a positive number"),
    (dict(time_limit=True), ValueError, "time_limit should be a positive number"),
    (dict(sense="max"), ValueError, "sense should be 'minimize' or 'maximize'"),
    (dict(steps=0), ValueError, "steps"),
    (dict(max_runs=-1), ValueError, "max_runs"),
    (dict(seed=None), TypeError, "seed should be an integer"),
    (dict(problem=[[1.0]]), TypeError, "problem should be a QuadraticPolynomial"),
    (dict(problem="polynomial"), ValueError, "domain: a QuadraticPolynomial needs its domain"),
    (dict(problem="ising", domain="binary"), ValueError, "domain: an Ising problem"),
])
def test_errors_name_the_argument(kwargs, error, message):
    problems = {"polynomial": sb.QuadraticPolynomial(torch.eye(2)),
                "ising": sb.Ising(torch.eye(2))}
    arguments = dict(problem=QUBO(torch.eye(2)), time_limit=1.0) | kwargs
    if isinstance(arguments["problem"], str):
        arguments["problem"] = problems[arguments["problem"]]
    with pytest.raises(error, match=message):
        sb.solve_within(arguments.pop("problem"), arguments.pop("time_limit"), verbose=False,
                        **arguments)


def test_progress_bar_shows_the_best_so_far(capsys):
    model = graph(30, 0.2, seed=3)
    result = sb.solve_within(model, 30.0, sense="maximize", steps=50, max_runs=2, verbose=True)
    err = capsys.readouterr().err
    assert "Best within limit" in err and f"best {result.value:g}" in err
    sb.solve_within(model, 30.0, sense="maximize", steps=50, max_runs=1, verbose=False)
    assert capsys.readouterr().err == ""
