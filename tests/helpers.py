"""Helpers shared by the tests (and the benchmarks): problem builders, marks, the oracles'
loaders. Fixtures live in tests/conftest.py."""

import contextlib
import importlib.util
import os
import pathlib
from typing import NoReturn

import pytest
import torch

import sb_native

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
GSET = SHARED_DATA / "gset"
# The seed's QIMADTorch implementation: the reference QIMADTorch is measured against, vendored
# (from shared/seeds/000_qimad_seed_reformatted.py) so that a clean clone has it.
SEED_REFERENCE = ROOT / "tests" / "oracles" / "qimad_seed_reference.py"

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device")),
]


def _cpu_has_fma() -> bool:
    """Whether this build's CPU products are fused (csrc/sb/cpu/fused_product.h: GCC with
    -march=native on an x86 CPU with FMA)."""
    import platform
    if platform.machine() != "x86_64":
        return False
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " fma " in flags or " fma\n" in flags


CPU_FUSED_PRODUCTS = _cpu_has_fma()
NATIVE_ONLY = pytest.mark.skipif(not sb_native.backend_info()["native"],
                                 reason="native extension not built")
CUDA_ONLY = pytest.mark.skipif(not sb_native.backend_info()["cuda_device"],
                               reason="needs the CUDA build of the extension and a GPU")


def symmetric(n, dtype, device="cpu", *, seed=0, integer=False, density=1.0):
    """A symmetric, zero-diagonal coupling: N(0, 1) or integers in [-3, 3], of about
    density's share of entries."""
    g = torch.Generator().manual_seed(seed)
    J = (torch.randint(-3, 4, (n, n), generator=g).to(dtype) if integer
         else torch.randn(n, n, generator=g, dtype=dtype))
    if density < 1.0:
        J = J * (torch.rand(n, n, generator=g) < density)
    J = torch.triu(J, 1)
    return (J + J.t()).to(device)


def state(n, agents, dtype, device="cpu", *, seed=1):
    """Positions, then momenta, uniform in [-1, 1), shape (n, agents)."""
    g = torch.Generator().manual_seed(seed)
    x = (2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1).to(device)
    m = (2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1).to(device)
    return x, m


def csr_of(J):
    """(crow, col, values) of a dense matrix, each its own contiguous tensor."""
    csr = J.to_sparse_csr()
    return csr.crow_indices().clone(), csr.col_indices().clone(), csr.values().clone()


def import_reference(torch_module=torch):
    """The seed's QIMADTorch module (a reference to measure against, never project code), with
    its global `torch` replaced by torch_module, or None when the seed is absent."""
    if not SEED_REFERENCE.exists():
        return None
    spec = importlib.util.spec_from_file_location("qimad_seed_reference", SEED_REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.torch = torch_module
    return module


def missing_oracle(what: str, remedy: str) -> NoReturn:
    """A test's oracle is absent: the test fails under CI (CI=true or 1, as .ci/run sets), where
    a skip would hide that the comparison never ran, and skips elsewhere."""
    message = f"{what} is missing: {remedy}"
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{message} (CI={os.environ['CI']}: every oracle must be present)",
                    pytrace=False)
    pytest.skip(message)


def load_reference(torch_module=torch):
    """import_reference for a test: missing_oracle when the seed is absent."""
    module = import_reference(torch_module)
    if module is None:
        missing_oracle(f"the QIMAD seed reference {SEED_REFERENCE}",
                       "git checkout -- tests/oracles/qimad_seed_reference.py restores it (a "
                       "copy of shared/seeds/000_qimad_seed_reformatted.py under a header)")
    return module


def load_peer():
    """The simulated-bifurcation 2.0.0 package (the parity oracle), or missing_oracle."""
    try:
        return importlib.import_module("simulated_bifurcation")
    except ImportError:
        missing_oracle("the peer package simulated_bifurcation (the oracle of the parity tests)",
                       "pip install simulated-bifurcation==2.0.0 (pinned in "
                       "requirements-test.txt; make test installs it)")


@contextlib.contextmanager
def default_dtype(dtype):
    """simulated-bifurcation 2.0.0 samples spins in the *default* dtype, so in float64 it
    only runs correctly when float64 is the default (otherwise its early-stopping window
    fails on a dtype mismatch and its run silently stops at the first sampling). The
    oracle runs under this context so float64 comparisons compare against a working peer."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def run_seeded(fn, seed, *args, **kwargs):
    torch.manual_seed(seed)
    return fn(*args, **kwargs)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_gloo(rank, world, port):
    """In a spawned rank: the default process group over gloo on 127.0.0.1, one thread."""
    import datetime
    import os

    import torch.distributed as dist
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))


def spawn_ranks(target, world, directory, *args, deadline=120):
    """Runs target(rank, world, port, directory, *args) in `world` spawned processes (a module
    level function, which saves its results to directory/<rank>.pt) and returns each rank's
    results; kills the ranks and fails the test after `deadline` seconds."""
    import time

    import torch.multiprocessing as mp
    context = mp.start_processes(target, args=(world, free_port(), str(directory), *args),
                                 nprocs=world, join=False, start_method="spawn")
    end = time.monotonic() + deadline
    while not context.join(timeout=1):
        if time.monotonic() > end:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world} ranks did not finish within {deadline} s")
    return [torch.load(pathlib.Path(directory) / f"{rank}.pt") for rank in range(world)]


TWO_GPUS_NCCL = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_nccl_available()
         and torch.cuda.device_count() >= 2 and sb_native.backend_info()["cuda_device"]),
    reason="needs NCCL, two GPUs and the CUDA build")


def save_on_gpu_rank(rank, world, port, directory, solve):
    """In a spawned rank: joins an NCCL group on cuda:rank, saves solve()'s (vector, value)
    on the CPU to directory/<rank>.pt, leaves the group."""
    import os
    from datetime import timedelta

    import torch.distributed as dist
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=60))
    try:
        vector, value = solve(rank)
        torch.save((vector.cpu(), value.cpu()), os.path.join(directory, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def record_cases(rank, directory, cases):
    """In a spawned rank that joined a process group: runs each case (name -> call) and saves
    {name: ("ok", result) or ("error", type name, message)} to directory/<rank>.pt, then
    leaves the group."""
    import warnings

    results = {}
    try:
        for name, call in cases.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results[name] = ("ok", call())
            except Exception as error:  # noqa: BLE001 - the test compares what each rank saw
                results[name] = ("error", type(error).__name__, str(error))
    finally:
        leave_rank(rank, directory, results)


def leave_rank(rank, directory, results):
    """A spawned rank's last act: saves results to directory/<rank>.pt, leaves the group and
    exits at once (status 0). The interpreter's own exit is skipped: after a run in which a
    rank failed on purpose, the exit of a QIMAD rank aborted about 3 times in 10 ("terminate
    called without an active exception", in torch's teardown), after its results were saved
    and the group destroyed; the test reads the results, which are complete by then."""
    import os
    import sys

    import torch.distributed as dist
    try:
        torch.save(results, os.path.join(directory, f"{rank}.pt"))
        dist.destroy_process_group()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@contextlib.contextmanager
def failing_on_rank_one(op: str, call: int):
    """In a spawned rank, within the block: rank 1's `call`-th call of the engine op
    sb_native.engine.ops.<op> raises MemoryError("rank 1 ran out of memory"), the failure
    assert_ranks_fail_together expects."""
    import torch.distributed as dist

    from sb_native.engine import ops
    calls, original = [], getattr(ops, op)

    def flaky(*args, **kwargs):
        calls.append(1)
        if dist.get_rank() == 1 and len(calls) == call:
            raise MemoryError("rank 1 ran out of memory")
        return original(*args, **kwargs)

    setattr(ops, op, flaky)
    try:
        yield
    finally:
        setattr(ops, op, original)


def assert_ranks_fail_together(ranks, mismatched, failing):
    """Two ranks' records: the case given different problems or settings raised ValueError
    on both; in the failing case rank 1 raised MemoryError and rank 0 RankFailed naming it."""
    for results in ranks:
        status, kind, message = results[mismatched]
        assert (status, kind) == ("error", "ValueError")
        assert "different problems or settings" in message
    assert ranks[1][failing] == ("error", "MemoryError", "rank 1 ran out of memory")
    status, kind, message = ranks[0][failing]
    assert (status, kind) == ("error", "RankFailed")
    assert "rank 1 of the process group failed" in message


def stop_window(n, agents, dtype, device="cpu"):
    """sb_sample's mutated arguments, as a run starts: energies, stability, bifurcated and
    final_spins."""
    return dict(energies=torch.full((agents,), float("inf"), dtype=dtype, device=device),
                stability=torch.zeros(agents, dtype=torch.int16, device=device),
                bifurcated=torch.zeros(agents, dtype=torch.bool, device=device),
                final_spins=torch.zeros(n, agents, dtype=dtype, device=device))


def sampling_points(J, agents, samplings, *, seed=3):
    """(position, field = J @ spins) at each of `samplings` sampling points of a run in which
    only some agents move between points, so stability streaks both grow and reset."""
    from sb_native.engine.reference import sample_spins
    n, dtype = J.shape[0], J.dtype
    x, _ = state(n, agents, dtype)
    g = torch.Generator().manual_seed(seed)
    for _ in range(samplings):
        flip = torch.rand(agents, generator=g) < 0.3
        x[:, flip] = 2 * torch.rand(n, int(flip.sum()), generator=g, dtype=dtype) - 1
        yield x, J @ sample_spins(x)


def batched_problem(problems, n, agents, dtype, integer, device="cpu"):
    """sb_run_batched's arguments for a batch: J (B, n, n), a different coupling per problem
    (integers, or scaled N(0, 1) weights), states (B, n, agents), every third problem
    inactive, a different q per problem."""
    J = torch.stack([symmetric(n, dtype, seed=b, integer=integer) for b in range(problems)])
    if not integer:
        J = J / n ** 0.5
    x, m = zip(*(state(n, agents, dtype, seed=100 + b) for b in range(problems)))
    active = torch.tensor([b % 3 != 1 for b in range(problems)])
    q = torch.tensor([(0.2 + 0.03 * b) / n ** 0.5 for b in range(problems)], dtype=torch.float64)
    return tuple(t.to(device) for t in (J, torch.stack(x), torch.stack(m), active, q))
