"""Final digits loss of QIMADTorch against the reference over many seeds, with an ablation of
the update order: the reference moves agents one after another, so agent i's communication
term reads the already-moved positions of agents 0..i-1 (Gauss-Seidel); QIMADTorch updates
all agents from the positions before the step (synchronous, as issue 4 asks). The ablation
runs QIMADTorch's own update one agent at a time in agent order, which restores the
reference's order and changes nothing else. Both QIMADTorch runs use the torch backend, whose
step (sb_native/optim/_kernels.py: step_torch) calls update_torch, the function the ablation
replaces; the native backend runs the same dynamics in one call into the extension.

    cd bench && ../.venv/bin/python qimad_update_order.py --seeds 20 [--jobs 2]

Prints a markdown table (mean, standard deviation and per-seed values of the best loss after
the steps); digits MLP 64-128-10, full batch, N=8, eta=0.01, as in bench_qimad.py.
"""

import argparse
import math
import multiprocessing
import statistics

import torch

from bench_qimad import NOISE_SEED_OFFSET, DigitsContender, digits, load_reference
from sb_native.optim import QIMADTorch, _kernels

_synchronous_update = _kernels.update_torch


def sequential_update(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta,
                      seg_gamma, seg_w, tunnel_rows, noise, temperature, decay, eps):
    """The same update applied to one agent at a time, in agent order."""
    tunnels = tunnel_rows.tolist()
    for r in rows.tolist():
        mine = [k for k, t in enumerate(tunnels) if t == r]
        _synchronous_update(theta, square_avg, grad, best, W, rows.new_tensor([r]),
                            attract, segments, seg_eta, seg_gamma, seg_w,
                            tunnel_rows.new_tensor([r] if mine else []), noise[mine],
                            temperature, decay, eps)


RUNS = ("reference (sequential order)", "QIMADTorch (synchronous, default)",
        "QIMADTorch, ablation: sequential order")
_data = {}


def final_loss(run, seed, steps):
    """Best loss after `steps` steps of one run (a name in RUNS) from one seed, on one thread."""
    torch.set_num_threads(1)
    if not _data:  # once per process
        _data["X"], _data["y"] = digits()
        _data["reference"] = load_reference()
    kw = dict(num_agents=8, eta=0.01)
    if run == RUNS[0]:
        make = lambda ps: _data["reference"](ps, seed=seed, **kw)  # noqa: E731
    else:
        make = lambda ps: QIMADTorch(ps, seed=seed, backend="torch", **kw)  # noqa: E731
    c = DigitsContender(make, _data["X"], _data["y"], seed, "step")
    torch.manual_seed(NOISE_SEED_OFFSET + seed)  # the reference's tunnelling noise, as in bench_qimad
    _kernels.update_torch = sequential_update if run == RUNS[2] else _synchronous_update
    try:
        for _ in range(steps):
            c.step()
    finally:
        _kernels.update_torch = _synchronous_update
    return c.best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes, one thread each (each seed's result is the same)")
    args = parser.parse_args()
    runs = RUNS if load_reference() is not None else RUNS[1:]
    tasks = [(run, seed, args.steps) for run in runs for seed in range(args.seeds)]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            losses = pool.starmap(final_loss, tasks, chunksize=1)
    else:
        losses = [final_loss(*task) for task in tasks]
    by_run = {name: losses[k * args.seeds:(k + 1) * args.seeds] for k, name in enumerate(runs)}
    print(f"digits MLP 64-128-10, N=8, eta=0.01, {args.steps} steps, seeds 0..{args.seeds - 1}\n")
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
                           ("sequential ablation / reference", seq, ref),
                           ("synchronous / sequential ablation", sync, seq)):
            diff = statistics.mean(a) - statistics.mean(b)
            se = math.sqrt((statistics.variance(a) + statistics.variance(b)) / args.seeds)
            print(f"| {name} | {statistics.mean(a) / statistics.mean(b):.4f} | {diff:.5f} | "
                  f"{se:.5f} | {diff / se:.2f} |")


if __name__ == "__main__":
    main()
