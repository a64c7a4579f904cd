"""sb_polish (csrc/sb/polish.h): the native descent against its torch reference, bit for bit;
what a descent guarantees (1-flip optimal agents, field = J @ spins, energies never rise);
its argument errors; and polish= on the solvers, against polishing their spins by hand."""

import itertools
import re

import pytest
import torch

import sb_native as sb
from sb_native.engine import Coupling, reference
from sb_native.engine.polish import Polisher
from tests.helpers import NATIVE_ONLY, csr_of, symmetric

DTYPES = [torch.float32, torch.float64]


def random_spins(n, agents, dtype, seed=5):
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(n, agents, generator=g) < 0.5, 1.0, -1.0).to(dtype)


def descend(op, J, spins, max_sweeps):
    """op's descent on copies of spins and field = J @ spins; returns (spins, field)."""
    s = spins.clone()
    f = (J @ s).contiguous()
    op(*csr_of(J), s, f, max_sweeps)
    return s, f


@NATIVE_ONLY
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("n,agents,density", [(1, 3, 1.0), (40, 1, 0.3), (150, 37, 0.05)])
@pytest.mark.parametrize("max_sweeps", [0, 1, 2, 100])
def test_kernel_equals_reference(dtype, integer, n, agents, density, max_sweeps):
    J = symmetric(n, dtype, integer=integer, density=density, seed=n)
    spins = random_spins(n, agents, dtype)
    got = descend(torch.ops.sb_native.sb_polish, J, spins, max_sweeps)
    expected = descend(reference.sb_polish, J, spins, max_sweeps)
    assert torch.equal(got[0], expected[0])
    assert torch.equal(got[1], expected[1])


@pytest.mark.parametrize("backend", ["native", "torch"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_descent_reaches_a_one_flip_optimum(backend, dtype):
    if backend == "native" and not sb.backend_info()["native"]:
        pytest.skip("native extension not built")
    op = torch.ops.sb_native.sb_polish if backend == "native" else reference.sb_polish
    J = symmetric(120, dtype, integer=True, density=0.1, seed=2)
    spins = random_spins(120, 16, dtype)
    s, f = descend(op, J, spins, 100)
    assert torch.equal(f, J @ s)  # integer weights: the incremental field is exact
    assert bool(torch.all(s * f >= 0))  # no single flip lowers the energy
    assert bool(torch.all((s * f).sum(0) >= (spins * (J @ spins)).sum(0)))
    assert not torch.equal(s, spins)


def test_one_sweep_flips_in_variable_order():
    # Two coupled spins that disagree on a ferromagnetic bond: the first one flips, which
    # satisfies the bond, so the second one stays.
    J = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    for op in (reference.sb_polish,) + ((torch.ops.sb_native.sb_polish,)
                                        if sb.backend_info()["native"] else ()):
        s, f = descend(op, J, torch.tensor([[1.0], [-1.0]]), 1)
        assert s.reshape(-1).tolist() == [-1.0, -1.0]
        assert f.reshape(-1).tolist() == [-1.0, -1.0]


def test_polished_spins_on_a_brute_forced_problem_are_local_minima():
    n = 8
    J = symmetric(n, torch.float64, integer=True, seed=4)
    every = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=n)),
                         dtype=torch.float64).t()
    polished, energies = Polisher(Coupling.dense(J), "torch")(every)
    flips = polished.unsqueeze(1) * (1 - 2 * torch.eye(n, dtype=torch.float64)).unsqueeze(2)
    neighbours = torch.einsum("fia,ij,fja->fa", flips, J, flips)
    assert bool(torch.all(neighbours <= energies.unsqueeze(0)))  # no better neighbour
    # The global optimum is among them, untouched.
    best = int(torch.argmax((every * (J @ every)).sum(0)))
    assert torch.equal(polished[:, best], every[:, best])


@NATIVE_ONLY
def test_polish_passes_opcheck():
    J = symmetric(30, torch.float32, integer=True, density=0.2)
    spins = random_spins(30, 5, torch.float32)
    torch.library.opcheck(torch.ops.sb_native.sb_polish.default,
                          (*csr_of(J), spins.clone(), (J @ spins).contiguous(), 3))


@NATIVE_ONLY
@pytest.mark.parametrize("case,error,message", [
    ("overlap", ValueError, "spins and field must not overlap in memory"),
    ("not spins", ValueError, "spins must all be -1 or 1"),
    ("field shape", ValueError, "field must have the shape of spins"),
    ("field dtype", TypeError, "field must have the dtype of spins"),
    ("values dtype", TypeError, "values must have the dtype of spins"),
    ("1-D spins", ValueError, "spins must be 2-D"),
    ("sweeps", ValueError, "max_sweeps must be non-negative"),
    ("column", ValueError, "col_indices[1] = 9 is out of range for 4 variables"),
    ("crow", ValueError, "crow_indices must be 1-D of length 5"),
    ("strided", ValueError, "spins must be contiguous"),
])
def test_errors_name_the_argument(case, error, message):
    J = torch.tensor([[0.0, 1.0, 0.0, 2.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0],
                      [2.0, 0.0, 1.0, 0.0]])
    crow, col, values = csr_of(J)
    spins = random_spins(4, 3, torch.float32)
    field = J @ spins
    sweeps = 5
    if case == "overlap":
        field = spins
    elif case == "not spins":
        spins = spins * 0.5
    elif case == "field shape":
        field = field[:, :2].contiguous()
    elif case == "field dtype":
        field = field.double()
    elif case == "values dtype":
        values = values.double()
    elif case == "1-D spins":
        spins, field = spins[:, 0].contiguous(), field[:, 0].contiguous()
    elif case == "sweeps":
        sweeps = -1
    elif case == "column":
        col = col.clone()
        col[1] = 9
    elif case == "crow":
        crow = crow[:-1]
    elif case == "strided":
        spins = random_spins(3, 4, torch.float32).t()
    with pytest.raises(error, match=re.escape(message)):
        torch.ops.sb_native.sb_polish(crow, col, values, spins, field, sweeps)


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
def test_polish_option_polishes_the_returned_agents(backend, mode):
    """polish=True returns exactly the unpolished run's agents after the descent."""
    Q = symmetric(60, torch.float32, integer=True, density=0.1, seed=9)
    kwargs = dict(domain="spin", agents=12, max_steps=30, mode=mode, seed=3, verbose=False,
                  early_stopping=False, best_only=False, backend=backend)
    raw, _ = sb.minimize(Q, **kwargs)
    polished, values = sb.minimize(Q, **kwargs, polish=True)
    ising = sb.QuadraticPolynomial(Q).to_ising("spin")
    resolved = sb._ops.resolve_backend(backend, torch.device("cpu"))
    expected, _ = Polisher(ising._coupling(), resolved)(raw.t())
    assert torch.equal(polished, expected.t())
    assert bool(torch.all(values <= sb.QuadraticPolynomial(Q)(raw)))


def test_polish_option_with_a_linear_term_and_integers():
    Q = symmetric(12, torch.float64, integer=True, seed=6)
    linear = torch.arange(12, dtype=torch.float64) - 6
    kwargs = dict(domain="int2", agents=8, max_steps=20, seed=1, verbose=False,
                  early_stopping=False, best_only=False, dtype=torch.float64)
    _, raw = sb.minimize(Q, linear, **kwargs)
    _, polished = sb.minimize(Q, linear, **kwargs, polish=True)
    assert bool(torch.all(polished <= raw))


def test_polish_option_in_a_batch_equals_each_problem_alone():
    Qs = torch.stack([symmetric(20, torch.float32, integer=True, density=0.3, seed=s)
                      for s in range(3)])
    kwargs = dict(domain="spin", agents=6, max_steps=25, mode="discrete", verbose=False,
                  early_stopping=False, best_only=False, polish=True)
    vectors, values = sb.minimize(Qs, seed=10, **kwargs)
    for b in range(3):
        alone, value = sb.minimize(Qs[b], seed=10 + b, **kwargs)
        assert torch.equal(vectors[b], alone)
        assert torch.equal(values[b], value)


def test_polish_option_must_be_a_boolean():
    with pytest.raises(TypeError, match="polish should be a boolean"):
        sb.minimize(torch.eye(2), domain="spin", polish="yes", verbose=False)
