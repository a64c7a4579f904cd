"""The predefined models against simulated-bifurcation 2.0.0, and MaxCut against brute force."""

import itertools

import numpy as np
import pytest
import torch

import sb_native as sb
from tests.helpers import run_seeded

QUIET = dict(verbose=False, agents=16, max_steps=300, backend="torch")
PEER_QUIET = dict(verbose=False, agents=16, max_steps=300)


def both(peer, build, call="minimize"):
    """The same model built and solved by the peer and by us, from the same global seed."""
    expected_model, model = build(peer), build(sb)
    expected = run_seeded(getattr(expected_model, call), 99, **PEER_QUIET)
    got = run_seeded(getattr(model, call), 99, **QUIET)
    return expected_model, model, expected, got


def assert_same(expected, got):
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])


@pytest.mark.filterwarnings("ignore::Warning")
def test_ising_model(peer):
    g = torch.Generator().manual_seed(0)
    J, h = torch.randn(8, 8, generator=g), torch.randn(8, generator=g)
    _, model, expected, got = both(peer, lambda m: m.models.Ising(J, h))
    assert_same(expected, got)
    assert torch.equal(model.J, J) and model.domain == "spin"


def test_ising_model_without_field():
    J = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    vector, energy = sb.models.Ising(J).minimize(**QUIET)
    assert vector[0] == vector[1] and energy.item() == -1.0


@pytest.mark.filterwarnings("ignore::Warning")
def test_qubo_model(peer):
    Q = torch.randn(9, 9, generator=torch.Generator().manual_seed(1))
    _, model, expected, got = both(peer, lambda m: m.models.QUBO(Q))
    assert_same(expected, got)
    assert model.domain == "binary" and torch.equal(model.Q, Q)


@pytest.mark.filterwarnings("ignore::Warning")
def test_number_partitioning(peer):
    numbers = [2, 7, 1, 8, 2, 8, 1, 8]
    expected_model, model, expected, got = both(peer, lambda m: m.models.NumberPartitioning(numbers))
    assert_same(expected, got)
    assert model.partition == expected_model.partition
    sides = model.partition
    assert sorted(sides["left"]["values"] + sides["right"]["values"]) == sorted(numbers)
    assert abs(sides["left"]["sum"] - sides["right"]["sum"]) == 1  # total 37 is odd
    assert sb.models.NumberPartitioning([1, 2]).partition["left"]["sum"] is None


@pytest.mark.filterwarnings("ignore::Warning")
def test_markowitz(peer):
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 4, generator=g)
    cov, ret = a @ a.t() / 4, torch.rand(4, generator=g)
    expected_model, model, expected, got = both(
        peer, lambda m: m.models.Markowitz(cov, ret, risk_coefficient=2.0, number_of_bits=2), "maximize")
    assert_same(expected, got)
    assert torch.equal(model.portfolio, expected_model.portfolio)
    assert model.gains == expected_model.gains
    assert torch.allclose(model.covariance, cov) and torch.equal(model.expected_return, ret)


@pytest.mark.filterwarnings("ignore::Warning")
def test_sequential_markowitz(peer):
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 2, 2, generator=g)
    cov = a @ a.transpose(1, 2)
    ret = torch.rand(3, 2, generator=g)
    costs = torch.rand(3, 2, 2, generator=g) / 10
    initial = torch.tensor([1.0, 0.0])
    expected_model, model, expected, got = both(
        peer, lambda m: m.models.SequentialMarkowitz(cov, ret, costs, initial, 1.0, 2), "maximize")
    assert_same(expected, got)
    assert torch.equal(model.portfolio, expected_model.portfolio)
    assert model.portfolio.shape == (3, 2)


def brute_force_cut(weights):
    n = weights.shape[0]
    best = 0.0
    for signs in itertools.product([-1.0, 1.0], repeat=n):
        s = torch.tensor(signs, dtype=torch.float64)
        best = max(best, float(torch.sum(torch.triu(weights, 1) * (1 - torch.outer(s, s)) / 2)))
    return best


@pytest.mark.parametrize("sparse", [False, True])
def test_maxcut_finds_brute_force_optimum(sparse):
    g = torch.Generator().manual_seed(5)
    edges = [(i, j, float(torch.randint(1, 4, (1,), generator=g)))
             for i, j in itertools.combinations(range(10), 2) if torch.rand(1, generator=g) < 0.5]
    model = sb.models.MaxCut.from_edges(edges, sparse=sparse, dtype=torch.float64)
    assert (model.quadratic.layout != torch.strided) == sparse
    dense = torch.zeros(10, 10, dtype=torch.float64)
    for i, j, w in edges:
        dense[i, j] = dense[j, i] = w
    expected = brute_force_cut(dense)
    _, cut = model.maximize(agents=64, max_steps=2000, verbose=False, seed=0)
    assert cut.item() == expected
    part = model.partition
    assert sorted(part["left"] + part["right"]) == list(range(10))
    assert part["cut"] == expected
    side = torch.tensor([1.0 if i in part["left"] else -1.0 for i in range(10)])
    assert model.cut_value(side).item() == expected
    assert model.cut_value((side > 0).long()).item() == expected  # 0/1 labels


def test_maxcut_inputs_agree():
    upper = torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    symmetric = upper + upper.t()
    cuts = []
    for model in (sb.models.MaxCut(upper), sb.models.MaxCut(symmetric),
                  sb.models.MaxCut(symmetric.numpy()), sb.models.MaxCut(symmetric.to_sparse()),
                  sb.models.MaxCut.from_edges([(0, 1, 2.0), (1, 2, -1.0)]),
                  sb.models.MaxCut.from_edges(np.array([[0, 1, 2.0], [1, 2, -1.0]]))):
        cuts.append(model.cut_value(torch.tensor([[1, -1, -1], [1, -1, 1], [1, 1, 1]])).tolist())
    assert all(c == [2.0, 1.0, 0.0] for c in cuts), cuts
    assert sb.models.MaxCut.from_edges([(0, 1)], n_nodes=4).dimension == 4


@pytest.mark.parametrize("call,error,message", [
    (lambda: sb.models.MaxCut.from_edges([(0, 1, 1.0, 3.0)]), ValueError, r"rows of \(i, j\) or \(i, j, weight\)"),
    (lambda: sb.models.MaxCut.from_edges([(-1, 1)]), ValueError, "non-negative integers"),
    (lambda: sb.models.MaxCut.from_edges([(0, 5)], n_nodes=3), ValueError, "n_nodes=3 is too small"),
    (lambda: sb.models.MaxCut(torch.zeros(2, 3)), ValueError, "adjacency must be a square matrix"),
    (lambda: sb.models.MaxCut([[0, 1], [1, 0]]), TypeError, "use MaxCut.from_edges"),
])
def test_maxcut_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("name", list(sb.presets.PRESETS))
def test_presets_solve_and_restore_the_environment(name):
    preset = sb.presets.PRESETS[name]
    g = torch.Generator().manual_seed(9)
    weights = torch.triu(torch.randint(0, 3, (10, 10), generator=g).double(), 1)
    model = sb.models.MaxCut(weights + weights.t())
    before = sb.get_env()
    with preset.environment():
        assert sb.get_env()["time_step"] == preset.time_step
        assert sb.get_env()["pressure_slope"] == pytest.approx(1 / (preset.time_step * preset.max_steps))
        _, cut = model.maximize(verbose=False, seed=0, **preset.solver_kwargs())
    assert sb.get_env() == before
    assert cut.item() == brute_force_cut(weights + weights.t())
