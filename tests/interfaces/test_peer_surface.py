"""The public surface of simulated-bifurcation 2.0.0 (the installed peer is the oracle):
every public name of the package, `core`, `models` and `optimizer` exists in the matching
sb_native module and behaves as the peer's."""

import importlib
import types

import pytest
import torch

import sb_native as sb
from sb_native.core import Ising
from sb_native.optimizer import (
    SimulatedBifurcationEngine,
    SimulatedBifurcationOptimizer,
    StopWindow,
    SymplecticIntegrator,
)

MODULES = ["", ".core", ".models", ".optimizer"]


def public(module, modules: bool):
    """Public names; the submodules separately (the peer's implementation files, such as
    core.quadratic_polynomial, are not API: it documents none of them)."""
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and isinstance(value, types.ModuleType) == modules}


@pytest.mark.parametrize("suffix", MODULES)
def test_every_public_name_of_the_peer_exists(peer, suffix):
    theirs = importlib.import_module("simulated_bifurcation" + suffix)
    ours = importlib.import_module("sb_native" + suffix)
    assert public(theirs, modules=False) - public(ours, modules=False) == set()


def test_the_peer_subpackages_exist(peer):
    assert {"core", "models", "optimizer"} <= public(sb, modules=True)
    for name in ("core", "models", "optimizer"):
        assert getattr(sb, name) is importlib.import_module(f"sb_native.{name}")


def problem(n=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=g, dtype=dtype), torch.randn(n, generator=g, dtype=dtype)


BAD_ISING = [
    (lambda: (torch.zeros(3),), "2-dimensional"),
    (lambda: (torch.zeros(2, 3),), "square"),
    (lambda: (torch.zeros(3, 3), torch.zeros(4)), "shape of h"),
    (lambda: (torch.zeros(3, 3), torch.zeros(3, 1)), "shape of h"),
]


@pytest.mark.parametrize("args, what", BAD_ISING, ids=[what for _, what in BAD_ISING])
def test_ising_constructor_errors_are_the_peers(peer, args, what):
    with pytest.raises(ValueError) as theirs:
        peer.core.Ising(*args())
    with pytest.raises(ValueError) as ours:
        Ising(*args())
    assert str(ours.value) == str(theirs.value) and what in str(ours.value)


@pytest.mark.parametrize("with_h", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ising_tensor_and_negation_are_the_peers(peer, with_h, dtype):
    J, h = problem(dtype=dtype)
    h = h if with_h else None
    theirs, ours = peer.core.Ising(J, h, dtype), Ising(J, h, dtype)
    assert torch.equal(ours.as_simulated_bifurcation_tensor(),
                       theirs.as_simulated_bifurcation_tensor())
    assert torch.equal((-ours).as_simulated_bifurcation_tensor(),
                       (-theirs).as_simulated_bifurcation_tensor())
    assert ours.dimension == 6 and ours.dtype == dtype and ours.linear_term == with_h
    assert torch.equal(ours.J, J) and torch.equal(ours.h, h if with_h else torch.zeros(6, dtype=dtype))


@pytest.mark.parametrize("domain", ["spin", "binary", "int3", ["int2", "spin", "binary"] * 2])
def test_to_ising_returns_the_peers_ising(peer, domain):
    Q, linear = problem(dtype=torch.float64)
    ours = sb.build_model(Q, linear, 0.5, dtype=torch.float64).to_ising(domain)
    theirs = peer.build_model(Q, linear, 0.5, dtype=torch.float64).to_ising(domain)
    assert isinstance(ours, sb.Ising) and isinstance(ours, sb.core.Ising)
    torch.testing.assert_close(ours.J, theirs._J, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.h, theirs._h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
def test_ising_minimize_equals_the_peers_under_one_seed(peer, mode):
    J, h = problem(n=10, seed=3)
    options = dict(agents=7, max_steps=300, mode=mode, verbose=False, sampling_period=20,
                   convergence_threshold=4)
    torch.manual_seed(11)
    theirs = peer.core.Ising(J, h).minimize(**options)
    torch.manual_seed(11)
    ours = Ising(J, h).minimize(backend="torch", **options)
    assert ours.shape == (10, 7) and torch.equal(ours, theirs)


def test_integer_domains_too_wide_for_the_dtype_are_a_value_error():
    Q = torch.eye(2)
    with pytest.raises(ValueError, match="domain 'int100000' is too wide for torch.float32"):
        sb.minimize(Q, domain="int100000", verbose=False)
    with pytest.raises(ValueError, match="too wide for torch.float64"):
        sb.minimize(Q, domain=["spin", "int600"], dtype=torch.float64, verbose=False)
    ising = sb.build_model(Q).to_ising("int63")  # the widest float32 allows stays finite
    assert bool(torch.isfinite(ising.J).all()) and bool(torch.isfinite(ising.h).all())


def test_engine_names_and_errors_are_the_peers(peer):
    theirs = peer.optimizer.SimulatedBifurcationEngine
    for mode in ("ballistic", "discrete"):
        assert (SimulatedBifurcationEngine.get_engine(mode).name
                == theirs.get_engine(mode).name)
    x = torch.tensor([-0.5, 0.0, 2.0])
    for name in ("bSB", "dSB"):
        assert torch.equal(SimulatedBifurcationEngine[name].activation_function(x),
                           theirs[name].activation_function(x))
    with pytest.raises(ValueError) as ours_error:
        SimulatedBifurcationEngine.get_engine("quantum")
    with pytest.raises(ValueError) as theirs_error:
        theirs.get_engine("quantum")
    assert str(ours_error.value) == str(theirs_error.value)


def test_symplectic_integrator_steps_as_the_peers(peer):
    matrix = peer.core.Ising(*problem(n=8, seed=4)).as_simulated_bifurcation_tensor()
    integrators = []
    for cls in (SymplecticIntegrator, peer.optimizer.SymplecticIntegrator):
        torch.manual_seed(2)
        integrator = cls((9, 5), torch.sign, torch.float32, "cpu")
        for step in range(20):
            integrator.step(-0.1 + 0.001 * step, 0.1, 0.05, matrix)
        integrators.append(integrator)
    ours, theirs = integrators
    assert torch.equal(ours.position, theirs.position)
    assert torch.equal(ours.momentum, theirs.momentum)
    assert torch.equal(ours.sample_spins(), theirs.sample_spins())


@pytest.mark.parametrize("threshold", [0, 1.5, 40000])
def test_stop_window_threshold_errors_are_the_peers(peer, threshold):
    matrix = torch.zeros(3, 3)
    with pytest.raises((TypeError, ValueError)) as theirs:
        peer.optimizer.StopWindow(matrix, 2, threshold, torch.float32, "cpu", False)
    with pytest.raises(theirs.type) as ours:
        StopWindow(matrix, 2, threshold, torch.float32, "cpu", False)
    assert str(ours.value) == str(theirs.value)


def test_stop_window_freezes_agents_as_the_peers(peer):
    matrix = peer.core.Ising(*problem(n=5, seed=6)).as_simulated_bifurcation_tensor()
    g = torch.Generator().manual_seed(1)
    samples = [torch.where(torch.rand(6, 4, generator=g) < 0.5, -1.0, 1.0) for _ in range(3)]
    samples = [samples[0], samples[0], samples[1], samples[1], samples[1], samples[2]]
    windows = [cls(matrix, 4, 2, torch.float32, "cpu", False)
               for cls in (StopWindow, peer.optimizer.StopWindow)]
    for spins in samples:
        for window in windows:
            window.update(spins.clone())
        ours, theirs = windows
        assert torch.equal(ours.stability, theirs.stability)
        assert torch.equal(ours.bifurcated, theirs.bifurcated)
        assert torch.equal(ours.final_spins, theirs.final_spins)
        assert ours.must_continue() == theirs.must_continue()
    assert ours.shape == theirs.shape == (6, 4)


def test_optimizer_runs_the_integrator_as_the_solver(peer):
    J, h = problem(n=12, seed=8)
    matrix = Ising(J, h).as_simulated_bifurcation_tensor()
    optimizer = SimulatedBifurcationOptimizer(6, 500, None, SimulatedBifurcationEngine.dSB,
                                              False, False, 10, 5)
    torch.manual_seed(9)
    spins = optimizer.run_integrator(matrix, True)
    torch.manual_seed(9)
    expected = sb.core.Ising(matrix).minimize(agents=6, max_steps=500, mode="discrete",
                                              verbose=False, sampling_period=10,
                                              convergence_threshold=5)
    assert spins.shape == (13, 6) and torch.equal(spins, expected)
    with pytest.raises(ValueError, match="No stopping criterion provided."):
        SimulatedBifurcationOptimizer(2, None, None, SimulatedBifurcationEngine.bSB, False,
                                      False, 10, 5).run_integrator(matrix, False)
