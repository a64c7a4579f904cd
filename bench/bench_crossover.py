"""Measures the flip-fraction crossover of the incremental dSB local field: a full dSB run
(agents=128, float32, in 50-step calls as with early stopping) for several values of
SB_NATIVE_FLIP_CROSSOVER, on the three field kinds: dense float (non-integer weights),
int8 (K2000-like ±1 weights) and CSR (G22-like sparse graph). Fraction 0 recomputes F at
every step; 1 always corrects it flip by flip.

    python bench/bench_crossover.py --steps 1000
"""

import argparse
import os
import time

import torch

import sb_native  # noqa: F401  (registers the ops)
from sb_native import _sparse
from cases import complete_pm1, random_sparse_edges

FRACTIONS = [0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 1.0]


def couplings(n_dense: int, n_sparse: int):
    pm1 = 0.5 * complete_pm1(n_dense)
    g = torch.Generator().manual_seed(1)
    real = torch.triu(torch.randn(n_dense, n_dense, generator=g), 1)
    real = real + real.t()
    edges = random_sparse_edges(n_sparse, 10 * n_sparse)
    ends = edges[:, :2].long().t()
    sparse = _sparse.coo(torch.cat([ends, ends.flip(0)], 1),
                         torch.ones(2 * ends.shape[1]), (n_sparse, n_sparse))
    csr = _sparse.to_csr_parts(sparse)
    q = lambda norm, n: 0.1 * 0.5 * (n - 1) ** 0.5 / norm  # noqa: E731
    return {
        "dense float": (n_dense, lambda x, m, s, k: torch.ops.sb_native.sb_run(
            real, x, m, s, k, 0.1, 0.01, q(float(real.norm()), n_dense), 0.0, True)),
        "int8": (n_dense, lambda x, m, s, k: torch.ops.sb_native.sb_run_int8(
            (2 * pm1).to(torch.int8), 0.5, x, m, s, k, 0.1, 0.01, q(float(pm1.norm()), n_dense), 0.0)),
        "CSR": (n_sparse, lambda x, m, s, k: torch.ops.sb_native.sb_run_csr(
            *csr, x, m, s, k, 0.1, 0.01, q(float(csr[2].norm()), n_sparse), 0.0, True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=128)
    parser.add_argument("--n-dense", type=int, default=2000)
    parser.add_argument("--n-sparse", type=int, default=2000)
    parser.add_argument("--fractions", type=float, nargs="*", default=FRACTIONS)
    args = parser.parse_args()
    print(f"dSB, {args.steps} steps in 50-step calls, agents={args.agents}: ms per step")
    print("| field | n | " + " | ".join(str(f) for f in args.fractions) + " |")
    print("|---|---|" + "---|" * len(args.fractions))
    for name, (n, run) in couplings(args.n_dense, args.n_sparse).items():
        cells = []
        for fraction in args.fractions:
            os.environ["SB_NATIVE_FLIP_CROSSOVER"] = str(fraction)
            g = torch.Generator().manual_seed(2)
            x = 2 * torch.rand(n, args.agents, generator=g) - 1
            m = 2 * torch.rand(n, args.agents, generator=g) - 1
            start = time.perf_counter()
            for step in range(0, args.steps, 50):
                run(x, m, step, min(50, args.steps - step))
            cells.append(f"{(time.perf_counter() - start) / args.steps * 1e3:.3f}")
        os.environ.pop("SB_NATIVE_FLIP_CROSSOVER")
        print(f"| {name} | {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
