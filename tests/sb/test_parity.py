"""The compatibility promise: same global seed and arguments give the peer's results.

The torch backend performs the same tensor operations in the same order as
simulated-bifurcation 2.0.0, so it must match bit for bit. The native backend fuses the
elementwise work in C++ (same GEMM), so it matches to rounding: float64 runs on these
problems give identical spins, float32 runs are compared by the quality of what they find.
"""

import itertools

import pytest
import torch

import sb_native as sb
from tests.helpers import NATIVE_ONLY, default_dtype, run_seeded

DOMAINS = ["spin", "binary", "int2", ["spin", "binary", "int3", "binary", "spin", "int1",
                                      "binary", "spin", "spin", "int2"]]
CASES = list(itertools.product(
    [torch.float32, torch.float64], ["ballistic", "discrete"], [False, True], [True, False],
    range(len(DOMAINS))))


def problem(seed, n=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=g), torch.randn(n, generator=g), torch.randn((), generator=g)


def solve(module, sense, dtype, mode, heated, early_stopping, domain, seed, **extra):
    Q, linear, c = problem(seed)
    kwargs = dict(domain=domain, dtype=dtype, mode=mode, heated=heated, verbose=False,
                  best_only=False, agents=16, max_steps=400, early_stopping=early_stopping,
                  sampling_period=10, convergence_threshold=5, **extra)
    with default_dtype(dtype):
        return run_seeded(getattr(module, sense), 1234 + seed, Q, linear, c, **kwargs)


@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("sense", ["minimize", "maximize"])
@pytest.mark.parametrize("dtype,mode,heated,early_stopping,domain_index", CASES)
def test_torch_backend_equals_peer(peer, sense, dtype, mode, heated, early_stopping,
                                   domain_index):
    domain = DOMAINS[domain_index]
    expected = solve(peer, sense, dtype, mode, heated, early_stopping, domain, domain_index)
    got = solve(sb, sense, dtype, mode, heated, early_stopping, domain, domain_index,
                backend="torch")
    assert got[0].dtype == expected[0].dtype and got[0].shape == expected[0].shape
    assert torch.equal(got[0], expected[0])
    assert torch.equal(got[1], expected[1])


@NATIVE_ONLY
@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
@pytest.mark.parametrize("heated", [False, True])
@pytest.mark.parametrize("early_stopping", [True, False])
@pytest.mark.parametrize("domain_index", range(len(DOMAINS)))
def test_native_backend_equals_peer_float64(peer, mode, heated, early_stopping, domain_index):
    domain = DOMAINS[domain_index]
    expected = solve(peer, "minimize", torch.float64, mode, heated, early_stopping, domain,
                     domain_index)
    got = solve(sb, "minimize", torch.float64, mode, heated, early_stopping, domain,
                domain_index, backend="native")
    assert torch.equal(got[0], expected[0])
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)


@NATIVE_ONLY
@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
def test_native_backend_float32_finds_peer_quality(peer, mode):
    expected = solve(peer, "minimize", torch.float32, mode, False, False, "spin", 0)
    got = solve(sb, "minimize", torch.float32, mode, False, False, "spin", 0, backend="native")
    assert got[0].shape == expected[0].shape
    # Same start, same dynamics up to float32 rounding: the best values agree closely.
    assert got[1].min() <= expected[1].min() + 1e-3 * expected[1].abs().min() + 1e-4


def test_seed_keyword_is_private_and_repeatable():
    Q, linear, c = problem(7)
    state = torch.get_rng_state()
    first = sb.minimize(Q, domain="spin", seed=5, verbose=False, agents=8, max_steps=100,
                        best_only=False, backend="torch")
    assert torch.equal(state, torch.get_rng_state()), "seed= must not touch the global RNG"
    second = sb.minimize(Q, domain="spin", seed=5, verbose=False, agents=8, max_steps=100,
                         best_only=False, backend="torch")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@NATIVE_ONLY
def test_seed_keyword_repeatable_native():
    Q, _, _ = problem(8)
    runs = [sb.minimize(Q, domain="spin", seed=11, verbose=False, agents=8, max_steps=150,
                        best_only=False, backend="native") for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0])


@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("backend", ["torch", pytest.param("native", marks=NATIVE_ONLY)])
def test_environment_is_honoured_like_peer(peer, backend):
    env = dict(time_step=0.05, pressure_slope=0.02, heat_coefficient=0.1)
    results = []
    for module, extra in ((peer, {}), (sb, {"backend": backend})):
        module.set_env(**env)
        try:
            results.append(solve(module, "minimize", torch.float64, "ballistic", True, True,
                                 "spin", 3, **extra))
        finally:
            module.reset_env()
    assert torch.equal(results[0][0], results[1][0])
    default = solve(sb, "minimize", torch.float64, "ballistic", True, True, "spin", 3,
                    backend=backend)
    assert not torch.equal(default[1], results[1][1])
