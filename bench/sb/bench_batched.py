"""Many small problems in one call: the batched minimize against a Python loop of one-problem
calls (sb_native and simulated-bifurcation 2.0.0), and against the floor of the work.

    python bench/sb/bench_batched.py                       # the two RESULTS configurations
    python bench/sb/bench_batched.py --problems 500 --n 64 --loop-problems 50 --peer-problems 5
    python bench/sb/bench_batched.py --op --problems 1000 --n 256 --modes discrete

Every solver runs whole `minimize` calls: spin domain, random integer couplings in [-3, 3]
(so dSB's incremental field is exact and each problem of the batch must equal its own call,
bit for bit: the "identical" column checks it on the loop's problems), float32,
early stopping off, a fixed number of steps, problem b with seed b (the batch with seed 0,
whose problem b uses seed 0 + b). The loops run on the first problems only and their time
per problem is scaled to the whole batch (stated in the table). The floor is the product
alone: 2 n^2 agents FLOP per problem-step at the rate of a bare GEMM measured in the same
run, both the machine's large-GEMM rate and a batched product (bmm) of the problems' shape.
--op times sb_run_batched's calls alone instead: a call's fixed set-up shows in a call of one
step beside one of 16.
"""

import argparse
import platform
import time
import warnings

import torch

import sb_native as sb

CONFIGS = [dict(problems=10_000, n=64), dict(problems=1_000, n=256)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gemm_rate(n: int = 1024, reps: int = 20) -> float:
    """FLOP/s of a large float32 torch.mm: the machine's GEMM rate."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return 2 * n ** 3 * reps / timed(lambda: [torch.mm(a, b) for _ in range(reps)])


def bmm_rate(n: int, agents: int, batch: int = 256, reps: int = 20) -> float:
    """FLOP/s of torch.bmm on (batch, n, n) x (batch, n, agents): the product of a step."""
    J, x = torch.randn(batch, n, n), torch.randn(batch, n, agents)
    torch.bmm(J, x)
    return 2 * n * n * agents * batch * reps / timed(
        lambda: [torch.bmm(J, x) for _ in range(reps)])


def op_calls(problems: int, n: int, agents: int, mode: str, reps: int = 5) -> None:
    """sb_run_batched alone on symmetric integer couplings: the best of reps calls of 1 and of
    16 steps (a call's set-up, each problem's columns and field, is in both)."""
    g = torch.Generator().manual_seed(n)
    J = torch.randint(-3, 4, (problems, n, n), generator=g).float().triu(1)
    J = J + J.transpose(1, 2)
    x = 2 * torch.rand(problems, n, agents, generator=g) - 1
    m = 2 * torch.rand(problems, n, agents, generator=g) - 1
    active = torch.ones(problems, dtype=torch.bool)
    q = torch.full((problems,), 0.1 * 0.5 * (n - 1) ** 0.5 / float(J[0].norm()),
                   dtype=torch.float64)
    times = {}
    for steps in (1, 16):
        def call():
            torch.ops.sb_native.sb_run_batched(J, x.clone(), m.clone(), active, 0, steps, 0.1,
                                               0.01, q, 0.0, mode == "discrete")
        times[steps] = min(timed(call) for _ in range(reps))
    print(f"| {problems} | {n} | {mode} | {times[1] * 1e3:.1f} | {times[16] * 1e3:.1f} |",
          flush=True)


def run(problems: int, n: int, agents: int, steps: int, mode: str, loop_problems: int,
        peer_problems: int, peer) -> dict:
    g = torch.Generator().manual_seed(n)
    Q = torch.randint(-3, 4, (problems, n, n), generator=g).float()
    options = dict(domain="spin", agents=agents, max_steps=steps, early_stopping=False,
                   verbose=False, mode=mode)
    row = {"problems": problems, "n": n, "mode": mode}
    vectors = None

    def batched():
        nonlocal vectors
        vectors, _ = sb.minimize(Q, seed=0, **options)

    row["batched"] = timed(batched)
    loop = min(loop_problems, problems)
    alone = []
    row["loop"] = timed(lambda: alone.extend(
        sb.minimize(Q[b], seed=b, **options)[0] for b in range(loop))) * problems / loop
    row["identical"] = all(torch.equal(alone[b], vectors[b]) for b in range(loop))
    row["loop_problems"] = loop
    if peer is not None:
        count = min(peer_problems, problems)

        def peer_loop():
            for b in range(count):
                torch.manual_seed(b)
                peer.minimize(Q[b], **options)
        row["peer"] = timed(peer_loop) * problems / count
        row["peer_problems"] = count
    flop = 2.0 * n * n * agents * steps * problems
    row["floor_gemm"] = flop / gemm_rate()
    row["floor_bmm"] = flop / bmm_rate(n, agents)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, help="one configuration: batch size")
    parser.add_argument("--n", type=int, help="one configuration: variables per problem")
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--modes", nargs="+", default=["ballistic", "discrete"])
    parser.add_argument("--loop-problems", type=int, default=300,
                        help="problems timed in the sb_native loop (scaled to the batch)")
    parser.add_argument("--peer-problems", type=int, default=30,
                        help="problems timed in the peer loop (scaled to the batch)")
    parser.add_argument("--op", action="store_true",
                        help="time the op's calls alone (1 and 16 steps), not whole runs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    try:
        import simulated_bifurcation as peer
    except ImportError:
        peer = None
    configs = CONFIGS if args.problems is None else [dict(problems=args.problems, n=args.n)]
    info = sb.backend_info()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, native {info['native']}, agents {args.agents}, "
          f"steps {args.steps}, float32, early stopping off")
    if args.op:
        print("| problems | n | mode | call of 1 step ms | call of 16 steps ms |")
        print("|---|---|---|---|---|")
        for config in configs:
            for mode in args.modes:
                op_calls(config["problems"], config["n"], args.agents, mode)
        return
    print("| problems | n | mode | batched s | sb_native loop s | peer loop s | floor s (GEMM) "
          "| floor s (bmm) | loop/batched | peer/batched | batched/floor (GEMM) "
          "| batched/floor (bmm) | identical |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        for mode in args.modes:
            r = run(config["problems"], config["n"], args.agents, args.steps, mode,
                    args.loop_problems, args.peer_problems, peer)
            peer_s = f"{r['peer']:.1f} ({r['peer_problems']} run)" if "peer" in r else "n/a"
            peer_ratio = f"{r['peer'] / r['batched']:.1f}x" if "peer" in r else "n/a"
            print(f"| {r['problems']} | {r['n']} | {mode} | {r['batched']:.2f} "
                  f"| {r['loop']:.2f} ({r['loop_problems']} run) | {peer_s} "
                  f"| {r['floor_gemm']:.2f} | {r['floor_bmm']:.2f} "
                  f"| {r['loop'] / r['batched']:.2f}x | {peer_ratio} "
                  f"| {r['batched'] / r['floor_gemm']:.2f}x | {r['batched'] / r['floor_bmm']:.2f}x "
                  f"| {'yes' if r['identical'] else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
