"""Native ops against their pure-torch reference (sb_native.engine.reference), opcheck,
and the kernels' own argument checks."""

import pytest
import torch

from sb_native.engine import reference as torch_ref
from tests.helpers import NATIVE_ONLY, csr_of, state, symmetric

pytestmark = NATIVE_ONLY

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
def test_sb_step_matches_reference(device, dtype, discrete, heat):
    J = symmetric(37, dtype, device)
    x, m = state(37, 13, dtype, device)
    rx, rm = x.clone(), m.clone()
    torch.ops.sb_native.sb_step(J, x, m, -0.07, 0.1, 0.013, heat, discrete)
    torch_ref.sb_step(J, rx, rm, -0.07, 0.1, 0.013, heat, discrete)
    torch.testing.assert_close(x, rx, **TOL[dtype])
    torch.testing.assert_close(m, rm, **TOL[dtype])


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
def test_sb_run_200_steps_float64(device, discrete, heat):
    J = symmetric(50, torch.float64, device, integer=discrete)
    x, m = state(50, 17, torch.float64, device)
    rx, rm = x.clone(), m.clone()
    args = (3, 200, 0.1, 0.01, 0.02, heat, discrete)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch_ref.sb_run(J, rx, rm, *args)
    torch.testing.assert_close(x, rx, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m, rm, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n,agents", [(1, 1), (7, 65), (256, 70), (257, 33)])
@pytest.mark.parametrize("heat", [0.0, 0.006])
def test_sb_run_ballistic_block_path_float64(device, n, agents, heat):
    # bSB with n <= 256 runs agent block by agent block on the CPU (sb_small_dense.h): blocks
    # of a few vectors of agents with a padded last block; 257 takes the GEMM path.
    J = symmetric(n, torch.float64, device, seed=n)
    x, m = state(n, agents, torch.float64, device)
    rx, rm = x.clone(), m.clone()
    args = (0, 100, 0.1, 1 / 10, 0.7 / max(n, 2) ** 0.5, heat, False)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch_ref.sb_run(J, rx, rm, *args)
    torch.testing.assert_close(x, rx, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m, rm, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("agents", [1, 4, 8, 16, 24, 32, 40, 96, 100])
def test_sb_run_small_dense_agents_independent_of_block_width(device, dtype, discrete, agents):
    # The CPU small dense kernel takes half-width agent blocks where they pad less (32 float32
    # agents on AVX-512); each lane sums its product in the same order in either width, so an
    # agent's trajectory is the same bit for bit as in a run of 128 agents (wide blocks). dSB
    # on integer weights: its field is exact whether corrected or recomputed.
    J = symmetric(45, dtype, device, integer=discrete, seed=agents)
    x, m = state(45, 128, dtype, device)
    nx, nm = x[:, :agents].clone(), m[:, :agents].clone()
    args = (0, 150, 0.1, 0.01, 0.02, 0.0, discrete)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch.ops.sb_native.sb_run(J, nx, nm, *args)
    assert torch.equal(x[:, :agents], nx) and torch.equal(m[:, :agents], nm)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,agents", [(64, 32), (64, 100), (256, 20), (256, 64), (256, 128)])
def test_sb_run_small_dense_discrete_field_corrections_exact(device, dtype, n, agents,
                                                             monkeypatch):
    # The small dense dSB kernel corrects its field a whole row of lanes at a time where the
    # field stays in L1 and lane by lane above (n = 256 with wide blocks), or recomputes it on
    # steps where many signs flip. On integer weights every way is exact: the default run, one
    # that always recomputes (SB_NATIVE_FLIP_CROSSOVER=0) and one that always corrects (1)
    # end in the same states bit for bit, over steps with many flips (the start) and few;
    # and they agree with the reference.
    J = symmetric(n, dtype, device, integer=True, seed=n + agents)
    start = state(n, agents, dtype, device)
    args = (0, 300, 0.1, 0.01, 0.5 / n ** 0.5, 0.0, True)
    runs = []
    for fraction in (None, "0", "1"):
        if fraction is not None:
            monkeypatch.setenv("SB_NATIVE_FLIP_CROSSOVER", fraction)
        x, m = (t.clone() for t in start)
        torch.ops.sb_native.sb_run(J, x, m, *args)
        runs.append((x, m))
    for x, m in runs[1:]:
        assert torch.equal(x, runs[0][0]) and torch.equal(m, runs[0][1])
    rx, rm = (t.clone() for t in start)
    torch_ref.sb_run(J, rx, rm, *args)
    torch.testing.assert_close(runs[0][0], rx, **TOL[dtype])


@pytest.mark.parametrize("discrete", [False, True])
def test_sb_run_float32(device, discrete):
    J = symmetric(40, torch.float32, device, integer=True)
    x, m = state(40, 9, torch.float32, device)
    rx, rm = x.clone(), m.clone()
    args = (0, 60, 0.1, 0.01, 0.02, 0.0, discrete)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch_ref.sb_run(J, rx, rm, *args)
    torch.testing.assert_close(x, rx, rtol=1e-3, atol=1e-3)
    assert torch.equal(torch_ref.sample_spins(x), torch_ref.sample_spins(rx))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("heat", [0.0, 0.006])
# CPU dSB: agents in groups of 16; CPU CSR products: blocks of 512 bytes of agents (128
# float32 or 64 float64) and a tail.
@pytest.mark.parametrize("agents", [11, 37, 150])
def test_sb_run_csr_matches_dense(device, dtype, discrete, heat, agents):
    J = symmetric(64, dtype, device, integer=True, density=0.1)
    x, m = state(64, agents, dtype, device)
    sx, sm = x.clone(), m.clone()
    args = (0, 120, 0.1, 0.01, 0.015, heat, discrete)
    torch.ops.sb_native.sb_run(J, x, m, *args)
    torch.ops.sb_native.sb_run_csr(*csr_of(J), sx, sm, *args)
    torch.testing.assert_close(sx, x, **TOL[dtype])
    torch.testing.assert_close(sm, m, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("discrete", [False, True])
def test_sb_run_csr_agents_independent_of_blocking(device, dtype, discrete):
    # Each agent's product sums its non-zeros in CSR order whatever block of agents it
    # falls in, so an agent's trajectory is the same bit for bit in a wide or a narrow run.
    J = symmetric(64, dtype, device, density=0.1)
    x, m = state(64, 150, dtype, device)
    nx, nm = x[:, 130:].clone(), m[:, 130:].clone()
    args = (0, 60, 0.1, 0.01, 0.015, 0.0, discrete)
    torch.ops.sb_native.sb_run_csr(*csr_of(J), x, m, *args)
    torch.ops.sb_native.sb_run_csr(*csr_of(J), nx, nm, *args)
    assert torch.equal(x[:, 130:], nx) and torch.equal(m[:, 130:], nm)


def test_sb_run_csr_handles_empty_rows(device):
    J = torch.zeros(6, 6, dtype=torch.float64, device=device)
    J[1, 4] = J[4, 1] = 2.0
    x, m = state(6, 3, torch.float64, device)
    rx, rm = x.clone(), m.clone()
    torch.ops.sb_native.sb_run_csr(*csr_of(J), x, m, 0, 30, 0.1, 0.01, 0.05, 0.0, False)
    torch_ref.sb_run(J, rx, rm, 0, 30, 0.1, 0.01, 0.05, 0.0, False)
    torch.testing.assert_close(x, rx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sb_sample_matches_reference(device, dtype):
    J = symmetric(20, dtype, device, integer=True)
    agents, threshold = 12, 3
    window = dict(
        energies=torch.full((agents,), float("inf"), dtype=dtype, device=device),
        stability=torch.zeros(agents, dtype=torch.int16, device=device),
        bifurcated=torch.zeros(agents, dtype=torch.bool, device=device),
        final_spins=torch.zeros(20, agents, dtype=dtype, device=device),
    )
    reference = {k: v.clone() for k, v in window.items()}
    x, _ = state(20, agents, dtype, device)
    g = torch.Generator().manual_seed(3)
    for _ in range(8):
        # Change only some agents between samplings so streaks both grow and reset.
        flip = (torch.rand(agents, generator=g) < 0.3).to(device)
        x[:, flip] = (2 * torch.rand(20, int(flip.sum()), generator=g, dtype=dtype) - 1).to(device)
        field = J @ torch_ref.sample_spins(x)
        torch.ops.sb_native.sb_sample(x, field, *window.values(), threshold)
        torch_ref.sb_sample(x, field, *reference.values(), threshold)
        for key in window:
            assert torch.equal(window[key], reference[key]), key
    assert bool(window["bifurcated"].any()), "the sequence must exercise freezing"


@pytest.mark.parametrize("discrete", [False, True])
def test_opcheck(discrete):
    J = symmetric(8, torch.float64, "cpu")
    x, m = state(8, 4, torch.float64, "cpu")
    torch.library.opcheck(torch.ops.sb_native.sb_step.default,
                          (J, x.clone(), m.clone(), -0.1, 0.1, 0.01, 0.006, discrete))
    torch.library.opcheck(torch.ops.sb_native.sb_run.default,
                          (J, x.clone(), m.clone(), 0, 5, 0.1, 0.01, 0.01, 0.0, discrete))
    torch.library.opcheck(torch.ops.sb_native.sb_run_csr.default,
                          (*csr_of(J), x.clone(), m.clone(), 0, 5, 0.1, 0.01, 0.01, 0.0, discrete))
    window = (torch.full((4,), float("inf"), dtype=torch.float64),
              torch.zeros(4, dtype=torch.int16), torch.zeros(4, dtype=torch.bool),
              torch.zeros(8, 4, dtype=torch.float64))
    torch.library.opcheck(torch.ops.sb_native.sb_sample.default, (x, J @ x, *window, 2))


def test_empty_state_is_a_no_op():
    J = torch.zeros(0, 0)
    x, m = torch.zeros(0, 5), torch.zeros(0, 5)
    torch.ops.sb_native.sb_run(J, x, m, 0, 10, 0.1, 0.01, 0.1, 0.0, False)
    assert x.shape == (0, 5)


@pytest.mark.parametrize("mutate,error,message", [
    (lambda J, x, m: (J[:3], x, m), ValueError, "J must be a square matrix"),
    (lambda J, x, m: (J, x, m[:, :2]), ValueError, "momentum must have the shape of position"),
    (lambda J, x, m: (J, x, m.double()), TypeError, "momentum must have the dtype of position"),
    (lambda J, x, m: (J.double(), x, m), TypeError, "J must have the dtype of position"),
    (lambda J, x, m: (J, x.int(), m.int()), TypeError, "position must be float32 or float64"),
    (lambda J, x, m: (J, x.t().contiguous(), m.t().contiguous()), ValueError,
     "J has 6 rows but position has 4 variables"),
    (lambda J, x, m: (J, x[0], m[0]), ValueError, "position must be 2-D"),
    (lambda J, x, m: (J, x[:, ::2], m[:, ::2]), ValueError, "position must be contiguous"),
])
def test_native_rejects_bad_arguments(mutate, error, message):
    J = symmetric(6, torch.float32, "cpu")
    x, m = state(6, 4, torch.float32, "cpu")
    with pytest.raises(error, match=message):
        torch.ops.sb_native.sb_run(*mutate(J, x, m), 0, 3, 0.1, 0.01, 0.1, 0.0, False)


def test_csr_rejects_out_of_range_columns():
    J = symmetric(5, torch.float32, "cpu")
    crow, col, values = csr_of(J)
    col = col.clone()
    col[0] = 99
    x, m = state(5, 2, torch.float32, "cpu")
    with pytest.raises(ValueError, match="out of range"):
        torch.ops.sb_native.sb_run_csr(crow, col, values, x, m, 0, 1, 0.1, 0.01, 0.1, 0.0, False)
    with pytest.raises(ValueError, match="crow_indices must be 1-D of length 6"):
        torch.ops.sb_native.sb_run_csr(crow[:-1], col, values, x, m, 0, 1, 0.1, 0.01, 0.1, 0.0, False)


def test_negative_steps_rejected():
    J = symmetric(4, torch.float32, "cpu")
    x, m = state(4, 2, torch.float32, "cpu")
    with pytest.raises(ValueError, match="num_steps must be non-negative"):
        torch.ops.sb_native.sb_run(J, x, m, 0, -1, 0.1, 0.01, 0.1, 0.0, False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("n,agents", [(48, 9), (48, 70), (300, 9)])
def test_sb_run_int8_equals_float_coupling(device, dtype, heat, n, agents):
    # J = 0.5 * K: a power-of-two scale keeps (q * scale) * F bitwise equal to q * (J @ s).
    # n <= 256 runs the CPU's agent-block kernel (float field), 300 the int32 field.
    K = symmetric(n, torch.float64, "cpu", integer=True).to(torch.int8)
    J = (0.5 * K.to(dtype)).to(device)
    x, m = state(n, agents, dtype, device)
    ix, im = x.clone(), m.clone()
    fx, fm = x.clone(), m.clone()
    args = (0, 150, 0.1, 0.01, 0.02, heat)
    torch.ops.sb_native.sb_run_int8(K.to(device), 0.5, ix, im, *args)
    torch.ops.sb_native.sb_run(J, x, m, *args, True)
    torch_ref.sb_run(J, fx, fm, *args, True)
    assert torch.equal(ix, x) and torch.equal(im, m), "int8 field must be exact"
    torch.testing.assert_close(ix, fx, **TOL[dtype])
    assert torch.equal(torch_ref.sample_spins(ix), torch_ref.sample_spins(fx))


# ── dSB agent by agent (csrc/sb/cpu/sb_discrete.h) ─────────────────────────────
# Above 256 variables (dense) and for every CSR coupling, the CPU runs dSB agent by agent,
# in groups of 16 agents split between threads, each agent correcting its own local field.

def integer_coupling(n, seed, symmetric_=True, density=1.0):
    """Small integer weights (exact fields); with symmetric_=False, J != J^T."""
    if symmetric_:
        return symmetric(n, torch.float64, "cpu", seed=seed, integer=True, density=density)
    g = torch.Generator().manual_seed(seed)
    J = torch.randint(-3, 4, (n, n), generator=g).double()
    return J * (torch.rand(n, n, generator=g) < density)


def run_dsb(kind, J, x, m, args):
    """One dSB call through the dense (sb_run), int8 (sb_run_int8) or CSR (sb_run_csr) op."""
    if kind == "dense":
        torch.ops.sb_native.sb_run(J.to(x.dtype), x, m, *args, True)
    elif kind == "int8":
        torch.ops.sb_native.sb_run_int8(J.to(torch.int8), 1.0, x, m, *args)
    else:
        torch.ops.sb_native.sb_run_csr(*csr_of(J.to(x.dtype)), x, m, *args, True)


DSB_KINDS = ["dense", "int8", "csr"]


@pytest.mark.parametrize("kind", DSB_KINDS)
@pytest.mark.parametrize("heat", [0.0, 0.006])
@pytest.mark.parametrize("symmetric_", [True, False])
def test_dsb_agent_path_matches_reference(kind, heat, symmetric_):
    # 37 agents: two full groups of 16 and a partial one, split over the threads.
    J = integer_coupling(300, seed=5, symmetric_=symmetric_,
                         density=0.05 if kind == "csr" else 1.0)
    x, m = state(300, 37, torch.float64, "cpu")
    rx, rm = x.clone(), m.clone()
    args = (0, 120, 0.1, 0.01, 0.003, heat)
    run_dsb(kind, J, x, m, args)
    torch_ref.sb_run(J, rx, rm, *args, True)
    torch.testing.assert_close(x, rx, **TOL[torch.float64])
    torch.testing.assert_close(m, rm, **TOL[torch.float64])
    assert torch.equal(torch_ref.sample_spins(x), torch_ref.sample_spins(rx))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("symmetric_", [True, False])
def test_dsb_agent_path_same_state_for_every_coupling_form(dtype, symmetric_):
    # Integer weights make every field exact, so the dense, int8 and CSR kernels follow the
    # same trajectory bit for bit (the fallback's GEMM rounds m + q * F differently, and in
    # float32 such a rounding difference can grow into a different trajectory).
    J = integer_coupling(300, seed=5, symmetric_=symmetric_, density=0.05)
    states = []
    for kind in DSB_KINDS:
        x, m = state(300, 37, dtype, "cpu")
        run_dsb(kind, J, x, m, (0, 120, 0.1, 0.01, 0.003, 0.006))
        states.append((x, m))
    for x, m in states[1:]:
        assert torch.equal(x, states[0][0]) and torch.equal(m, states[0][1])


@pytest.mark.parametrize("kind", DSB_KINDS)
@pytest.mark.parametrize("symmetric_", [True, False])
def test_dsb_incremental_field_equals_recomputed(kind, symmetric_):
    # Every call starts from an exact product and then corrects the field flip by flip. With
    # integer weights the corrected field is exact, so one call of 150 steps and 150 calls of
    # one step (a fresh product at each) give the same state bit for bit.
    J = integer_coupling(300, seed=6, symmetric_=symmetric_,
                         density=0.05 if kind == "csr" else 1.0)
    x, m = state(300, 21, torch.float32, "cpu")
    sx, sm = x.clone(), m.clone()
    run_dsb(kind, J, x, m, (0, 150, 0.1, 0.01, 0.003, 0.006))
    for step in range(150):
        run_dsb(kind, J, sx, sm, (step, 1, 0.1, 0.01, 0.003, 0.006))
    assert torch.equal(x, sx) and torch.equal(m, sm)


@pytest.mark.parametrize("kind", DSB_KINDS)
def test_dsb_agent_path_independent_of_threads(kind):
    J = integer_coupling(300, seed=7, density=0.05 if kind == "csr" else 1.0)
    results = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            x, m = state(300, 40, torch.float64, "cpu")
            run_dsb(kind, J, x, m, (0, 80, 0.1, 0.01, 0.003, 0.0))
            results.append((x, m))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_sb_run_int8_checks_and_opcheck():
    K = symmetric(6, torch.float64, "cpu", integer=True).to(torch.int8)
    x, m = state(6, 3, torch.float32, "cpu")
    with pytest.raises(TypeError, match="K must be int8"):
        torch.ops.sb_native.sb_run_int8(K.float(), 1.0, x, m, 0, 2, 0.1, 0.01, 0.1, 0.0)
    with pytest.raises(ValueError, match="K has 5 rows but position has 6 variables"):
        torch.ops.sb_native.sb_run_int8(K[:5, :5], 1.0, x, m, 0, 2, 0.1, 0.01, 0.1, 0.0)
    torch.library.opcheck(torch.ops.sb_native.sb_run_int8.default,
                          (K, 0.5, x.clone(), m.clone(), 0, 4, 0.1, 0.01, 0.1, 0.0))


def test_integer_form_detection():
    from sb_native.engine import Coupling

    J = 0.5 * symmetric(10, torch.float32, "cpu", integer=True)
    K, scale = Coupling.dense(J).integer_form()
    assert scale == 0.5 and torch.equal(K.float() * scale, J)
    assert Coupling.dense(J + 0.3 * torch.eye(10)).integer_form() is None
    assert Coupling.dense(200.0 * J.sign() + J).integer_form() is None
    assert Coupling.dense(torch.zeros(3, 3)).integer_form() is None


@pytest.mark.parametrize("n", [1, 30, 64, 513])
def test_integer_forms_of_a_batch_equal_each_problems(n):
    # A batch's int8 forms are tested together, in chunks of stacked matrices (64 of n = 64
    # per chunk; n = 513 has more entries than a chunk and goes one by one): each must be the
    # problem's own integer_form, or None where that is None.
    from sb_native.engine.coupling import Coupling, integer_forms

    base = symmetric(n, torch.float32, "cpu", integer=True, seed=n)
    variants = [base, 0.25 * base, base + 0.3, 200.0 * base.sign() + base, torch.zeros(n, n),
                base.masked_fill(base == base.max(), float("nan")),
                base.masked_fill(base == base.max(), float("inf")), -3.0 * base]
    count = 150 if n <= 64 else len(variants)
    couplings = [Coupling.dense(variants[i % len(variants)].contiguous()) for i in range(count)]
    batch = integer_forms(couplings)
    assert len(batch) == count
    for coupling, form in zip(couplings, batch):
        own = coupling.integer_form()
        assert (form is None) == (own is None)
        if own is not None:
            assert form[1] == own[1] and form[0].dtype == torch.int8
            assert torch.equal(form[0], own[0])
    if n > 1:  # base, 0.25 base and -3 base have forms (n = 1: J is zero, none has)
        assert batch[0] is not None and batch[1] is not None and batch[7] is not None
