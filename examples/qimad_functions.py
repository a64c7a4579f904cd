"""Minimising box-bounded test functions with qimad_minimize, in the style of scipy.optimize.

Shows `sb_native.qimad_minimize`: a QIMAD swarm over a box, every agent evaluated in one call
of a batched function of an (agents, d) tensor, gradients by autograd. The functions are the
QIMAD authors' benchmark (Rastrigin, Ackley, Rosenbrock at d=10, 8 agents, 150 iterations);
bench/qimad/bench_qimad_functions.py measures them against PSO and scipy over 30 seeds.

    python examples/qimad_functions.py              # 5 seeds per function
    python examples/qimad_functions.py --small      # 1 seed, 40 iterations
"""

import argparse
import math
import statistics

import torch

import sb_native


def rastrigin(X):
    return 10 * X.shape[1] + (X * X - 10 * torch.cos(2 * math.pi * X)).sum(1)


def ackley(X):
    d = X.shape[1]
    return (-20 * torch.exp(-0.2 * torch.sqrt((X * X).sum(1) / d))
            - torch.exp(torch.cos(2 * math.pi * X).sum(1) / d) + 20 + math.e)


def rosenbrock(X):
    return (100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1 - X[:, :-1]) ** 2).sum(1)


FUNCTIONS = {"Rastrigin": (rastrigin, 5.12, 5.12), "Ackley": (ackley, 32.768, 32.768),
             "Rosenbrock": (rosenbrock, 5.0, 10.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description="qimad_minimize on box-bounded functions.")
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="1 seed, 40 iterations")
    args = parser.parse_args()
    seeds, iterations = (1, 40) if args.small else (args.seeds, args.iterations)
    for name, (fun, below, above) in FUNCTIONS.items():
        box = [(-below, above)] * args.dim
        results = [sb_native.qimad_minimize(fun, box, maxiter=iterations, seed=seed)
                   for seed in range(seeds)]
        best = min(results, key=lambda r: r.fun)
        # What a random point of the box scores, for scale: the mean over 1000 of them.
        points = torch.rand(1000, args.dim, generator=torch.Generator().manual_seed(0),
                            dtype=torch.float64) * (above + below) - below
        print(f"{name}: mean best {statistics.mean(r.fun for r in results):.4f} over {seeds} "
              f"seed(s), {best.nfev} values each; random point {float(fun(points).mean()):.4f};"
              f" best x[:3] {[round(v, 3) for v in best.x[:3].tolist()]}")


if __name__ == "__main__":
    main()
