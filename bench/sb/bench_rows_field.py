"""A rank's dSB finish (sb_rows_step) with its field corrected by the flips (field and
previous) against the whole product, by the share of signs that changed since the step
before, on one thread: a random block of rows with integer +-1 weights (the rows of a sparse
Max-Cut, degree --degree), packed signs of every gathered variable. Also the begin-only call
(the element-wise part of a step, which both pay). Same process, same block, interleaved.

    python bench/sb/bench_rows_field.py [--rows 20000] [--agents 32] [--degree 4]
"""

import argparse
import time

import torch

import sb_native  # noqa: F401  (registers torch.ops.sb_native)
from sb_native.engine import reference

SHARES = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5)


def packed(positions: torch.Tensor) -> torch.Tensor:
    words = torch.zeros(positions.shape[0] + 1, (positions.shape[1] + 63) // 64,
                        dtype=torch.int64)
    reference.sb_rows_pack(positions, words, False)
    return words[:-1].contiguous()


def timed(call, repeats: int) -> float:
    for _ in range(3):
        call()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--degree", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    rows, gathered_rows, agents = args.rows, 2 * args.rows, args.agents
    col = torch.randint(0, gathered_rows, (rows, args.degree), generator=g).sort(dim=1)
    col = col.values.reshape(-1)
    crow = torch.arange(0, rows * args.degree + 1, args.degree)
    values = (2 * torch.randint(0, 2, (rows * args.degree,), generator=g) - 1).float()
    x = 2 * torch.rand(rows, agents, generator=g) - 1
    m = torch.zeros_like(x)
    positions = 2 * torch.rand(gathered_rows, agents, generator=g) - 1
    now, field, empty = packed(positions), torch.zeros_like(x), torch.empty(0)
    step = torch.ops.sb_native.sb_rows_step
    coefs = (-0.1, 0.01, 0.1, 0.0)

    def whole():
        step(crow, col, values, now, x, m, empty, *coefs, True, True)

    def begin():
        step(crow, col, values, now, x, m, empty, *coefs, False, True)

    print(f"sb_rows_step, {rows} rows of degree {args.degree}, {agents} agents, float32, "
          "1 thread; microseconds per call")
    print("| changed signs | whole product | field corrected | corrected / whole | "
          "begin only |")
    print("|---|---|---|---|---|")
    for share in SHARES:
        flips = torch.rand(gathered_rows, agents, generator=g) < share
        before = packed(torch.where(flips, -positions, positions))

        def corrected():
            step(crow, col, values, now, x, m, empty, *coefs, True, True, field, before)

        times = [timed(call, args.repeats) * 1e6 for call in (whole, corrected, begin)]
        print(f"| {share:.1%} | {times[0]:.0f} | {times[1]:.0f} | "
              f"{times[1] / times[0]:.2f} | {times[2]:.0f} |")


if __name__ == "__main__":
    main()
