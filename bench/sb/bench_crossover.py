"""Measures the flip-fraction crossover of the small dense dSB kernel (n <= 256,
csrc/sb/cpu/sb_small_dense.h), which keeps a local field per block of agents and recomputes it
with its block product when more than SB_NATIVE_FLIP_CROSSOVER of a block's signs flip in a
step: a full dSB run (agents=128, float32, in 50-step calls as with early stopping) per
fraction, for a float coupling (non-integer weights) and an int8 one (±1 weights). Fraction
0 recomputes F at every step; 1 always corrects it flip by flip.

Larger problems and CSR couplings run dSB agent by agent (csrc/sb/cpu/sb_discrete.h): there a
correction costs one column of J, 1/n of the agent's product, and flips stay under 5% of the
variables per step, so they are always corrected and have no crossover to measure.

    python bench/sb/bench_crossover.py --steps 1000
"""

import argparse
import os
import time

import torch
from cases import complete_pm1

import sb_native  # noqa: F401  (registers the ops)

FRACTIONS = [0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 1.0]


def couplings(n: int):
    pm1 = 0.5 * complete_pm1(n)
    g = torch.Generator().manual_seed(1)
    real = torch.triu(torch.randn(n, n, generator=g), 1)
    real = real + real.t()
    q = lambda norm: 0.1 * 0.5 * (n - 1) ** 0.5 / norm  # noqa: E731
    return {
        "dense float": (n, lambda x, m, s, k: torch.ops.sb_native.sb_run(
            real, x, m, s, k, 0.1, 0.01, q(float(real.norm())), 0.0, True)),
        "int8": (n, lambda x, m, s, k: torch.ops.sb_native.sb_run_int8(
            (2 * pm1).to(torch.int8), 0.5, x, m, s, k, 0.1, 0.01, q(float(pm1.norm())), 0.0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=128)
    parser.add_argument("--n", type=int, nargs="*", default=[100, 256])
    parser.add_argument("--fractions", type=float, nargs="*", default=FRACTIONS)
    args = parser.parse_args()
    print(f"dSB, {args.steps} steps in 50-step calls, agents={args.agents}: ms per step")
    print("| field | n | " + " | ".join(str(f) for f in args.fractions) + " |")
    print("|---|---|" + "---|" * len(args.fractions))
    for name, (n, run) in (item for size in args.n for item in couplings(size).items()):
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
