"""QIMADTorch across ranks against one process, on the same cores: time per step and peak memory.

A swarm of --agents agents over --params float32 parameters with a cheap loss (a quadratic,
so the swarm update, not the closures, is most of a step), or with --model mlp over the
digits MLP 64-128-10 (full batch: the closures are most of a step), for each update order:
  one process  torch.set_num_threads(RANKS), no process group, and again with 1 thread;
  RANKS ranks  one thread each (gloo, spawned here on 127.0.0.1), process_group=True:
               'synchronous' shards the swarm (each rank moves and keeps the RMSProp state of
               its block; the moved positions are broadcast), 'sequential' replicates it (the
               gradients are all-gathered and every rank makes the whole update).
Every run is a fresh spawned process, so peak RSS (ru_maxrss) compares like with like; the
table gives seconds per step (rank 0's, after a warm-up step, between barriers), the
largest peak RSS over the ranks, the bytes a rank receives per step (measured from the
tensors each collective fills) and the swarm's final best loss, which must be the same for
the ranks as for one process on one thread (the same seed, and each rank evaluates on one
thread); with more threads float32 sums and GEMMs round otherwise, and the run drifts.

    .venv/bin/python bench/qimad/bench_qimad_ranks.py [--ranks 2] [--agents 16]
                                                      [--params 4000000] [--steps 10]
                                                      [--model quadratic|mlp]
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sb_native.optim import QIMADTorch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def received_bytes(calls, rank):
    """Wraps the collectives QIMADTorch calls so each call's bytes received from the other
    ranks land in calls: a broadcast's tensor on the ranks it is sent to, an all_gather's
    outputs but this rank's own, an all_reduce's tensor."""
    def nbytes(t):
        return t.numel() * t.element_size()

    def broadcast(tensor, src, *a, _original=dist.broadcast, **k):
        calls.append(0 if src == rank else nbytes(tensor))
        return _original(tensor, src, *a, **k)

    def all_gather(outputs, tensor, *a, _original=dist.all_gather, **k):
        calls.append(sum(nbytes(t) for t in outputs) - nbytes(tensor))
        return _original(outputs, tensor, *a, **k)

    def all_reduce(tensor, *a, _original=dist.all_reduce, **k):
        calls.append(nbytes(tensor))
        return _original(tensor, *a, **k)
    dist.broadcast, dist.all_gather, dist.all_reduce = broadcast, all_gather, all_reduce


def _run(rank, world, port, directory, args, order, threads):
    torch.set_num_threads(threads)
    group = None
    calls: list = []
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world, timeout=timedelta(seconds=600))
        group = True
        received_bytes(calls, rank)
    if args.model == "mlp":
        from sklearn.datasets import load_digits
        data = load_digits()
        X = torch.tensor(data.data, dtype=torch.float32) / 16
        y = torch.tensor(data.target)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 10))
        params = list(model.parameters())

        def loss_value():
            return torch.nn.functional.cross_entropy(model(X), y)
    else:
        weights = torch.nn.Parameter(torch.zeros(args.params))
        target = torch.linspace(-1, 1, args.params)
        params = [weights]

        def loss_value():
            return ((weights - target) ** 2).sum()
    opt = QIMADTorch(params, num_agents=args.agents, seed=0, update_order=order,
                     process_group=group)

    def closure():
        opt.zero_grad()
        loss = loss_value()
        loss.backward()
        return loss

    opt.step(closure)  # warm-up: builds the swarm
    if world > 1:
        dist.barrier()
    before = len(calls)
    start = time.perf_counter()
    for _ in range(args.steps):
        best = opt.step(closure)
    if world > 1:
        dist.barrier()
    seconds = (time.perf_counter() - start) / args.steps
    per_step = sum(calls[before:]) / args.steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    torch.save((seconds, rss, per_step, best), os.path.join(directory, f"{rank}.pt"))
    if world > 1:
        dist.destroy_process_group()
    # As tests/helpers.leave_rank: torch's teardown sometimes aborts a gloo rank's exit after
    # its results are saved; skip it.
    sys.stdout.flush()
    os._exit(0)


def measure(args, order, world, threads=None):
    # Imported here: the spawned ranks re-import this module, and tests.helpers imports pytest,
    # which their measured memory should not hold.
    from tests.helpers import free_port
    with tempfile.TemporaryDirectory() as directory:
        threads = threads or (args.ranks if world == 1 else 1)
        mp.start_processes(_run, args=(world, free_port(), directory, args, order, threads),
                           nprocs=world, start_method="spawn")
        results = [torch.load(os.path.join(directory, f"{r}.pt")) for r in range(world)]
    seconds, _, per_step, best = results[0]
    return seconds, max(r[1] for r in results), per_step, best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--params", type=int, default=4_000_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--model", choices=["quadratic", "mlp"], default="quadratic")
    args = parser.parse_args()
    what = (f"{args.params} float32 parameters (a quadratic)" if args.model == "quadratic" else
            "the digits MLP 64-128-10 (float32, full batch)")
    print(f"QIMADTorch, {args.agents} agents over {what}, {args.steps} steps, {args.ranks} "
          f"ranks x 1 thread vs 1 process x {args.ranks} threads and x 1 thread; torch "
          f"{torch.__version__}")
    print("| update_order | run | s/step | ranks' time / this run's | peak RSS per process "
          "(MiB) | RSS ratio | received per step (MiB) | best loss |")
    print("|---|---|---|---|---|---|---|---|")
    for order in ("synchronous", "sequential"):
        one = measure(args, order, 1)
        alone = measure(args, order, 1, threads=1)
        many = measure(args, order, args.ranks)
        # Each rank evaluates on one thread: its losses and gradients are those of one process
        # on one thread, bit for bit; float32 sums and GEMMs on more threads round otherwise.
        assert alone[3] == many[3], (order, alone[3], many[3])
        state = "sharded" if order == "synchronous" else "replicated"
        for label, run in ((f"1 process x {args.ranks} threads", one),
                           ("1 process x 1 thread", alone)):
            print(f"| {order} | {label} | {run[0]:.4f} | {many[0] / run[0]:.2f} | "
                  f"{run[1]:.0f} | | | {run[3]:.6g} |")
        print(f"| {order} | {args.ranks} ranks ({state}) | {many[0]:.4f} | | "
              f"{many[1]:.0f} | {many[1] / one[1]:.2f} | {many[2] / 2**20:.1f} | "
              f"{many[3]:.6g} |")


if __name__ == "__main__":
    sys.exit(main())
