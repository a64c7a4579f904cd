"""Memory limits (issue 19): a solve too large for memory fails before allocating, with a
MemoryError naming the sizes and what to change; sizes past int64 are a ValueError naming
the argument; the CLI prints one line and exits 2 (sb_native/_memory.py).

Nothing large is allocated here: SB_NATIVE_MEMORY_LIMIT sets a small budget, and the steps
that would allocate (the Ising reduction, the state's draw) are replaced by ones that fail
the test if they are reached.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import sympy
import torch

import sb_native
from sb_native import _memory
from sb_native import io as sio
from sb_native.cli import main
from sb_native.core.polynomial import QuadraticPolynomial
from sb_native.engine import batched, runner
from sb_native.engine.coupling import Coupling
from sb_native.models import MaxCut

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUICK = dict(agents=8, max_steps=20, seed=0, verbose=False, early_stopping=False)
LIMIT = _memory.LIMIT_ENV

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv(LIMIT, "1M")


@pytest.fixture
def no_reduction(monkeypatch):
    """The dense Ising reduction must not start: the check comes before its copies."""
    def reached(self, domain):
        raise AssertionError("the Ising reduction ran")
    monkeypatch.setattr(QuadraticPolynomial, "to_ising", reached)


@pytest.fixture
def no_draw(monkeypatch):
    """The state must not be drawn: the check comes before its buffers."""
    def reached(*args, **kwargs):
        raise AssertionError("the state was drawn")
    monkeypatch.setattr(runner, "draw_oscillators", reached)
    monkeypatch.setattr(batched, "draw_oscillators", reached)


def sparse(n: int, edges: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, n, (2, edges), generator=g)
    values = torch.randn(edges, generator=g)
    return torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=True).coalesce()


# The budget

@pytest.mark.parametrize("nbytes, text", [(0, "0 bytes"), (52_000, "52000 bytes"),
                                          (163_216, "0.2 MiB"), (3 * 2**29, "1.5 GiB"),
                                          (96 * 2**40, "96.0 TiB")])
def test_human_sizes(nbytes, text):
    assert _memory.human(nbytes) == text


@pytest.mark.parametrize("value, nbytes", [("4096", 4096), ("2K", 2048), ("3m", 3 * 2**20),
                                           (" 1G ", 2**30), ("", None)])
def test_limit_setting(monkeypatch, value, nbytes):
    monkeypatch.setenv(LIMIT, value)
    assert _memory.limit() == nbytes


@pytest.mark.parametrize("value", ["0", "x", "-5", "1.5G", "G", "12Q"])
def test_bad_limit_setting_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(LIMIT, value)
    with pytest.raises(ValueError, match=f"{LIMIT} must be a positive number of bytes"):
        _memory.available("cpu")


def test_available_memory_is_measured_and_capped(monkeypatch):
    monkeypatch.delenv(LIMIT, raising=False)
    measured = _memory.available("cpu")
    assert measured is not None and measured > 2**20
    monkeypatch.setenv(LIMIT, "1M")
    assert _memory.available("cpu") == 2**20
    monkeypatch.setenv(LIMIT, str(2**62))  # a cap above the memory leaves the measure
    assert _memory.available("cpu") > 2**20 and _memory.available("cpu") < 2**62
    assert _memory.available("meta") == 2**62  # the cap holds where nothing is measured
    monkeypatch.delenv(LIMIT)
    assert _memory.available("meta") is None and _memory.fits(2**62, "meta")


def test_meminfo_and_cgroup_readers(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  1000 kB\nMemAvailable:   512 kB\n")
    assert _memory._meminfo_available(str(meminfo)) == 512 * 1024
    meminfo.write_text("MemTotal:  1000 kB\n")  # a kernel before 3.14
    assert _memory._meminfo_available(str(meminfo)) is None
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("1000000\n")
    (v2 / "memory.current").write_text("600000\n")
    (v2 / "memory.stat").write_text("anon 500000\ninactive_file 50000\n")
    assert _memory.cgroup_headroom(str(v2)) == 450_000
    (v2 / "memory.max").write_text("max\n")
    assert _memory.cgroup_headroom(str(v2)) is None
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")  # no limit
    (v1 / "memory" / "memory.usage_in_bytes").write_text("10\n")
    assert _memory.cgroup_headroom(str(v1)) is None
    (v1 / "memory" / "memory.limit_in_bytes").write_text("4096\n")
    assert _memory.cgroup_headroom(str(v1)) == 4086


# Dense couplings

def test_dense_reduction_fails_before_it_starts(small_limit, no_reduction):
    with pytest.raises(MemoryError) as caught:
        sb_native.minimize(torch.randn(400, 400), domain="spin", **QUICK)
    assert str(caught.value) == (
        "A dense problem of 400 variables (401 spins) needs 3.1 MiB of memory for its Ising "
        "reduction (5 dense 401 x 401 float32 matrices at once), more than the 1.0 MiB "
        f"allowed on cpu by {LIMIT}: use a sparse coupling (a torch sparse tensor, a "
        "scipy.sparse matrix, or sb_native.io's readers, which keep a problem sparse) or "
        "fewer variables.")


def test_integer_domains_count_their_bits(small_limit, no_reduction):
    with pytest.raises(MemoryError, match=r"A dense problem of 100 variables \(301 spins\) "
                                          r"needs 4\.1 MiB .* \(6 dense 301 x 301 float64"):
        sb_native.maximize(torch.randn(100, 100), domain="int3", dtype=torch.float64, **QUICK)


def test_a_sparse_coupling_of_the_same_size_fits(small_limit):
    vector, value = sb_native.minimize(sparse(400, 1200), domain="spin", **QUICK)
    assert vector.shape == (400,) and torch.isfinite(value)


def test_a_dense_quadratic_made_by_build_model_is_checked(monkeypatch):
    monkeypatch.setenv(LIMIT, "1G")
    with pytest.raises(MemoryError, match=r"A polynomial of 1000000 variables needs 3\.6 TiB "
                                          r"of memory for its dense 1000000 x 1000000 "
                                          r"quadratic coefficients \(made for a polynomial "
                                          r"given no quadratic"):
        sb_native.minimize(torch.zeros(10**6), domain="binary", **QUICK)
    monkeypatch.setenv(LIMIT, "10K")
    with pytest.raises(MemoryError, match=r"converted to torch\.float32 on cpu"):
        sb_native.minimize(np.zeros((100, 100)), domain="spin", **QUICK)
    x = sympy.symbols("x0:100")
    with pytest.raises(MemoryError, match="made from the sympy Poly"):
        sb_native.minimize(sympy.Poly(sum(x), *x), domain="spin", **QUICK)


def test_a_batch_reduction_is_checked(small_limit, monkeypatch):
    def reached(*args):
        raise AssertionError("the batch's reduction ran")
    monkeypatch.setattr("sb_native.core.batch.dense_isings", reached)
    with pytest.raises(MemoryError, match=r"A batch of 4 problems of up to 301 spins needs "
                                          r"11\.1 MiB .* split the batch\.$"):
        sb_native.minimize(torch.randn(4, 300, 300), domain="spin", **QUICK)


def test_a_dense_coupling_csr_form_is_checked(monkeypatch):
    coupling = Coupling.dense(torch.ones(200, 200) - torch.eye(200))
    monkeypatch.setenv(LIMIT, "100K")
    with pytest.raises(MemoryError, match=r"A dense 200 x 200 coupling with 39800 non-zeros "
                                          r"needs 1\.6 MiB of memory for its CSR form .* "
                                          r"or polish=False\.$"):
        coupling.to_csr()
    monkeypatch.delenv(LIMIT)
    assert coupling.to_csr().csr[2].numel() == 39800


def test_the_int8_form_gives_way_when_it_does_not_fit(monkeypatch):
    coupling = Coupling.dense(torch.randint(-3, 4, (100, 100)).float())
    assert coupling.integer_form() is not None
    monkeypatch.setenv(LIMIT, "100K")  # the float coupling runs: same steps, slower
    assert coupling.integer_form() is None
    assert coupling.for_run("native", True).integer is None


# MaxCut's dense graphs

@pytest.fixture
def no_constructor(monkeypatch):
    """MaxCut's constructor must not run: the check comes before the dense copies."""
    def reached(self, *args, **kwargs):
        raise AssertionError("the dense weights were made")
    monkeypatch.setattr(MaxCut, "__init__", reached)


def complete_graph_file(tmp_path, n: int) -> pathlib.Path:
    path = tmp_path / f"complete{n}.txt"
    sio.write_gset(path, torch.triu(torch.ones(n, n), 1))
    return path


@pytest.mark.parametrize("sparse", [False, None])  # None: a complete graph is made dense
def test_a_dense_gset_graph_fails_before_its_copies(tmp_path, small_limit, no_constructor,
                                                   sparse):
    path = complete_graph_file(tmp_path, 300)
    with pytest.raises(MemoryError) as caught:
        MaxCut.from_gset(path, sparse=sparse)
    assert str(caught.value) == (
        "A dense graph of 300 nodes (MaxCut.from_gset) needs 3.4 MiB of memory for its dense "
        "weights (40 bytes per entry of 300 x 300: the float64 copies the constructor works in "
        "and the model's float32 weights and quadratic), more than the 1.0 MiB allowed on cpu "
        f"by {LIMIT}: keep it sparse (sparse=True).")


def test_a_dense_edge_list_fails_and_a_sparse_one_fits(tmp_path, small_limit, monkeypatch):
    edges = torch.triu_indices(300, 300, 1).t()
    with monkeypatch.context() as patch:
        patch.setattr(MaxCut, "__init__", lambda *a, **k: pytest.fail("the weights were made"))
        with pytest.raises(MemoryError, match=r"^A dense graph of 300 nodes "
                                              r"\(MaxCut.from_edges\) needs 3\.4 MiB .* model's "
                                              r"float64 weights"):
            MaxCut.from_edges(edges, dtype=torch.float64)
    # The same graph kept sparse, from either source, makes no dense copy.
    assert MaxCut.from_edges(edges, sparse=True).quadratic.is_sparse
    assert MaxCut.from_gset(complete_graph_file(tmp_path, 300), sparse=True).quadratic.is_sparse


def test_a_dense_graph_within_the_limit_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv(LIMIT, "4M")  # 40 bytes x 300 x 300 = 3.4 MiB
    model = MaxCut.from_gset(complete_graph_file(tmp_path, 300))
    assert not model.quadratic.is_sparse and float(model.weights.sum()) == 300 * 299
    # A bad dtype is the constructor's error, not the check's.
    with pytest.raises(ValueError, match="float32 or a torch.float64"):
        MaxCut.from_gset(complete_graph_file(tmp_path, 3), dtype=torch.int32, sparse=False)


# The state

def test_state_fails_before_it_is_drawn(small_limit, no_draw):
    message = (r"A run of 10000 agents on 31 spins needs 9\.5 MiB of memory for its state "
               r"\(8 buffers of 31 x 10000 float32: positions, momenta and the run's buffers "
               r"of that size\), more than the 1\.0 MiB allowed on cpu by "
               rf"{LIMIT}: use fewer agents\.$")
    Q = torch.randn(30, 30)
    with pytest.raises(MemoryError, match=message):
        sb_native.minimize(Q, torch.ones(30), domain="spin", **dict(QUICK, agents=10000))
    # A model's own method reaches the runner's check (sb_native.minimize checks earlier).
    with pytest.raises(MemoryError, match=message):
        QuadraticPolynomial(Q, torch.ones(30)).minimize(domain="spin",
                                                        **dict(QUICK, agents=10000))
    with pytest.raises(MemoryError, match=r"\(10 buffers .* float64.*dtype=torch\.float32\.$"):
        QuadraticPolynomial(Q, dtype=torch.float64).minimize(
            domain="spin", polish=True, **dict(QUICK, agents=10000))


def test_a_batch_state_fails_before_it_is_drawn(small_limit, no_draw):
    batch = sb_native.build_model(torch.randn(3, 5, 5))
    with pytest.raises(MemoryError, match=r"A run of 20000 agents on 3 problems of up to 6 "
                                          r"spins needs .* \(8 buffers of 3 x 6 x 20000"):
        batch.minimize(domain="spin", **dict(QUICK, agents=20000))


@pytest.mark.parametrize("solve", ["function", "method"])
def test_huge_agents_and_steps_name_the_argument(solve, no_draw):
    def run(**options):
        if solve == "function":
            return sb_native.minimize(torch.eye(3), domain="spin", **dict(QUICK, **options))
        return QuadraticPolynomial(torch.eye(3)).minimize(domain="spin",
                                                           **dict(QUICK, **options))
    # 4 spins counted up front (one for a field), 3 by the runner (there is none).
    with pytest.raises(MemoryError, match=r"A run of 1125899906842624 agents on [34] spins "
                                          r"needs (128|96)\.0 PiB of memory .* fewer agents\.$"):
        run(agents=2**50)
    with pytest.raises(ValueError, match=r"^agents: a state of [34] x 4611686018427387904 "
                                         r"elements \(variables x agents\) is more than the "
                                         r"ops' int64 indices hold"):
        run(agents=2**62)
    with pytest.raises(ValueError, match=r"^agents should be at most 2\*\*63 - 1"):
        run(agents=2**70)
    with pytest.raises(ValueError, match=r"^max_steps should be at most 2\*\*63 - 1 .* "
                                         r"max_steps=None sets no step limit"):
        run(max_steps=2**63)


def test_normal_sizes_are_untouched(monkeypatch):
    monkeypatch.delenv(LIMIT, raising=False)
    Q = torch.tensor([[-1.0, 2.0], [0.0, -2.0]])
    vector, value = sb_native.minimize(Q, domain="binary", **QUICK)
    assert vector.tolist() == [0.0, 1.0] and float(value) == -2.0
    vectors, values = sb_native.minimize(torch.stack([Q, Q]), domain="binary", **QUICK)
    assert values.tolist() == [-2.0, -2.0]
    # The checks pass the same sizes quietly.
    _memory.check_run(10**4, 10**3, 10**6, torch.float32, "cpu")
    _memory.check_fits("x", 2**20, "cpu", "y", "z")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_memory_is_measured():
    free = _memory.available("cuda")
    assert free is not None and 0 < free <= torch.cuda.mem_get_info()[1]
    with pytest.raises(MemoryError, match="available on cuda"):
        # device= as the peer's: the model lives there (the CPU by default, whatever Q's).
        sb_native.minimize(torch.eye(3, device="cuda"), domain="spin", device="cuda",
                           **dict(QUICK, agents=2**50))


# The command line

def test_cli_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "ring.txt"
    sio.write_gset(path, torch.diag(torch.ones(29), 1))  # a 30-node path
    monkeypatch.setenv(LIMIT, "4K")
    assert main(["solve", str(path), "--quiet", "--seed", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    # The model's _optimize checks first, counting the field's spin a linear part would add.
    assert err.startswith("sb-native: error: A run of 128 agents on 31 spins needs 0.1 MiB "
                          "of memory for its state (8 buffers of 31 x 128 float32")
    assert err.rstrip().endswith(f"allowed on cpu by {LIMIT}: use fewer agents.")


def test_cli_subprocess_exits_2(tmp_path):
    path = tmp_path / "ring.txt"
    sio.write_gset(path, torch.diag(torch.ones(29), 1))
    env = {**os.environ, LIMIT: "4096", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "sb_native", "solve", str(path), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("sb-native: error: A run of 128 agents on 31 spins needs ")
