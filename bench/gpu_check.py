"""GPU check of the CUDA kernels: parity with the CPU kernels, then throughput.

    python bench/gpu_check.py [--steps 300] [--agents 128,256,512,1024,2048,4096]

1. Parity, every SB op on random inputs: CUDA kernel vs CPU kernel (float64 tight,
   float32 loose) and identical dSB spins on integer weights; the same for the QIMADTorch
   ops (qimad_fidelity, qimad_update) on a random swarm.
2. Throughput: dSB on K2000 (complete graph, +-1 weights) for 128 to 4,096 agents, with
   the float (sb_run) and int8 (sb_run_int8) couplings, each with the incremental field
   (one launch per call, the default) and with the field recomputed by a GEMM at every
   step (float cuBLAS, int8 tensor cores; SB_NATIVE_CUDA_DSB_FIELD=recompute), and on a G81-like
   sparse graph (100 x 200 torus, +-1 weights, sb_run_csr), as steps/s of the native CUDA
   kernels and their ratio to the pure-torch path (sb_native.optimizer.fallback) on the
   same GPU; then one QIMADTorch step on an MLP and one qimad_update alone, native vs the
   torch backend.
3. The persistent small-problem kernel of sb_run / sb_run_int8 (n <= 512, one launch per
   call): parity on a small case against the CPU kernel and the large-problem paths on the
   GPU, then steps/s at n = 100 and n = 500 with 128 agents, persistent vs GEMM path vs
   pure torch.
4. The incremental dSB kernel above 512 variables: parity against the CPU kernel and the
   GEMM-per-step path (identical states on integer weights).

Exits 0 without a GPU (nothing to check), 1 when a parity check fails.
"""

import argparse
import contextlib
import copy
import math
import os
import sys
import time

import torch

import sb_native
from sb_native._env import ENVIRONMENT
from sb_native.optim import QIMADTorch, _kernels
from sb_native.optimizer import fallback

CUDA = torch.device("cuda")
TOL = {torch.float64: 1e-10, torch.float32: 1e-3}


def symmetric(n, dtype, g, integer=False, density=1.0):
    J = (torch.randint(-3, 4, (n, n), generator=g).to(dtype) if integer
         else torch.randn(n, n, generator=g, dtype=dtype))
    if density < 1.0:
        J = J * (torch.rand(n, n, generator=g) < density)
    J = torch.triu(J, 1)
    return J + J.t()


def csr_of(J):
    csr = J.to_sparse_csr()
    return csr.crow_indices().clone(), csr.col_indices().clone(), csr.values().clone()


def max_diff(gpu_tensors, cpu_tensors):
    return max(float((g.cpu() - c).abs().max()) for g, c in zip(gpu_tensors, cpu_tensors))


def run_op(name, J, x, m, steps, heat, discrete):
    ops = torch.ops.sb_native
    if name == "sb_step":
        ops.sb_step(J, x, m, -0.07, 0.1, 0.013, heat, discrete)
    elif name == "sb_run":
        ops.sb_run(J, x, m, 0, steps, 0.1, 0.01, 0.02, heat, discrete)
    elif name == "sb_run_int8":  # dSB only; J has integer entries
        ops.sb_run_int8(J.to(torch.int8), 1.0, x, m, 0, steps, 0.1, 0.01, 0.02, heat)
    else:  # odd step count: bSB ends in the kernel's scratch buffer and is copied back
        ops.sb_run_csr(*csr_of(J), x, m, 0, steps + 1, 0.1, 0.01, 0.02, heat, discrete)


def parity() -> bool:
    g = torch.Generator().manual_seed(0)
    results = []
    for dtype in (torch.float64, torch.float32):
        steps = 200 if dtype == torch.float64 else 50  # float32 drifts apart over long runs
        for discrete in (False, True):
            for heat in (0.0, 0.006):
                tag = f"{str(dtype)[6:]:7} {'dSB' if discrete else 'bSB'} heat={heat}"
                dense = symmetric(300, dtype, g, integer=discrete)
                sparse = symmetric(300, dtype, g, integer=discrete, density=0.05)
                x = 2 * torch.rand(300, 96, generator=g, dtype=dtype) - 1
                m = 2 * torch.rand(300, 96, generator=g, dtype=dtype) - 1
                for name in ("sb_step", "sb_run", "sb_run_csr") + (("sb_run_int8",) if discrete else ()):
                    J = sparse if name == "sb_run_csr" else dense
                    cx, cm = x.clone(), m.clone()
                    gx, gm = x.to(CUDA), m.to(CUDA)
                    run_op(name, J, cx, cm, steps, heat, discrete)
                    run_op(name, J.to(CUDA), gx, gm, steps, heat, discrete)
                    diff = max_diff((gx, gm), (cx, cm))
                    same_spins = torch.equal(fallback.sample_spins(gx).cpu(),
                                             fallback.sample_spins(cx))
                    # dSB runs on integer weights, where J @ sign(x) is exact on both devices.
                    ok = diff <= TOL[dtype] and (same_spins or not discrete)
                    results.append((ok, f"{name:10} {tag}: max |cuda - cpu| = {diff:.2e}, "
                                        f"same spins: {same_spins}"))
        results.append(sample_parity(dtype, g))
        results.extend(qimad_parity(dtype, g))
        results.extend(persistent_parity(dtype, g))
        results.extend(incremental_parity(dtype, g))
    for ok, line in results:
        print(("PASS " if ok else "FAIL ") + line)
    return all(ok for ok, _ in results)


def sample_parity(dtype, g):
    n, agents, threshold = 500, 64, 3
    J = symmetric(n, dtype, g, integer=True)

    def window(device):
        return (torch.full((agents,), float("inf"), dtype=dtype, device=device),
                torch.zeros(agents, dtype=torch.int16, device=device),
                torch.zeros(agents, dtype=torch.bool, device=device),
                torch.zeros(n, agents, dtype=dtype, device=device))

    cpu, gpu = window("cpu"), window(CUDA)
    x = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
    ok = True
    for _ in range(8):
        flip = torch.rand(agents, generator=g) < 0.3
        x[:, flip] = 2 * torch.rand(n, int(flip.sum()), generator=g, dtype=dtype) - 1
        field = J @ fallback.sample_spins(x)
        torch.ops.sb_native.sb_sample(x, field, *cpu, threshold)
        torch.ops.sb_native.sb_sample(x.to(CUDA), field.to(CUDA), *gpu, threshold)
        ok = ok and all(torch.equal(a.cpu(), b) for a, b in zip(gpu, cpu))
    return ok, f"sb_sample  {str(dtype)[6:]:7} integer weights: window identical to the CPU's"


def qimad_swarm(n, sizes, dtype, g):
    """qimad_update's arguments for a random swarm: fidelity matrices for k = 1 and 3 (CPU
    kernel), segments alternating between them, about 60% of the rows, every 4th tunnelling."""
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


def qimad_parity(dtype, g):
    """The QIMADTorch ops, CUDA vs CPU kernel, on a 48-agent swarm of 23,017 parameters."""
    tag = f"{str(dtype)[6:]:7}"
    args, (alpha, beta, mask) = qimad_swarm(48, [3000, 17, 20000], dtype, g)
    W = torch.ops.sb_native.qimad_fidelity(alpha.to(CUDA), beta.to(CUDA), mask.to(CUDA), 3.0,
                                           1e-8)
    diff = max_diff((W,), (args[4][1],))
    results = [(diff <= TOL[dtype], f"qimad_fidelity {tag}: max |cuda - cpu| = {diff:.2e}")]
    for sequential in (False, True):
        cpu = [a.clone() if torch.is_tensor(a) else a for a in args] + [sequential]
        gpu = [a.to(CUDA) if torch.is_tensor(a) else a for a in cpu]
        torch.ops.sb_native.qimad_update(*cpu)
        torch.ops.sb_native.qimad_update(*gpu)
        diff = max_diff(gpu[:2], cpu[:2])
        order = "sequential " if sequential else "synchronous"
        results.append((diff <= TOL[dtype], f"qimad_update   {tag} {order}: max |cuda - cpu| = "
                                            f"{diff:.2e} (theta, square_avg)"))
    return results


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


def cuda_vs_cpu_and(path, name, J, x, m, steps, heat, discrete):
    """Runs op `name` from (x, m) on the CPU, on the GPU, and on the GPU inside the context
    path(); returns (max |cuda - cpu|, max |cuda - cuda under path|)."""
    cx, cm = x.clone(), m.clone()
    gx, gm = x.to(CUDA), m.to(CUDA)
    ex, em = x.to(CUDA), m.to(CUDA)
    run_op(name, J, cx, cm, steps, heat, discrete)
    run_op(name, J.to(CUDA), gx, gm, steps, heat, discrete)
    with path():
        run_op(name, J.to(CUDA), ex, em, steps, heat, discrete)
    return max_diff((gx, gm), (cx, cm)), max_diff((gx, gm), (ex.cpu(), em.cpu()))


def incremental_parity(dtype, g):
    """The incremental dSB kernel (n = 700, 37 agents) against the CPU kernel and the
    GEMM-per-step path: integer weights, so the states must be identical."""
    n, agents, steps = 700, 37, 200
    results = []
    for heat in (0.0, 0.006):
        J = symmetric(n, dtype, g, integer=True)
        x = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
        m = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
        for name in ("sb_run", "sb_run_int8"):
            cpu, gemm = cuda_vs_cpu_and(recompute_field, name, J, x, m, steps, heat, True)
            results.append((cpu == gemm == 0.0,
                            f"{name:10} incremental n={n} {str(dtype)[6:]:7} dSB heat={heat}: "
                            f"max |cuda - cpu| = {cpu:.2e}, max |incremental - gemm path| = "
                            f"{gemm:.2e}"))
    return results


def persistent_parity(dtype, g):
    """The persistent kernel (n = 100, 37 agents: a partial agent tile) against the CPU
    kernel and the GEMM path on the GPU; dSB on integer weights must match exactly."""
    n, agents = 100, 37
    steps = 200 if dtype == torch.float64 else 50
    results = []
    for discrete in (False, True):
        for heat in (0.0, 0.006):
            J = symmetric(n, dtype, g, integer=discrete)
            x = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
            m = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
            for name in ("sb_run",) + (("sb_run_int8",) if discrete else ()):
                cpu, gemm = cuda_vs_cpu_and(gemm_path, name, J, x, m, steps, heat, discrete)
                # Integer weights: exact fields, the same per-element arithmetic everywhere.
                ok = (cpu == gemm == 0.0) if discrete else max(cpu, gemm) <= TOL[dtype]
                tag = f"{str(dtype)[6:]:7} {'dSB' if discrete else 'bSB'} heat={heat}"
                results.append((ok, f"{name:10} persistent n={n} {tag}: max |cuda - cpu| = "
                                    f"{cpu:.2e}, max |persistent - gemm path| = {gemm:.2e}"))
    return results


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
            reference = steps_per_second(lambda k: fallback.sb_run(J, x, m, 0, k, *env, True), steps)
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
            reference = steps_per_second(lambda k: fallback.sb_run(J, x, m, 0, k, *env), steps)
            for op, run in kernels.items():
                ours = steps_per_second(run, steps)
                with gemm_path():
                    gemm = steps_per_second(run, steps)
                print(f"n={n:4} {mode} {op:12}: persistent {ours:10.1f} steps/s, "
                      f"GEMM path {gemm:10.1f}, torch {reference:10.1f}, "
                      f"ratio {ours / reference:6.2f}x (vs GEMM path {ours / gemm:6.2f}x)")


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
            lambda k: [_kernels.update(backend, *gpu) for _ in range(k)], steps)
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
    qimad_timing(min(args.steps, 50))
    print("\nparity: " + ("all passed" if passed else "FAILED"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
