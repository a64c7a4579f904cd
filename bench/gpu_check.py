"""GPU check of the CUDA kernels: the CUDA tests for parity, then throughput.

    python bench/gpu_check.py [--steps 300] [--agents 128,256,512,1024,2048,4096]

1. Parity: runs the CUDA test cases (tests/sb/test_cuda.py, tests/qimad/test_cuda.py and
   every case of the op tests parametrised on the cuda device) with pytest: each CUDA
   kernel against its CPU kernel and its torch reference on the GPU.
2. Throughput: dSB on K2000 (complete graph, +-1 weights) for 128 to 4,096 agents, with
   the float (sb_run) and int8 (sb_run_int8) couplings, each with the incremental field
   (one launch per call, the default) and with the field recomputed by a GEMM at every
   step (float cuBLAS, int8 tensor cores; SB_NATIVE_CUDA_DSB_FIELD=recompute), and on a G81-like
   sparse graph (100 x 200 torus, +-1 weights, sb_run_csr), as steps/s of the native CUDA
   kernels and their ratio to the torch reference (sb_native.engine.reference) on the
   same GPU; then one QIMADTorch step on an MLP and one qimad_update alone, native vs the
   torch backend.
3. The persistent small-problem kernel of sb_run / sb_run_int8 (n <= 512, one launch per
   call): steps/s at n = 100 and n = 500 with 128 agents, persistent vs GEMM path vs
   pure torch.
4. Many small problems (sb_run_batched, docs/batched.md): 10,000 problems of n = 64 and
   1,000 of n = 256, 32 agents, bSB and dSB: problem-steps/s of one batched call vs a loop of
   sb_run calls (one per problem) vs the batched torch reference, on the GPU.

Exits 0 without a GPU (nothing to check), 1 when a parity test fails.
"""

import argparse
import contextlib
import copy
import math
import os
import pathlib
import subprocess
import sys
import time

import torch

import sb_native
from sb_native._env import ENVIRONMENT
from sb_native.engine import reference as torch_ref
from sb_native.optim import QIMADTorch, ops

CUDA = torch.device("cuda")
ROOT = pathlib.Path(__file__).resolve().parents[1]
# The CUDA test cases: the CUDA files of each area, and the op tests' cuda parameters.
CUDA_TESTS = ["tests/sb/test_cuda.py", "tests/qimad/test_cuda.py",
              "tests/sb/test_ops.py", "tests/qimad/test_qimad_ops.py",
              "tests/qimad/test_qimad_step.py"]


def parity() -> bool:
    """The CUDA tests, run by pytest in a child process; True when they all pass."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
               "cuda or CUDA", *CUDA_TESTS]
    print("parity: " + " ".join(command[1:]), flush=True)
    return subprocess.run(command, cwd=ROOT).returncode == 0


@contextlib.contextmanager
def environment(**values):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def gemm_path():
    """sb_run / sb_run_int8 take the per-step GEMM path even for small problems."""
    return environment(SB_NATIVE_CUDA_PERSISTENT_MAX_N="0", SB_NATIVE_CUDA_DSB_FIELD="recompute")


def recompute_field():
    """dSB above the persistent kernel's size recomputes its field by a GEMM at every step."""
    return environment(SB_NATIVE_CUDA_DSB_FIELD="recompute")


def qimad_swarm(n, sizes, dtype, g):
    """qimad_update's arguments for a random swarm (the timing's input): fidelity matrices for
    k = 1 and 3 (CPU kernel), segments alternating between them, about 60% of the rows, every
    4th tunnelling."""
    p = sum(sizes)
    alpha = torch.rand(n, generator=g, dtype=dtype) * math.pi
    beta = torch.rand(n, generator=g, dtype=dtype) * (2 * math.pi)
    mask = (torch.rand(n, n, generator=g) < 0.3).fill_diagonal_(False)
    W = torch.stack([torch.ops.sb_native.qimad_fidelity(alpha, beta, mask, k, 1e-8)
                     for k in (1.0, 3.0)])
    rows = torch.nonzero(torch.rand(n, generator=g) < 0.6).flatten()
    tunnel_rows = rows[::4].contiguous()
    segments = torch.tensor([0] + [sum(sizes[:i + 1]) for i in range(len(sizes))])
    seg_w = torch.tensor([i % 2 for i in range(len(sizes))])
    rand = lambda *shape: torch.rand(*shape, generator=g, dtype=dtype)  # noqa: E731
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    return [randn(n, p), rand(n, p), randn(n, p), randn(p), W, rows, 0.2 * rand(n), segments,
            0.01 + 0.05 * rand(len(sizes)), 0.3 * rand(len(sizes)), seg_w, tunnel_rows,
            rand(len(tunnel_rows), p), 0.7, 0.99, 1e-8], (alpha, beta, mask)


def k2000(g):
    J = torch.randint(0, 2, (2000, 2000), generator=g).float() * 2 - 1
    J = torch.triu(J, 1)
    return (J + J.t()).to(CUDA)


def g81_like(g):
    rows, cols = 100, 200
    idx = torch.arange(rows * cols).reshape(rows, cols)
    right = torch.stack([idx.reshape(-1), torch.roll(idx, -1, 1).reshape(-1)])
    down = torch.stack([idx.reshape(-1), torch.roll(idx, -1, 0).reshape(-1)])
    edges = torch.cat([right, down], 1)
    w = torch.randint(0, 2, (edges.shape[1],), generator=g).float() * 2 - 1
    both = torch.cat([edges, edges.flip(0)], 1)
    coo = torch.sparse_coo_tensor(both, torch.cat([w, w]), (rows * cols,) * 2).coalesce()
    return coo.to_sparse_csr().to(CUDA)


def steps_per_second(run, steps):
    run(10)  # warm-up: cuBLAS handles, allocator, cuSPARSE descriptors
    torch.cuda.synchronize()
    start = time.perf_counter()
    run(steps)
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def throughput(agent_counts, steps) -> None:
    g = torch.Generator().manual_seed(1)
    dt, slope = ENVIRONMENT.time_step, ENVIRONMENT.pressure_slope
    print(f"\ndSB, float32, {steps} timed steps; ratio = native CUDA / pure torch on this GPU")
    problems = [("K2000", k2000(g), agent_counts),
                ("G81-like", g81_like(g), [agent_counts[0], agent_counts[-1]])]
    for name, J, counts in problems:
        sparse = J.layout == torch.sparse_csr
        n = J.shape[0]
        q = float(dt * 0.5 * (n - 1) ** 0.5 / (J.values() if sparse else J).norm())
        env = (dt, slope, q, 0.0)
        for agents in counts:
            x = 2 * torch.rand(n, agents, device=CUDA) - 1
            m = 2 * torch.rand(n, agents, device=CUDA) - 1
            kernels = {}
            if sparse:
                csr = (J.crow_indices(), J.col_indices(), J.values())
                kernels["sb_run_csr"] = lambda k: torch.ops.sb_native.sb_run_csr(  # noqa: E731
                    *csr, x, m, 0, k, *env, True)
            else:
                K = J.to(torch.int8)
                kernels["sb_run"] = lambda k: torch.ops.sb_native.sb_run(  # noqa: E731
                    J, x, m, 0, k, *env, True)
                kernels["sb_run_int8"] = lambda k: torch.ops.sb_native.sb_run_int8(  # noqa: E731
                    K, 1.0, x, m, 0, k, *env)
            reference = steps_per_second(
                lambda k: torch_ref.sb_run(J, x, m, 0, k, *env, True), steps)
            for op, run in kernels.items():
                ours = steps_per_second(run, steps)
                line = (f"{name:9} n={n:6} agents={agents:5} {op:12}: {ours:10.1f} steps/s, "
                        f"torch {reference:10.1f} steps/s, ratio {ours / reference:6.2f}x")
                if not sparse:
                    with recompute_field():
                        gemm = steps_per_second(run, steps)
                    line += f" (GEMM per step {gemm:10.1f} steps/s: x{ours / gemm:5.2f})"
                print(line)


def small_timing(steps) -> None:
    """Small problems, where the per-step GEMM path is launch-bound: one persistent launch per
    call vs the GEMM path (one elementwise launch + a GEMM per step) vs pure torch."""
    g = torch.Generator().manual_seed(3)
    dt, slope = ENVIRONMENT.time_step, ENVIRONMENT.pressure_slope
    agents = 128
    print(f"\nsmall problems, float32, {agents} agents, {steps} timed steps in one call; "
          "ratio = persistent / pure torch on this GPU")
    for n in (100, 500):
        J = (torch.randint(0, 2, (n, n), generator=g).float() * 2 - 1).triu(1)
        J = (J + J.t()).to(CUDA)  # +-1 weights (K_n), so the int8 op applies too
        K = J.to(torch.int8)
        q = float(dt * 0.5 * (n - 1) ** 0.5 / J.norm())
        x = 2 * torch.rand(n, agents, device=CUDA) - 1
        m = 2 * torch.rand(n, agents, device=CUDA) - 1
        for mode, discrete in (("bSB", False), ("dSB", True)):
            env = (dt, slope, q, 0.0, discrete)
            kernels = {"sb_run": lambda k: torch.ops.sb_native.sb_run(  # noqa: E731
                J, x, m, 0, k, *env)}
            if discrete:
                kernels["sb_run_int8"] = lambda k: torch.ops.sb_native.sb_run_int8(  # noqa: E731
                    K, 1.0, x, m, 0, k, *env[:-1])
            reference = steps_per_second(lambda k: torch_ref.sb_run(J, x, m, 0, k, *env), steps)
            for op, run in kernels.items():
                ours = steps_per_second(run, steps)
                with gemm_path():
                    gemm = steps_per_second(run, steps)
                print(f"n={n:4} {mode} {op:12}: persistent {ours:10.1f} steps/s, "
                      f"GEMM path {gemm:10.1f}, torch {reference:10.1f}, "
                      f"ratio {ours / reference:6.2f}x (vs GEMM path {ours / gemm:6.2f}x)")


def batched_timing(steps) -> None:
    """sb_run_batched: one launch per call for a whole batch, against one sb_run launch per
    problem and against the torch reference; the loops run on a few problems and are scaled."""
    g = torch.Generator().manual_seed(4)
    dt, slope = ENVIRONMENT.time_step, ENVIRONMENT.pressure_slope
    agents = 32
    print(f"\nmany problems, float32, {agents} agents, {steps} steps; problem-steps/s")
    for batch, n in ((10_000, 64), (1_000, 256)):
        J = torch.randn(batch, n, n, generator=g)
        J = ((J + J.transpose(1, 2)) / 2).to(CUDA)
        J.diagonal(dim1=1, dim2=2).zero_()
        q = torch.full((batch,), 0.01, dtype=torch.float64, device=CUDA)
        active = torch.ones(batch, dtype=torch.bool, device=CUDA)
        x = 2 * torch.rand(batch, n, agents, device=CUDA) - 1
        m = 2 * torch.rand(batch, n, agents, device=CUDA) - 1
        few = 50
        for mode, discrete in (("bSB", False), ("dSB", True)):
            env = (dt, slope, q, 0.0, discrete)
            ours = batch * steps_per_second(lambda k: torch.ops.sb_native.sb_run_batched(
                J, x, m, active, 0, k, *env), steps)
            loop = few * steps_per_second(lambda k: [torch.ops.sb_native.sb_run(
                J[b], x[b], m[b], 0, k, dt, slope, 0.01, 0.0, discrete) for b in range(few)],
                steps)
            reference = batch * steps_per_second(lambda k: torch_ref.sb_run_batched(
                J, x, m, active, 0, k, *env), max(1, steps // 100))
            print(f"B={batch:6} n={n:4} {mode}: batched {ours:14.1f}, loop of sb_run "
                  f"{loop:12.1f} (x{ours / loop:7.2f}), torch reference {reference:12.1f} "
                  f"(x{ours / reference:7.2f})")


def qimad_timing(steps) -> None:
    """One QIMADTorch step (step_batched: all 16 agents' forward and backward in one vmap, then
    the swarm update) on an MLP, and one qimad_update alone on a swarm of that size."""
    g = torch.Generator().manual_seed(2)
    X = torch.randn(256, 784, generator=g).to(CUDA)
    y = torch.randint(0, 10, (256,), generator=g).to(CUDA)
    torch.manual_seed(0)
    template = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                   torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                   torch.nn.Linear(512, 10)).to(CUDA)
    size = sum(p.numel() for p in template.parameters())
    step_ms, update_ms = {}, {}
    args, _ = qimad_swarm(16, [size], torch.float32, g)
    for backend in ("native", "torch"):
        model = copy.deepcopy(template)
        opt = QIMADTorch(model.parameters(), num_agents=16, seed=0, backend=backend)
        loss = lambda forward: torch.nn.functional.cross_entropy(forward(X), y)  # noqa: E731
        step_ms[backend] = 1e3 / steps_per_second(
            lambda k: [opt.step_batched(loss, module=model) for _ in range(k)], steps)
        gpu = [a.to(CUDA) if torch.is_tensor(a) else a for a in args]
        update_ms[backend] = 1e3 / steps_per_second(
            lambda k: [ops.qimad_update(*gpu, backend=backend) for _ in range(k)], steps)
    print(f"\nQIMADTorch, float32, MLP 784-512-512-10 ({size} parameters), 16 agents, batch 256")
    for name, ms in (("step_batched", step_ms), ("qimad_update", update_ms)):
        print(f"{name:13}: native {ms['native']:8.3f} ms, torch {ms['torch']:8.3f} ms, "
              f"ratio {ms['torch'] / ms['native']:6.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--agents", default="128,256,512,1024,2048,4096")
    args = parser.parse_args()
    info = sb_native.backend_info()
    if not info["cuda_device"]:
        why = "no CUDA device" if info["cuda"] else "the extension has no CUDA kernels"
        print(f"gpu_check: skipped ({why}; backend_info: {info})")
        return 0
    print(f"gpu_check on {torch.cuda.get_device_name()} (torch {torch.__version__})")
    passed = parity()
    throughput([int(a) for a in args.agents.split(",")], args.steps)
    small_timing(args.steps)
    batched_timing(args.steps)
    qimad_timing(min(args.steps, 50))
    print("\nparity: " + ("all passed" if passed else "FAILED"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
