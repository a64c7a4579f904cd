"""The cost of starting dSB's op calls on a fixed grid of steps (Coupling.field_period), which
makes a run on non-integer weights independent of the clock (docs/reliability.md,
determinism): the same seeded minimize on the grid and with calls sized by the clock (the
earlier rule), alternated in one run, on a dense coupling (agents by agent, incremental
field), a sparse one (CSR) and a batch of small problems (sb_run_batched), with and without
early stopping. Prints seconds, the ratio grid / clock and the grid's period.

    python bench/sb/bench_field_grid.py --repeats 3
"""

import argparse
import time
import warnings

import torch

import sb_native as sb
from sb_native.engine import Coupling
from sb_native.engine.batched import CouplingBatch


def gaussian(n: int, density: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    J = torch.triu(torch.randn(n, n, generator=g) * (torch.rand(n, n, generator=g) < density), 1)
    return J + J.t()


def cases():
    dense = gaussian(2000, 1.0, 1)
    sparse = gaussian(20000, 4 / 20000, 2).to_sparse()
    batch = torch.stack([gaussian(64, 1.0, 10 + b) for b in range(1000)])
    common = dict(domain="spin", mode="discrete", verbose=False, seed=0, best_only=True)
    yield "dense 2000, 128 agents, 2000 steps", dense, dict(agents=128, max_steps=2000,
                                                           early_stopping=False, **common)
    yield "dense 2000, 128 agents, early stopping", dense, dict(agents=128, max_steps=2000,
                                                               **common)
    yield "CSR 20000 (4 per row), 64 agents, 2000 steps", sparse, dict(
        agents=64, max_steps=2000, early_stopping=False, **common)
    yield "batch 1000 x 64, 32 agents, 1000 steps", batch, dict(agents=32, max_steps=1000,
                                                               early_stopping=False, **common)


def timed(problem, options) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sb.minimize(problem, **options)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    grid_period, batch_period = Coupling.field_period, CouplingBatch.field_period
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| case | period (steps) | grid s | clock s | grid / clock |")
    print("|---|---|---|---|---|")
    for name, problem, options in cases():
        if problem.dim() == 3:
            period = CouplingBatch(problem, problem, torch.zeros(len(problem)),
                                   [problem.shape[1]] * len(problem)).field_period(
                options["agents"], "native", True)
        else:
            period = Coupling.dense(problem.to_dense()).field_period(
                options["agents"], "native", True)
        grid, clock = [], []
        for _ in range(args.repeats):
            grid.append(timed(problem, options))
            Coupling.field_period = lambda *a, **k: None  # type: ignore[method-assign]
            CouplingBatch.field_period = lambda *a, **k: None  # type: ignore[method-assign]
            try:
                clock.append(timed(problem, options))
            finally:
                Coupling.field_period = grid_period  # type: ignore[method-assign]
                CouplingBatch.field_period = batch_period  # type: ignore[method-assign]
        g, c = min(grid), min(clock)
        print(f"| {name} | {period} | {g:.3f} | {c:.3f} | {g / c:.2f} |")


if __name__ == "__main__":
    main()
