"""Final digits loss of QIMADTorch against the reference over many seeds, in both update
orders: the reference moves agents one after another, so agent i's communication term reads
the already-moved positions of agents 0..i-1 (Gauss-Seidel); QIMADTorch's default updates all
agents from the positions before the step (synchronous, as issue 4 asks), and
update_order="sequential" moves them in the reference's order, which changes nothing else
(tests/qimad/test_qimad.py::test_sequential_order_is_the_reference_exactly).

    cd bench && ../.venv/bin/python qimad_update_order.py --seeds 20 [--jobs 2] [--backend torch]

Prints a markdown table (mean, standard deviation and per-seed values of the best loss after
the steps); digits MLP 64-128-10, full batch, N=8, eta=0.01, as in bench_qimad.py.
"""

import argparse
import math
import multiprocessing
import statistics

import torch
from bench_qimad import NOISE_SEED_OFFSET, DigitsContender, digits, load_reference

from sb_native.optim import QIMADTorch

RUNS = ("reference (sequential order)", "QIMADTorch, update_order='synchronous' (default)",
        "QIMADTorch, update_order='sequential'")
_data = {}


def final_loss(run, seed, steps, backend):
    """Best loss after `steps` steps of one run (a name in RUNS) from one seed, on one thread."""
    torch.set_num_threads(1)
    if not _data:  # once per process
        _data["X"], _data["y"] = digits()
        _data["reference"] = load_reference()
    kw = dict(num_agents=8, eta=0.01)
    if run == RUNS[0]:
        make = lambda ps: _data["reference"](ps, seed=seed, **kw)  # noqa: E731
    else:
        order = "sequential" if run == RUNS[2] else "synchronous"
        make = lambda ps: QIMADTorch(ps, seed=seed, backend=backend,  # noqa: E731
                                     update_order=order, **kw)
    c = DigitsContender(make, _data["X"], _data["y"], seed, "step")
    # The reference's tunnelling noise, seeded as in bench_qimad.
    torch.manual_seed(NOISE_SEED_OFFSET + seed)
    for _ in range(steps):
        c.step()
    return c.best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes, one thread each (each seed's result is the same)")
    parser.add_argument("--backend", default="native", choices=("native", "torch"),
                        help="QIMADTorch's backend")
    args = parser.parse_args()
    runs = RUNS if load_reference() is not None else RUNS[1:]
    tasks = [(run, seed, args.steps, args.backend) for run in runs for seed in range(args.seeds)]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            losses = pool.starmap(final_loss, tasks, chunksize=1)
    else:
        losses = [final_loss(*task) for task in tasks]
    by_run = {name: losses[k * args.seeds:(k + 1) * args.seeds] for k, name in enumerate(runs)}
    print(f"digits MLP 64-128-10, N=8, eta=0.01, {args.steps} steps, seeds 0..{args.seeds - 1}, "
          f"QIMADTorch backend {args.backend}\n")
    print("| run | mean best loss | std | per seed |")
    print("|---|---|---|---|")
    for name, values in by_run.items():
        print(f"| {name} | {statistics.mean(values):.5f} | {statistics.stdev(values):.5f} | "
              f"{', '.join(f'{v:.4f}' for v in values)} |")
    if len(runs) == 3:
        ref, sync, seq = by_run.values()
        print("\n| comparison | ratio of means | difference | standard error | difference / SE |")
        print("|---|---|---|---|---|")
        for name, a, b in (("synchronous / reference", sync, ref),
                           ("sequential / reference", seq, ref),
                           ("synchronous / sequential", sync, seq)):
            diff = statistics.mean(a) - statistics.mean(b)
            se = math.sqrt((statistics.variance(a) + statistics.variance(b)) / args.seeds)
            print(f"| {name} | {statistics.mean(a) / statistics.mean(b):.4f} | {diff:.5f} | "
                  f"{se:.5f} | {diff / se:.2f} |")


if __name__ == "__main__":
    main()
