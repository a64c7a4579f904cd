"""Batched SB (docs/batched.md): the op sb_run_batched against sb_run problem by problem, and
the batched minimize/maximize against one call per problem with seed + b."""

import contextlib
import warnings

import numpy as np
import pytest
import torch

import sb_native
from sb_native import _memory
from sb_native.core.batch import PolynomialBatch
from sb_native.engine import batched, ops
from sb_native.engine import reference as torch_ref
from tests.helpers import DEVICES, NATIVE_ONLY, batched_problem, free_port, symmetric

BACKENDS = [pytest.param("native", marks=NATIVE_ONLY), "torch"]
# Early stopping that fires within the run, so problems stop at different sampling points.
QUICK = dict(agents=5, max_steps=300, sampling_period=10, convergence_threshold=3,
             verbose=False)


@contextlib.contextmanager
def quiet():
    """No-convergence warnings are expected with these short runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def run_alone(run, J, x, m, q, active, *args):
    """sb_run (or its reference) on each active problem alone; inactive ones untouched."""
    for b in range(J.shape[0]):
        if active[b]:
            xb, mb = x[b].clone(), m[b].clone()
            run(J[b], xb, mb, args[0], args[1], args[2], args[3], float(q[b]), args[4],
                args[5])
            x[b], m[b] = xb, mb


# ── The op ───────────────────────────────────────────────────────────────────


@NATIVE_ONLY
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.05])
@pytest.mark.parametrize("B,n,agents", [(1, 1, 1), (3, 7, 9), (5, 64, 33), (2, 300, 5)])
def test_op_equals_sb_run_problem_by_problem(device, dtype, discrete, heat, B, n, agents):
    J, x, m, active, q = batched_problem(B, n, agents, dtype, True, device)
    args = (3, 40, 0.1, 0.01, heat, discrete)
    bx, bm = x.clone(), m.clone()
    torch.ops.sb_native.sb_run_batched(J, bx, bm, active, 3, 40, 0.1, 0.01, q, heat, discrete)
    run_alone(torch.ops.sb_native.sb_run, J, x, m, q, active, *args)
    assert torch.equal(bx, x) and torch.equal(bm, m)


@NATIVE_ONLY
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [7, 64, 256])
def test_op_on_asymmetric_couplings(dtype, n):
    # dSB's flip corrections read J's columns: from J itself when it is symmetric (as the
    # engine's couplings are), from a transposed copy when it is not, problem by problem; a
    # row read in place of a column would leave the reference (which takes J @ sign(x)).
    J, x, m, active, q = batched_problem(4, n, 9, dtype, True)
    g = torch.Generator().manual_seed(n)
    J[1] += torch.randint(-2, 3, (n, n), generator=g).to(dtype)  # asymmetric
    J[3] = torch.triu(J[3])  # asymmetric, with zeros below the diagonal
    active[1] = True
    for b in (1, 3):
        assert n == 1 or not torch.equal(J[b], J[b].t())
    bx, bm, rx, rm = x.clone(), m.clone(), x.clone(), m.clone()
    torch.ops.sb_native.sb_run_batched(J, bx, bm, active, 3, 40, 0.1, 0.01, q, 0.0, True)
    torch_ref.sb_run_batched(J, rx, rm, active, 3, 40, 0.1, 0.01, q, 0.0, True)
    run_alone(torch.ops.sb_native.sb_run, J, x, m, q, active, 3, 40, 0.1, 0.01, 0.0, True)
    assert torch.equal(bx, x) and torch.equal(bm, m)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(bx, rx, rtol=0, atol=tol)
    torch.testing.assert_close(bm, rm, rtol=0, atol=tol)


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.05])
def test_reference_equals_sb_run_reference_problem_by_problem(discrete, heat):
    J, x, m, _, q = batched_problem(4, 9, 5, torch.float32, True)
    active = torch.tensor([True, False, True, True])
    bx, bm = x.clone(), m.clone()
    torch_ref.sb_run_batched(J, bx, bm, active, 0, 30, 0.1, 0.01, q, heat, discrete)
    run_alone(torch_ref.sb_run, J, x, m, q, active, 0, 30, 0.1, 0.01, heat, discrete)
    assert torch.equal(bx, x) and torch.equal(bm, m)


@NATIVE_ONLY
@pytest.mark.parametrize("discrete", [False, True])
def test_op_within_rounding_of_its_reference(discrete):
    J, x, m, _, q = batched_problem(3, 20, 7, torch.float64, True)
    active = torch.ones(3, dtype=torch.bool)
    rx, rm = x.clone(), m.clone()
    torch.ops.sb_native.sb_run_batched(J, x, m, active, 0, 30, 0.1, 0.01, q, 0.0, discrete)
    torch_ref.sb_run_batched(J, rx, rm, active, 0, 30, 0.1, 0.01, q, 0.0, discrete)
    torch.testing.assert_close(x, rx, rtol=0, atol=1e-10)
    torch.testing.assert_close(m, rm, rtol=0, atol=1e-10)


@NATIVE_ONLY
@pytest.mark.parametrize("discrete", [False, True])
def test_opcheck(discrete):
    J, x, m, _, q = batched_problem(3, 6, 4, torch.float32, True)
    active = torch.tensor([True, False, True])
    torch.library.opcheck(torch.ops.sb_native.sb_run_batched.default,
                          (J, x, m, active, 0, 5, 0.1, 0.01, q, 0.0, discrete))


@NATIVE_ONLY
@pytest.mark.parametrize("mutate,error,message", [
    (lambda a: a.update(position=a["position"][0]), ValueError, "position must be 3-D"),
    (lambda a: a.update(J=a["J"][:2]), ValueError, "J must have shape"),
    (lambda a: a.update(active=a["active"].int()), TypeError, "active must be bool"),
    (lambda a: a.update(active=a["active"][:2]), ValueError, "active must have shape"),
    (lambda a: a.update(quadratic_coef=a["quadratic_coef"].float()), TypeError,
     "quadratic_coef must be float64"),
    (lambda a: a.update(momentum=a["position"]), ValueError, "must not overlap"),
    (lambda a: a.update(momentum=a["momentum"].double()), TypeError, "momentum must have the dtype"),
    (lambda a: a.update(position=a["position"].transpose(1, 2).contiguous().transpose(1, 2)),
     ValueError, "position must be contiguous"),
])
def test_op_rejects_bad_arguments(mutate, error, message):
    J, x, m, _, q = batched_problem(3, 6, 4, torch.float32, True)
    arguments = dict(J=J, position=x, momentum=m, active=torch.ones(3, dtype=torch.bool),
                     quadratic_coef=q)
    mutate(arguments)
    with pytest.raises(error, match=message):
        torch.ops.sb_native.sb_run_batched(
            arguments["J"], arguments["position"], arguments["momentum"], arguments["active"],
            0, 1, 0.1, 0.01, arguments["quadratic_coef"], 0.0, False)


# ── minimize / maximize on a batch ───────────────────────────────────────────


def problems(B, seed, sizes=None, integer=True):
    """B random QUBO-style problems (quadratic, linear, constant), sizes 1..64."""
    g = torch.Generator().manual_seed(seed)
    sizes = sizes or [1 + int(torch.randint(64, (1,), generator=g)) for _ in range(B)]
    out = []
    for n in sizes:
        Q = torch.randint(-4, 5, (n, n), generator=g).float()
        if not integer:
            Q = Q + torch.rand(n, n, generator=g)
        out.append((Q, torch.randint(-3, 4, (n,), generator=g).float(),
                    torch.tensor(float(torch.randint(-3, 4, (1,), generator=g)))))
    return out


def assert_each_equals_its_own_run(data, results, sense, **options):
    vectors, values = results
    for b, problem in enumerate(data):
        own_vectors, own_values = getattr(sb_native, sense)(*problem, seed=options["seed"] + b,
                                                             **{k: v for k, v in options.items()
                                                                if k != "seed"})
        n = own_vectors.shape[-1]
        assert torch.equal(vectors[b][..., :n], own_vectors), f"problem {b}"
        assert torch.equal(values[b], own_values), f"problem {b}"
        assert not torch.any(vectors[b][..., n:]), f"problem {b}: padding"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
@pytest.mark.parametrize("domain", ["spin", "binary", "int2"])
@pytest.mark.parametrize("B", [1, 2, 37])
def test_each_problem_equals_its_own_call(backend, mode, domain, B):
    data = problems(B, seed=B)
    options = dict(QUICK, domain=domain, mode=mode, backend=backend, best_only=False, seed=7)
    if B == 37 and backend == "torch":
        options["max_steps"] = 60  # 37 one-problem runs of torch operations
    with pytest.warns(sb_native.ConvergenceWarning) if B == 37 else quiet():
        results = sb_native.minimize(data, **options)
    assert results[0].shape == (B, QUICK["agents"], max(q.shape[0] for q, _, _ in data))
    assert_each_equals_its_own_run(data, results, "minimize", **options)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
def test_float64_heated_maximize_non_integer_weights(backend, mode):
    # One size, every problem with a field: no padding, so exact on the torch backend too.
    data = problems(5, seed=3, sizes=[13] * 5, integer=False)
    data = [tuple(t.double() for t in p) for p in data]
    options = dict(domain="spin", mode=mode, backend=backend, heated=True, seed=123,
                   dtype=torch.float64, **QUICK)
    with quiet():
        results = sb_native.maximize(data, **options)
        assert results[0].shape == (5, max(q.shape[0] for q, _, _ in data))
        assert_each_equals_its_own_run(data, results, "maximize", **options)


@pytest.mark.parametrize("backend", BACKENDS)
def test_problems_stop_at_different_sampling_points(backend, monkeypatch):
    data = problems(12, seed=5)
    calls = []
    original = ops.sb_run_batched

    def record(J, position, momentum, active, *args, **kwargs):
        calls.append(active.clone())
        original(J, position, momentum, active, *args, **kwargs)

    monkeypatch.setattr(ops, "sb_run_batched", record)
    options = dict(QUICK, domain="binary", mode="discrete", backend=backend, seed=0,
                   max_steps=1000)
    with quiet():
        results = sb_native.minimize(data, **options)
    counts = [int(active.sum()) for active in calls]
    assert counts[0] == 12 and any(0 < c < 12 for c in counts), counts
    monkeypatch.setattr(ops, "sb_run_batched", original)
    with quiet():
        assert_each_equals_its_own_run(data, results, "minimize", **options)


def test_batch_forms_agree():
    data = problems(4, seed=9, sizes=[6, 6, 6, 6])
    Q = torch.stack([q for q, _, _ in data])
    linear = torch.stack([lin for _, lin, _ in data])
    constant = torch.stack([c for _, _, c in data])
    options = dict(domain="spin", seed=1, **QUICK)
    with quiet():
        expected = sb_native.minimize(data, **options)
        forms = [
            sb_native.minimize(Q, linear, constant, **options),
            sb_native.minimize(constant, Q.numpy(), linear, **options),
            sb_native.minimize([sb_native.build_model(*p) for p in data], **options),
            sb_native.build_model(Q, linear, constant).minimize(**options),
        ]
    for vectors, values in forms:
        assert torch.equal(vectors, expected[0]) and torch.equal(values, expected[1])


def test_sparse_problems_and_ising_form():
    dense = [symmetric(n, torch.float32, seed=n, integer=True, density=0.3) for n in (5, 30)]
    sparse = [J.to_sparse() for J in dense]
    options = dict(domain="spin", seed=2, mode="discrete", **QUICK)
    with quiet():
        from_sparse = sb_native.minimize(sparse, **options)
        from_dense = sb_native.minimize(dense, **options)
    assert torch.equal(from_sparse[0], from_dense[0])


def test_batch_model_evaluates_each_problem():
    data = problems(3, seed=2, sizes=[2, 4, 3])
    model = sb_native.build_model(data)
    assert isinstance(model, PolynomialBatch) and len(model) == 3 and model.dimension == 4
    x = torch.ones(3, 4)
    expected = torch.stack([sb_native.build_model(*p)(torch.ones(p[0].shape[0])) for p in data])
    assert torch.equal(model(x), expected)


def test_seed_none_draws_like_a_loop_from_the_global_rng():
    data = problems(3, seed=8)
    options = dict(domain="spin", agents=4, max_steps=30, verbose=False, best_only=False)
    torch.manual_seed(42)
    vectors, _ = sb_native.minimize(data, **options)
    torch.manual_seed(42)
    for b, p in enumerate(data):
        own, _ = sb_native.minimize(*p, **options)
        assert torch.equal(vectors[b][:, :own.shape[1]], own)


# ── Bad batches ──────────────────────────────────────────────────────────────


def test_non_finite_entry_names_the_problem():
    Q = torch.randn(5, 4, 4)
    Q[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="problem 3: The quadratic coefficients must be finite"):
        sb_native.minimize(Q, domain="spin", **QUICK)


@pytest.mark.parametrize("data,error,message", [
    ((torch.randn(3, 4, 4), torch.randn(2, 4)), ValueError,
     "linear coefficients have 2 problems but the quadratic coefficients have 3"),
    ((torch.randn(3, 4, 4), torch.randn(4)), ValueError,
     "constant coefficients have 4 problems"),
    ((torch.randn(3, 4, 4), torch.randn(3, 5)), ValueError, "problem 0: Inconsistant shape"),
    ((torch.randn(3, 4, 5),), ValueError, "problem 0: Provided quadratic coefficients tensor"),
    ((torch.randn(3, 4, 4), torch.randn(2, 3, 4, 4)), ValueError, "4 dimensions"),
    (([],), ValueError, "empty batch"),
    (([torch.randn(2, 2), "Q"],), ValueError, "problem 1: Unsupported coefficient"),
    (([torch.randn(2, 2), torch.randn(2, 2, dtype=torch.float64).to(torch.bool)],), TypeError,
     "problem 1: Coefficients must be real numbers"),
])
def test_bad_batches(data, error, message):
    with pytest.raises(error, match=message):
        sb_native.minimize(*data, domain="spin", **QUICK)


def test_mixed_dtypes_name_the_problem():
    first = sb_native.build_model(torch.randn(2, 2))
    second = sb_native.build_model(torch.randn(2, 2), dtype=torch.float64)
    with pytest.raises(ValueError, match="problem 1: every problem of a batch must have"):
        sb_native.minimize([first, second], domain="spin", **QUICK)


def test_domain_errors_name_the_problem():
    with pytest.raises(ValueError, match="problem 0:"):
        sb_native.minimize([torch.randn(3, 3)], domain=["spin", "binary"], **QUICK)


def test_process_group_is_refused_with_a_batch():
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1, timeout=__import__("datetime").timedelta(seconds=30))
    try:
        with pytest.raises(ValueError, match="process_group: a batch of problems runs in one"):
            sb_native.minimize(torch.randn(2, 3, 3), domain="spin", process_group=True, **QUICK)
    finally:
        dist.destroy_process_group()


def test_seed_overflow_is_refused():
    with pytest.raises(ValueError, match="seed: problem b of a batch uses seed"):
        sb_native.minimize(torch.randn(3, 2, 2), domain="spin", seed=2 ** 64 - 2, **QUICK)


def test_no_stopping_criterion():
    with pytest.raises(ValueError, match="No stopping criterion provided."):
        sb_native.minimize(torch.randn(2, 2, 2), domain="spin", max_steps=None,
                           early_stopping=False, verbose=False)


def test_batch_convergence_warning_lists_the_problems():
    warning = batched.BatchConvergenceWarning(list(range(12)))
    assert "12 problem(s)" in str(warning) and "0, 1, 2" in str(warning) and "..." in str(warning)
    assert isinstance(warning, sb_native.ConvergenceWarning)


def test_numpy_batch():
    Q = np.random.default_rng(0).normal(size=(2, 3, 3))
    vectors, values = sb_native.minimize(Q, domain="spin", seed=0, **QUICK)
    assert vectors.shape == (2, 3) and values.shape == (2,)


def test_batch_too_large_for_memory_fails_before_allocating(monkeypatch):
    # batch_couplings' own check, on couplings made before memory runs short (a solve checks
    # the reduction first: tests/sb/test_memory.py).
    couplings = [sb_native.build_model(q).to_ising("spin")._coupling()
                 for q in torch.randn(4, 100, 100)]
    monkeypatch.delenv(_memory.LIMIT_ENV, raising=False)
    monkeypatch.setattr(_memory, "_measured", lambda device: 2 ** 20 // 10)
    with pytest.raises(MemoryError, match=r"A batch of 4 problems of up to 101 spins needs "
                                          r"0\.2 MiB .* than the 0\.1 MiB available on cpu"):
        batched.batch_couplings(couplings, "native", False, 0.1)


def test_integer_dsb_keeps_the_couplings_for_energies():
    data = problems(3, seed=1)
    couplings = [sb_native.build_model(*p).to_ising("spin")._coupling() for p in data]
    integer = batched.batch_couplings(couplings, "native", True, 0.1)
    plain = batched.batch_couplings(couplings, "native", False, 0.1)
    assert integer.field_matrix is not integer.run_matrix and plain.field_matrix is plain.run_matrix
    for b, c in enumerate(couplings):
        assert torch.equal(integer.field_matrix[b, :c.n, :c.n], c.matrix)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
@pytest.mark.parametrize("domain,sense", [("spin", "minimize"), ("binary", "maximize"),
                                          ("spin", "maximize")])
def test_one_size_batches_take_the_batched_ising_form(backend, mode, domain, sense,
                                                      monkeypatch):
    """Dense problems of one size with a one-bit domain get their Ising forms for the whole
    batch (core/batch_ising.py), without to_ising per problem, and still equal their own
    calls; some problems have no field (no extra spin, so they are padded). Non-integer
    weights on the native backend; on the torch backend a padded problem's products run at
    the padded size, exact only for integer weights (docs/batched.md)."""
    data = problems(9, seed=6, sizes=[20] * 9, integer=backend == "torch")
    data = [(q, lin * (b % 3 != 0), c) for b, (q, lin, c) in enumerate(data)]
    if domain == "spin":  # a zero diagonal and no linear term: no field at all
        data[0] = (data[0][0] - torch.diag(torch.diag(data[0][0])), data[0][1], data[0][2])
    options = dict(QUICK, domain=domain, mode=mode, backend=backend, seed=3, best_only=False)
    original = sb_native.QuadraticPolynomial.to_ising

    def refuse(*args, **kwargs):
        raise AssertionError("to_ising was called per problem")

    monkeypatch.setattr(sb_native.QuadraticPolynomial, "to_ising", refuse)
    with quiet():
        results = getattr(sb_native, sense)(data, **options)
    monkeypatch.setattr(sb_native.QuadraticPolynomial, "to_ising", original)
    with quiet():
        assert_each_equals_its_own_run(data, results, sense, **options)


def test_batch_tensors_are_checked_once_and_give_the_same_polynomials():
    data = problems(4, seed=12, sizes=[5] * 4)
    Q = torch.stack([q for q, _, _ in data]).double()
    linear = torch.stack([lin for _, lin, _ in data]).int()
    batch = sb_native.build_model(linear, Q)
    for b, polynomial in enumerate(batch):
        alone = sb_native.build_model(Q[b], linear[b])
        for name in ("quadratic", "linear", "bias"):
            got, expected = getattr(polynomial, name), getattr(alone, name)
            assert torch.equal(got, expected) and got.dtype == expected.dtype == torch.float32
    Q[2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="problem 2: The quadratic coefficients must be finite"):
        sb_native.build_model(Q, linear)
