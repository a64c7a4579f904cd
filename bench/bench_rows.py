"""Variables across ranks (sb_native.RowBlock): bytes per step, time per step split into the
ops and the collectives, and peak memory per rank against one process, on the same cores.

Instances:
  G81           ../shared/data/gset/G81.txt (20,000 nodes, toroidal), read from the file;
  torus1000     a generated 1000 x 1000 toroidal grid with +-1 weights (1,000,000 variables),
                written as a G-set file and read from it (each rank reads its rows);
  torus3163     a generated 3163 x 3163 toroidal grid (10,004,569 variables), each rank
                generating only its rows (no file; no single-process run: --single off).

For each instance, dSB with a fixed number of steps and no early stopping runs
  one process   (--single): MaxCut.from_gset(sparse) + maximize, torch threads = RANKS;
  RANKS ranks   of one thread each (gloo on 127.0.0.1): RowBlock + maximize;
and the table gives each rank's peak RSS (ru_maxrss, after the model is built and solved,
so reading the file counts), the time per step split into ops and collectives, bytes sent
per step per rank, and the cut (the same seed: equal to the single process's).

    .venv/bin/python bench/bench_rows.py [--ranks 2] [--agents 32] [--steps 200]
                                         [--instances G81 torus1000] [--no-single]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GSET = ROOT.parent / "shared" / "data" / "gset"


def torus_side(name: str) -> int:
    return int(name[len("torus"):])


def edge_weights(a, b):
    """+-1 from a hash of the edge {a, b}: any rank can weigh any edge the same way."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return (1 - 2 * (((lo * 2654435761 + hi * 40503) >> 7) & 1)).astype(np.float64)


def torus_edges(side: int):
    """(u, v, w) of the toroidal grid's edges (right and down neighbours), 0-based."""
    u = np.arange(side * side, dtype=np.int64)
    r, c = u // side, u % side
    v = np.concatenate([r * side + (c + 1) % side, ((r + 1) % side) * side + c])
    u = np.concatenate([u, u])
    return u, v, edge_weights(u, v)


def write_torus(path: Path, side: int) -> None:
    u, v, w = torus_edges(side)
    with open(path, "w") as handle:
        handle.write(f"{side * side} {u.size}\n")
        np.savetxt(handle, np.column_stack([u + 1, v + 1, w]).astype(np.int64), fmt="%d")


def torus_block(side: int, group):
    """This rank's rows of the torus's Max-Cut as a RowBlock, generated in place: each row's
    four neighbours."""
    import sb_native as sb
    n = side * side
    lo, hi = sb.RowBlock.bounds(n, group)
    u = np.arange(lo, hi, dtype=np.int64)
    r, c = u // side, u % side
    cols = np.concatenate([r * side + (c + 1) % side, ((r + 1) % side) * side + c,
                           r * side + (c - 1) % side, ((r - 1) % side) * side + c])
    rows = np.concatenate([u] * 4)
    W = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])),
                                torch.from_numpy(edge_weights(rows, cols)), (n, n),
                                check_invariants=False).coalesce()
    total = torch.tensor([float(W.values().sum())], dtype=torch.float64)
    dist.all_reduce(total)
    return sb.RowBlock(-0.25 * W, None, float(total[0]) / 4, domain="spin", process_group=group)


def instance_file(name: str, directory: Path) -> Path:
    if name.startswith("torus"):
        path = directory / f"{name}.txt"
        if not path.exists():
            write_torus(path, torus_side(name))
        return path
    return GSET / f"{name}.txt"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def solve_kwargs(args):
    return dict(agents=args.agents, max_steps=args.steps, early_stopping=False,
                mode="discrete", seed=0, verbose=False)


def _rank(rank, world, port, directory, args, name):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=1800))
    import sb_native as sb
    start = time.perf_counter()
    if name.startswith("torus") and torus_side(name) > 2000:
        model = torus_block(torus_side(name), True)
    else:
        model = sb.RowBlock.from_gset(instance_file(name, Path(directory)))
    built = time.perf_counter() - start
    dist.barrier()
    start = time.perf_counter()
    _, cut = model.maximize(**solve_kwargs(args))
    elapsed = time.perf_counter() - start
    stats = model.stats
    result = dict(rank=rank, build_s=built, solve_s=elapsed, cut=float(cut),
                  rss_mib=peak_rss_mib(), steps=stats.steps, compute_s=stats.compute_s,
                  communication_s=stats.communication_s, bytes_sent=stats.bytes_sent,
                  rows=model.hi - model.lo)
    torch.save(result, os.path.join(directory, f"rank{rank}.pt"))
    dist.destroy_process_group()


SINGLE = """
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
from sb_native.models import MaxCut
start = time.perf_counter()
model = MaxCut.from_gset(sys.argv[1], sparse=True)
built = time.perf_counter() - start
start = time.perf_counter()
_, cut = model.maximize(**json.loads(sys.argv[2]))
print(json.dumps(dict(build_s=built, solve_s=time.perf_counter() - start, cut=float(cut),
                      rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def single(name, args, directory):
    """One process in a fresh interpreter, so its peak RSS is its own."""
    done = subprocess.run([sys.executable, "-c", SINGLE, str(instance_file(name, directory)),
                           json.dumps(solve_kwargs(args)), str(args.ranks)],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(done.stdout)


def main():
    # Imported here: the spawned ranks re-import this module, and tests.helpers imports pytest,
    # which their measured memory should not hold.
    from tests.helpers import free_port
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--instances", nargs="+", default=["G81", "torus1000"])
    parser.add_argument("--no-single", action="store_true", help="skip the one-process runs")
    args = parser.parse_args()
    baseline = subprocess.run([sys.executable, "-c", "import resource, sb_native; print("
                               "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
                              capture_output=True, text=True, cwd=ROOT, check=True)
    print(f"{args.ranks} ranks x 1 thread vs 1 process x {args.ranks} threads; dSB, "
          f"{args.agents} agents, {args.steps} steps, no early stopping; peak RSS of "
          f"`import sb_native` alone: {float(baseline.stdout):.0f} MiB")
    print("| instance | variables | run | peak RSS / rank (MiB) | RSS vs one process | "
          "ms/step | ops ms/step | collectives ms/step | bytes sent/step/rank | cut |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name in args.instances:
            if not name.startswith("torus") and not instance_file(name, directory).exists():
                print(f"| {name} | skipped: {instance_file(name, directory)} not found |")
                continue
            one = None
            if not args.no_single and not (name.startswith("torus")
                                           and torus_side(name) > 2000):
                one = single(name, args, directory)
            mp.start_processes(_rank, args=(args.ranks, free_port(), tmp, args, name),
                               nprocs=args.ranks, join=True, start_method="spawn")
            ranks = [torch.load(directory / f"rank{r}.pt") for r in range(args.ranks)]
            n = sum(r["rows"] for r in ranks)
            if one is not None:
                print(f"| {name} | {n:,} | 1 process | {one['rss_mib']:.0f} | 1 | "
                      f"{1e3 * one['solve_s'] / args.steps:.2f} | | | | {one['cut']:.10g} |")
            worst = max(ranks, key=lambda r: r["rss_mib"])
            ratio = f"{worst['rss_mib'] / one['rss_mib']:.2f}" if one else "-"
            steps = ranks[0]["steps"]
            rss = " / ".join(f"{r['rss_mib']:.0f}" for r in ranks)
            print(f"| {name} | {n:,} | {args.ranks} ranks | {rss} | {ratio} | "
                  f"{1e3 * ranks[0]['solve_s'] / steps:.2f} | "
                  f"{1e3 * ranks[0]['compute_s'] / steps:.2f} | "
                  f"{1e3 * ranks[0]['communication_s'] / steps:.2f} | "
                  f"{ranks[0]['bytes_sent'] / steps:,.0f} | {ranks[0]['cut']:.10g} |")
            if one is not None and one["cut"] != ranks[0]["cut"]:
                print(f"  ! cut differs from one process: {one['cut']} vs {ranks[0]['cut']}")


if __name__ == "__main__":
    main()
