"""Where sparse (CSR) storage beats dense storage on the native engine: time per step of
sb_run vs sb_run_csr on random +-1 graphs of growing edge density, in one run, and for dSB
also sb_run_int8 (the dense path integer couplings take). The crossover sets
sb_native.engine.SPARSE_DENSITY (what backend="auto" uses).

    python bench/sb/bench_density.py --n 2000 --steps 200
"""

import argparse
import time

import torch

from sb_native import _sparse


def per_step(fn, steps: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--densities", type=float, nargs="*",
                        default=[0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2])
    args = parser.parse_args()
    n, agents, steps = args.n, args.agents, args.steps
    print(f"n={n}, agents={agents}, steps={steps}, float32, ms/step")
    print("| density | mode | dense | CSR | dense/CSR | dense int8 | int8/CSR |")
    print("|---|---|---|---|---|---|---|")
    for density in args.densities:
        g = torch.Generator().manual_seed(0)
        upper = torch.triu((torch.rand(n, n, generator=g) < density) *
                           torch.where(torch.rand(n, n, generator=g) < 0.5, -1.0, 1.0), 1)
        J = upper + upper.t()
        csr = _sparse.to_csr_parts(J.to_sparse_coo())
        q = 0.5 * (n - 1) ** 0.5 / float(J.norm()) * 0.1
        for discrete in (False, True):
            x0 = 2 * torch.rand(n, agents, generator=g) - 1
            m0 = 2 * torch.rand(n, agents, generator=g) - 1
            x, m = x0.clone(), m0.clone()
            dense = per_step(lambda: torch.ops.sb_native.sb_run(
                J, x, m, 0, steps, 0.1, 0.01, q, 0.0, discrete), steps)
            x, m = x0.clone(), m0.clone()
            sparse = per_step(lambda: torch.ops.sb_native.sb_run_csr(
                *csr, x, m, 0, steps, 0.1, 0.01, q, 0.0, discrete), steps)
            int8 = "| - | - |"
            if discrete:
                x, m = x0.clone(), m0.clone()
                K = J.to(torch.int8)
                t = per_step(lambda: torch.ops.sb_native.sb_run_int8(
                    K, 1.0, x, m, 0, steps, 0.1, 0.01, q, 0.0), steps)
                int8 = f"| {t * 1e3:.3f} | {t / sparse:.2f} |"
            mode = "dSB" if discrete else "bSB"
            print(f"| {density} | {mode} | {dense * 1e3:.3f} | {sparse * 1e3:.3f} | "
                  f"{dense / sparse:.2f} {int8}", flush=True)


if __name__ == "__main__":
    main()
