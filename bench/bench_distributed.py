"""Agents across ranks against one process, on the same cores: throughput ratio table.

For each instance, dSB with a fixed number of steps (no early stopping) runs
  one process  with torch.set_num_threads(RANKS): the agents in one call per chunk;
  RANKS ranks  of one thread each (gloo, spawned here on 127.0.0.1), process_group=True;
and the table gives agent-steps per second and the ratio ranks / one process (the issue's
target on the 2-core machine: >= 0.9). The distributed run's time is rank 0's, from a
barrier before the call to its return (the spins gathered), so it includes the
collectives. Both runs are checked to return the same cut (the same seed).

    .venv/bin/python bench/bench_distributed.py [--ranks 2] [--agents 64] [--steps 400]
                                                [--instances G22 K2000 G81]
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

sys.path.insert(0, str(Path(__file__).resolve().parent / "sb"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cases import dense_case, sparse_case  # noqa: E402

from tests.helpers import free_port  # noqa: E402


def load(name):
    return dense_case(2000) if name == "K2000" else sparse_case(name)


def solve(model, args, group):
    return model.maximize(agents=args.agents, max_steps=args.steps, early_stopping=False,
                          mode="discrete", seed=0, verbose=False, process_group=group)


def _rank(rank, world, port, directory, args):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=600))
    results = {}
    for name in args.instances:
        case = load(name)
        solve(case.model, argparse.Namespace(**{**vars(args), "steps": 2}), True)  # warm-up
        dist.barrier()
        start = time.perf_counter()
        _, cut = solve(case.model, args, True)
        results[name] = (time.perf_counter() - start, float(cut))
    if rank == 0:
        torch.save(results, os.path.join(directory, "ranks.pt"))
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--agents", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--instances", nargs="+", default=["G22", "K2000", "G81"])
    args = parser.parse_args()
    torch.set_num_threads(args.ranks)
    single = {}
    for name in args.instances:
        case = load(name)
        solve(case.model, argparse.Namespace(**{**vars(args), "steps": 2}), None)  # warm-up
        start = time.perf_counter()
        _, cut = solve(case.model, args, None)
        single[name] = (time.perf_counter() - start, float(cut), case.source)
    with tempfile.TemporaryDirectory() as directory:
        mp.start_processes(_rank, args=(args.ranks, free_port(), directory, args),
                           nprocs=args.ranks, start_method="spawn")
        ranks = torch.load(os.path.join(directory, "ranks.pt"))
    work = args.agents * args.steps
    print(f"dSB, {args.agents} agents, {args.steps} steps, no early stopping; one process x "
          f"{args.ranks} threads against {args.ranks} ranks x 1 thread (gloo)")
    print(f"{'instance':10} {'source':10} {'1 proc agent-steps/s':>21} "
          f"{f'{args.ranks} ranks agent-steps/s':>22} {'ratio':>6}  same cut")
    for name in args.instances:
        (t1, cut1, source), (tk, cutk) = single[name], ranks[name]
        print(f"{name:10} {source:10} {work / t1:21.0f} {work / tk:22.0f} {t1 / tk:6.2f}  "
              f"{cut1 == cutk} ({cut1:g})")


if __name__ == "__main__":
    main()
