"""Sparse quadratic coefficients: same answers as dense, kept sparse end to end."""

import os
import subprocess
import sys

import pytest
import torch

import sb_native as sb
from sb_native.engine import runner as engine
from tests.helpers import NATIVE_ONLY

BACKENDS = ["torch", pytest.param("native", marks=NATIVE_ONLY)]


def integer_problem(n=30, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = torch.randint(-3, 4, (n, n), generator=g).double() * (torch.rand(n, n, generator=g) < density)
    return Q, torch.randint(-2, 3, (n,), generator=g).double()


@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
@pytest.mark.parametrize("domain", ["spin", "binary"])
@pytest.mark.parametrize("form", ["torch_coo", "torch_csr", "scipy"])
def test_sparse_input_gives_the_dense_result(backend, mode, domain, form):
    Q, linear = integer_problem()
    sparse = {"torch_coo": lambda: Q.to_sparse(), "torch_csr": lambda: Q.to_sparse_csr(),
              "scipy": lambda: pytest.importorskip("scipy.sparse").csr_matrix(Q.numpy())}[form]()
    kwargs = dict(domain=domain, mode=mode, agents=12, max_steps=300,
                  best_only=False, verbose=False, backend=backend, seed=4,
                  sampling_period=20, convergence_threshold=5)
    dense_vectors, dense_values = sb.minimize(Q, linear, dtype=torch.float64, **kwargs)
    sparse_model = sb.build_model(sparse, linear, dtype=torch.float64)
    assert sparse_model.quadratic.layout == torch.sparse_coo
    vectors, values = sparse_model.minimize(**kwargs)
    assert torch.equal(vectors, dense_vectors)
    torch.testing.assert_close(values, dense_values, rtol=1e-12, atol=1e-9)


def test_sparse_ising_reduction_matches_dense():
    Q, linear = integer_problem(12, 0.4, seed=1)
    for domain in ("spin", "binary"):
        dense = sb.build_model(Q, linear, dtype=torch.float64).to_ising(domain)
        sparse = sb.build_model(Q.to_sparse(), linear, dtype=torch.float64).to_ising(domain)
        torch.testing.assert_close(dense.h, sparse.h)
        dense_coupling = dense._coupling().matrix
        sparse_coupling = sparse._coupling().torch_csr().to_dense()
        torch.testing.assert_close(dense_coupling, sparse_coupling)


def test_sparse_rejects_integer_domains():
    Q, _ = integer_problem(5)
    with pytest.raises(ValueError, match="Sparse quadratic coefficients support the spin and binary"):
        sb.minimize(Q.to_sparse(), domain="int2", verbose=False)


@NATIVE_ONLY
def test_auto_backend_stores_sparse_looking_dense_input_as_csr(monkeypatch):
    seen = []
    original = engine._Stepper.__init__

    def spy(self, coupling, *args):
        original(self, coupling, *args)
        seen.append(self.coupling.is_sparse)  # the storage the run uses

    monkeypatch.setattr(engine._Stepper, "__init__", spy)
    Q, _ = integer_problem(200, 0.01)
    dense_full = torch.randn(50, 50)
    for matrix in (Q, dense_full):
        sb.minimize(matrix, domain="spin", max_steps=20, verbose=False, agents=4,
                    early_stopping=False)
    sb.minimize(Q, domain="spin", max_steps=20, verbose=False, agents=4, early_stopping=False,
                backend="torch")
    assert seen == [True, False, False]


MEMORY_SCRIPT = r"""
import resource, torch, sb_native as sb
g = torch.Generator().manual_seed(0)
n = 20000
ends = torch.randint(0, n, (40000, 2), generator=g)
model = sb.models.MaxCut.from_edges(ends[ends[:, 0] != ends[:, 1]], n_nodes=n)
_, cut = model.maximize(agents=16, max_steps=20, early_stopping=False, verbose=False, seed=0,
                        mode="discrete")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, float(cut))
"""


@pytest.mark.skipif(bool(os.environ.get("SBN_SANITIZED")),
                    reason="AddressSanitizer's shadow memory inflates the peak RSS it measures")
@pytest.mark.parametrize("backend", BACKENDS)
def test_20000_variables_never_allocate_n_by_n(backend):
    # A dense 20000 x 20000 float32 matrix alone is 1.6 GB; the sparse run must stay far below.
    env = dict(os.environ)
    if backend == "torch":
        env["SB_NATIVE_DISABLE"] = "1"
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=300)
    peak_kib, cut = out.stdout.split()
    assert int(peak_kib) < 1_000_000, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"
    assert float(cut) > 0
