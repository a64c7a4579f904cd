"""pytest-benchmark suite: the same SB run on the native backend, the pure-torch path and the
peer package, grouped per case:

    pytest bench/sb/test_bench_sb.py --benchmark-group-by=param:case
"""

import warnings

import pytest
from cases import dense_case, sparse_case

CASES = {"dense100-bSB": (lambda: dense_case(100), "ballistic", 500),
         "dense100-dSB": (lambda: dense_case(100), "discrete", 500),
         "dense500-dSB": (lambda: dense_case(500), "discrete", 300),
         "G22-dSB": (lambda: sparse_case("G22"), "discrete", 200)}


@pytest.mark.parametrize("solver", ["native", "torch", "peer"])
@pytest.mark.parametrize("case", list(CASES))
def test_sb_run(benchmark, case, solver):
    make, mode, steps = CASES[case]
    model = make().model
    kwargs = dict(agents=128, max_steps=steps, early_stopping=False, verbose=False, mode=mode)
    warnings.simplefilter("ignore")
    if solver == "peer":
        peer = pytest.importorskip("simulated_bifurcation")
        quadratic = model.quadratic.to_dense() if model.quadratic.is_sparse else model.quadratic
        benchmark.pedantic(lambda: peer.maximize(quadratic, model.bias, domain="spin", **kwargs),
                           rounds=3, iterations=1)
    else:
        benchmark.pedantic(lambda: model.maximize(backend=solver, seed=0, **kwargs),
                           rounds=3, iterations=1)
