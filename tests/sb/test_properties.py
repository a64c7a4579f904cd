"""Randomised property tests (hypothesis): native engine against the pure-torch engine over
sizes 1..64, agents 1..17, domains, modes, heating and both dtypes."""

import warnings

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sb_native as sb
from sb_native.engine import reference as torch_ref
from tests.helpers import NATIVE_ONLY

pytestmark = NATIVE_ONLY
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw):
    n = draw(st.integers(1, 64))
    agents = draw(st.integers(1, 17))
    seed = draw(st.integers(0, 2**31 - 1))
    integer = draw(st.booleans())
    g = torch.Generator().manual_seed(seed)
    J = torch.randint(-3, 4, (n, n), generator=g).double() if integer else torch.randn(n, n, generator=g, dtype=torch.float64)
    J = torch.triu(J, 1)
    return J + J.t(), agents, seed, integer


@SETTINGS
@given(problem=problems(), discrete=st.booleans(), heated=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float64]), sparse=st.booleans(),
       start=st.integers(0, 1500), steps=st.integers(1, 60))
def test_native_run_matches_reference(problem, discrete, heated, dtype, sparse, start, steps):
    J, agents, seed, integer = problem
    J = J.to(dtype)
    n = J.shape[0]
    g = torch.Generator().manual_seed(seed + 1)
    x = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
    m = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
    rx, rm = x.clone(), m.clone()
    args = (start, steps, 0.1, 0.01, 0.05, 0.006 if heated else 0.0, discrete)
    if sparse:
        csr = J.to_sparse_csr()
        torch.ops.sb_native.sb_run_csr(csr.crow_indices().clone(), csr.col_indices().clone(),
                                       csr.values().clone(), x, m, *args)
    else:
        torch.ops.sb_native.sb_run(J, x, m, *args)
    torch_ref.sb_run(J, rx, rm, *args)
    tol = 1e-9 if dtype == torch.float64 else 2e-3
    torch.testing.assert_close(x, rx, rtol=tol, atol=tol)
    torch.testing.assert_close(m, rm, rtol=tol, atol=tol)
    if discrete and integer and dtype == torch.float64:
        assert torch.equal(torch_ref.sample_spins(x), torch_ref.sample_spins(rx))


@SETTINGS
@given(problem=problems(), mode=st.sampled_from(["ballistic", "discrete"]),
       heated=st.booleans(), domain=st.sampled_from(["spin", "binary", "int2"]),
       early_stopping=st.booleans())
def test_native_solver_matches_torch_solver_float64(problem, mode, heated, domain,
                                                    early_stopping):
    J, agents, seed, _ = problem
    g = torch.Generator().manual_seed(seed + 2)
    linear = torch.randint(-2, 3, (J.shape[0],), generator=g).double()
    kwargs = dict(domain=domain, dtype=torch.float64, agents=agents, max_steps=120,
                  mode=mode, heated=heated, early_stopping=early_stopping, sampling_period=10,
                  convergence_threshold=3, best_only=False, verbose=False, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        native = sb.minimize(J, linear, backend="native", **kwargs)
        reference = sb.minimize(J, linear, backend="torch", **kwargs)
    assert native[0].shape == reference[0].shape == (agents, J.shape[0])
    # Same start and dynamics; float64 rounding differences stay far below any sign flip.
    assert torch.equal(native[0], reference[0])
    torch.testing.assert_close(native[1], reference[1], rtol=1e-9, atol=1e-9)
