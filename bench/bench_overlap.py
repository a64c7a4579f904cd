"""Would overlapping a rows step's all_gather with the rank's own product pay on this machine?

Variables across ranks (engine/rows.py) gather every rank's block of f(x) each step, then take
the block's product. Overlapping the two (an async all_gather, the product of the columns the
rank already holds meanwhile, the rest after the wait) can hide at most the gather's time,
and only if the transport moves the bytes without the cores the product needs. This measures
that on 2 gloo ranks of 1 thread (127.0.0.1), for a gathered block of each size given and a
stand-in product (float32 matrix products on the rank's thread) of each duration given:
the all_gather alone, the product alone, and the all_gather started async before the product
and waited for after it (medians over --repeats, each between barriers).

    .venv/bin/python bench/bench_overlap.py [--cases 0.08:4.7 4:171] [--repeats 15]

A case is MiB:ms, the block a rank sends and the product's time: the defaults are G81's and
torus1000's dSB blocks of packed signs (32 agents) and their ops' times per step on 2 ranks
(bench/RESULTS.md, variables across ranks).
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import free_port, leave_rank  # noqa: E402

SIDE = 256  # the stand-in product's matrices: small enough to run in cache on one thread


def product_for(ms: float):
    """A function taking about ms milliseconds on this thread."""
    a, b = torch.randn(SIDE, SIDE), torch.randn(SIDE, SIDE)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.2:
        torch.mm(a, b)
        calls += 1
    per_call = 0.2 / calls
    count = max(1, round(ms / 1000 / per_call))

    def product():
        for _ in range(count):
            torch.mm(a, b)
    return product


def _rank(rank, world, port, directory, cases, repeats):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=120))
    lines = []
    for mib, ms in cases:
        send = torch.zeros(max(1, int(mib * 2**20) // 8), dtype=torch.int64)
        gathered = torch.empty(world * send.numel(), dtype=torch.int64)
        product = product_for(ms)

        def gather():
            dist.all_gather_into_tensor(gathered, send)

        def overlapped():
            work = dist.all_gather_into_tensor(gathered, send, async_op=True)
            product()
            work.wait()

        def median_ms(f):
            times = []
            for _ in range(repeats):
                dist.barrier()
                start = time.perf_counter()
                f()
                dist.barrier()
                times.append(time.perf_counter() - start)
            return sorted(times)[len(times) // 2] * 1000

        g, p, both = median_ms(gather), median_ms(product), median_ms(overlapped)
        hidden = (g + p - both) / g if g > 0 else 0.0
        lines.append(f"| {mib:g} | {g:.2f} | {p:.1f} | {both:.1f} | {g + p:.1f} | "
                     f"{hidden:.0%} | {(g + p) / both:.3f} |")
    leave_rank(rank, directory, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["0.08:4.7", "4:171"])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    cases = [tuple(float(v) for v in case.split(":")) for case in args.cases]
    with tempfile.TemporaryDirectory() as directory:
        mp.start_processes(_rank, args=(2, free_port(), directory, cases, args.repeats),
                           nprocs=2, start_method="spawn")
        lines = torch.load(os.path.join(directory, "0.pt"))
    print(f"2 gloo ranks x 1 thread, torch {torch.__version__}, medians of {args.repeats}")
    print("| MiB sent per rank | all_gather ms | product ms | overlapped ms | sum ms "
          "| gather hidden | speed-up |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
