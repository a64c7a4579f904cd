"""Settings by problem class: candidate SB settings against each other under one time budget,
on generated instances of the G-set's classes.

    .venv/bin/python bench/sb/bench_classes.py                     # 2 s, 3 seeds, all sizes
    .venv/bin/python bench/sb/bench_classes.py --time 0.2 --sizes 800 --seeds 1 --no-write

For every instance (instances.py; sizes 800, 2000, 5000, 10000; dense +/-1 up to 2000) the
candidates are settings_for's choice and that choice with one field changed: agents 8, 16, 32,
64 or 128, time step 0.25, 0.5 or 0.75, max steps 1000, 2000, 4000, 8000 or 16000. Each runs
sb_native.solve_within(model, T, sense="maximize", settings=candidate) once per seed; the
table gives the best and mean cut over the seeds, and the best candidate's cut is in bold.
Printed, and written into the "## Settings by problem class (issue 17)" section of
bench/RESULTS.md unless --no-write.
"""

import argparse
import dataclasses
import math
import pathlib
import statistics
import sys
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import instances  # noqa: E402
from bench_gset import (  # noqa: E402
    RESULTS,
    command_line,
    describe,
    measured,
    run_sb,
    seeds_text,
    write_section,
)

import sb_native  # noqa: E402
from sb_native.models import QUBO, MaxCut  # noqa: E402

SECTION = "## Settings by problem class (issue 17)"
VARIED = {"agents": (8, 16, 32, 64, 128), "time_step": (0.25, 0.5, 0.75),
          "max_steps": (1000, 2000, 4000, 8000, 16000)}
DENSE_MAX_NODES = 2000  # a complete graph holds n^2 / 2 edges: K2000 is the G-set's largest


def torus_shape(n: int) -> Tuple[int, int]:
    """rows x cols = n with rows the largest divisor of n up to sqrt(n) (800: 25 x 32)."""
    rows = next(r for r in range(math.isqrt(n), 0, -1) if n % r == 0)
    return rows, n // rows


def sparse_density(n: int) -> float:
    """1% edges (G22) up to 2000 nodes, then mean degree 4 (G55 has 5, G70 2)."""
    return 0.01 if n <= 2000 else 4 / (n - 1)


# name: (what it mirrors, instance builder from (n, seed)).
CLASSES: Dict[str, Tuple[str, Callable[[int, int], instances.Instance]]] = {
    "random sparse": ("uniform edges, weights 1, like G22, G55, G70",
                      lambda n, seed: instances.random_graph(n, sparse_density(n), "one", seed)),
    "toroidal ±1": ("2-D torus grid, weights ±1, like G81",
                    lambda n, seed: instances.toroidal(*torus_shape(n), "pm1", seed)),
    "planar": ("two Delaunay triangulations over the same nodes, weights 1, like G14",
               lambda n, seed: instances.planar(n, seed, layers=2)),
    "weighted sparse": ("uniform edges as random sparse, integer weights 1 to 100",
                        lambda n, seed: instances.random_graph(n, sparse_density(n), "int",
                                                               seed)),
    "qubo": ("qbsolv-style random QUBO, entries and linear terms in [-100, 100]; minimized, "
             "shown as the maximized -energy",
             lambda n, seed: instances.random_qubo(n, sparse_density(n), seed)),
    "dense ±1": ("complete graph, weights ±1, like K2000",
                 lambda n, seed: instances.complete_pm1(n, seed)),
}


def qubo_model(n: int, entries) -> QUBO:
    """The QUBO of entries negated: maximizing it minimizes the QUBO (run_sb maximizes)."""
    indices = torch.from_numpy(entries[:, :2].T.astype(np.int64))
    values = -torch.from_numpy(entries[:, 2])
    return QUBO(torch.sparse_coo_tensor(indices, values, (n, n)).coalesce())


def candidates(base: sb_native.Settings) -> List[Tuple[str, sb_native.Settings]]:
    """The class's settings, then each varied field's other values, one field at a time."""
    chosen = [("class default", base)]
    for field, values in VARIED.items():
        for value in values:
            if value != getattr(base, field):
                chosen.append((f"{field.replace('_', ' ')} {value:g}",
                               dataclasses.replace(base, **{field: value})))
    return chosen


def compare(model: MaxCut, budget: float, seeds: range) -> Tuple[str, List[List[str]]]:
    """The class default in words, and per candidate: name, best cut, mean cut, and the best
    seed's runs × steps; the best candidate's cut (by best, then mean) in bold."""
    base = sb_native.settings_for(model)
    rows, scores = [], []
    for name, settings in candidates(base):
        runs = [run_sb(model, budget, seed, settings)[0] for seed in seeds]
        top = max(runs, key=lambda run: run.cut)
        mean = statistics.fmean(run.cut for run in runs)
        scores.append((top.cut, mean))
        rows.append([name, f"{top.cut:.0f}", f"{mean:.1f}", top.detail])
    winner = max(scores)
    for row, score in zip(rows, scores):
        if score == winner:
            row[1] = f"**{row[1]}**"
    return describe(base), rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--seeds", type=int, default=3,
                        help="runs per candidate (seeds seed..seed+K-1); best and mean reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[800, 2000, 5000, 10000])
    parser.add_argument("--classes", default=",".join(CLASSES),
                        help=f"comma-separated, from: {', '.join(CLASSES)}")
    parser.add_argument("--graph-seed", type=int, default=0, help="seed of the instances")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--note", default="", help="text written under the tables")
    args = parser.parse_args(argv)

    classes = args.classes.split(",")
    unknown = set(classes) - set(CLASSES)
    if unknown:
        raise SystemExit(f"unknown classes: {', '.join(sorted(unknown))}")
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = range(args.seed, args.seed + args.seeds)
    opening = measured()
    header = "| instance | edges | candidate | best cut | mean cut | runs × steps |"
    tables, defaults = [], {}
    for name in classes:
        mirrors, build = CLASSES[name]
        lines = [header, "|---|---|---|---|---|---|"]
        print(f"\n{name} ({mirrors})\n{header}", flush=True)
        for n in args.sizes:
            if name == "dense ±1" and n > DENSE_MAX_NODES:
                continue
            nodes, edges = build(n, args.graph_seed)
            model = qubo_model(nodes, edges) if name == "qubo" else MaxCut.from_edges(
                edges, n_nodes=nodes)
            default, rows = compare(model, args.time, seeds)
            defaults.setdefault(default, []).append(f"{name} {n}")
            for row in rows:
                line = f"| {name} {n} | {len(edges)} | " + " | ".join(row) + " |"
                lines.append(line)
                print(line, flush=True)
        tables += [f"### {name}: {mirrors}", "", *lines, ""]

    by_class = "; ".join(f"{text} ({', '.join(names)})" for text, names in defaults.items())
    section = "\n".join([
        SECTION, "", opening, "", f"Command: `{command_line('bench_classes.py', argv)}`", "",
        f"Settings: {args.time:g} s per run, sb_native.solve_within(model, T, "
        f"sense=\"maximize\", settings=candidate), {seeds_text(args.seed, args.seeds)}; "
        f"instances from bench/sb/instances.py with seed {args.graph_seed}. "
        f"Class defaults (settings_for): {by_class}. Every other candidate changes one field "
        "of its default; steps per run are the candidate's max steps or fewer where a run "
        "would not fit the budget, so max steps above what fits change nothing.", "",
        "\"best cut\" and \"mean cut\" are over the seeds; the best candidate's cut (best, then "
        "mean) is in bold. \"runs × steps\": the best seed's runs and steps of a full run.", "",
        *tables, *([args.note, ""] if args.note else [])])
    if not args.no_write:
        write_section(SECTION, section)
        print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
