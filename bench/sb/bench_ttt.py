"""Time to target: how soon SB and simulated annealing reach 99.9% and 100% of the best known
cut, over several seeds.

    .venv/bin/python bench/sb/bench_ttt.py                      # G22 and K2000, 10 seeds, 10 s
    .venv/bin/python bench/sb/bench_ttt.py --instances G11 --seeds 3 --time 1 --no-write

For each seed s, SB is sb_native.solve_within(model, T, sense="maximize") (settings by
problem class) and SA is bench_gset's reads until T, both seeded by s; each records when its
best improved. The table gives, at time points 0.5, 1, 2, 5, 10, ... and T, the fraction of
seeds that had reached each target; it is printed, written into the "## Time to target
(issue 17)" section of bench/RESULTS.md, and drawn (fraction reached against time, log
axis) to bench/ttt.png.
"""

import argparse
import math
import pathlib
import statistics
import sys
from typing import Dict, List, Tuple

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench_gset import (  # noqa: E402
    DATA,
    RESULTS,
    SA_SWEEPS,
    Run,
    command_line,
    describe,
    instance_paths,
    measured,
    read_best_known,
    run_sa,
    run_sb,
    spin_bqm,
    write_section,
)

from sb_native import io as sio  # noqa: E402
from sb_native.models import MaxCut  # noqa: E402

SECTION = "## Time to target (issue 17)"
FIGURE = ROOT / "bench" / "ttt.png"
TARGETS = (0.999, 1.0)
SOLVERS = ("SB", "SA")

# Times to target per (solver, target fraction): one per seed, inf where never reached.
Reached = Dict[Tuple[str, float], List[float]]


def time_points(limit: float) -> List[float]:
    """0.5, 1, 2, 5, 10, 20, 50, ... below limit, then limit itself."""
    points, decade = [], 0.1
    while decade < limit:
        points += [p for p in (5 * decade, 10 * decade, 20 * decade) if p < limit]
        decade *= 10
    return sorted(set(points)) + [limit]


def first_reaching(run: Run, cut: float) -> float:
    """When the run's best first reached cut (seconds), inf if never."""
    return next((seconds for seconds, value in run.improvements if value >= cut), math.inf)


def label(target: float) -> str:
    return f"{100 * target:g}%"


def fraction(times: List[float], by: float) -> str:
    return f"{sum(t <= by for t in times)}/{len(times)}"


def median(times: List[float]) -> str:
    """The median time to target; – where half the seeds or fewer reached it."""
    middle = statistics.median(times)
    return f"{middle:.2f}" if math.isfinite(middle) else "–"


def measure(path: pathlib.Path, known: float, budget: float, seeds: range) -> Tuple[Reached, str]:
    """Every seed's times to each target for SB and SA, and SB's settings in words."""
    nodes, edges = sio.read_gset_edges(path)
    model = MaxCut.from_gset(path)
    bqm, total = spin_bqm(edges, nodes)
    reached: Reached = {(solver, target): [] for solver in SOLVERS for target in TARGETS}
    for seed in seeds:
        sb, settings = run_sb(model, budget, seed, None)
        sa = run_sa(bqm, total, budget, seed, SA_SWEEPS)
        for solver, run in (("SB", sb), ("SA", sa)):
            for target in TARGETS:
                reached[solver, target].append(first_reaching(run, target * known))
    return reached, describe(settings)


def table(results: Dict[str, Reached], limit: float) -> List[str]:
    columns = [f"{solver} ≥ {label(target)}" for target in TARGETS for solver in SOLVERS]
    header = "| instance | time (s) | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    order = [(solver, target) for target in TARGETS for solver in SOLVERS]
    for name, reached in results.items():
        for by in time_points(limit):
            cells = [fraction(reached[key], by) for key in order]
            lines.append(f"| {name} | {by:g} | " + " | ".join(cells) + " |")
        cells = [median(reached[key]) for key in order]
        lines.append(f"| {name} | median to target | " + " | ".join(cells) + " |")
    return lines


def plot(results: Dict[str, Reached], limit: float, path: pathlib.Path) -> None:
    """Fraction of seeds that reached each target against time, one panel per instance."""
    from matplotlib import ticker
    from matplotlib.figure import Figure  # renders with Agg on savefig: no display needed

    figure = Figure(figsize=(5 * len(results), 4), layout="constrained")
    axes = figure.subplots(1, len(results), squeeze=False)[0]
    for ax, (name, reached) in zip(axes, results.items()):
        finite = [t for times in reached.values() for t in times if math.isfinite(t)]
        start = min(finite + [limit]) / 2
        for (solver, target), times in reached.items():
            hits = sorted(t for t in times if math.isfinite(t))
            # A step up at each seed's time to target, held flat to the end of the budget.
            xs = [start] + hits + [limit]
            ys = [0.0] + [(k + 1) / len(times) for k in range(len(hits))] + [len(hits) / len(times)]
            ax.step(xs, ys, where="post", color="C0" if solver == "SB" else "C1",
                    linestyle="-" if target == 1.0 else "--", label=f"{solver} ≥ {label(target)}")
        ax.set_xscale("log")
        # Labelled at the table's time points, as plain seconds rather than powers of ten.
        ax.set_xticks(time_points(limit), [f"{t:g}" for t in time_points(limit)])
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlim(start, limit)
        ax.set_ylim(-0.02, 1.05)  # a line at 0 stays visible above the axis
        ax.set_title(name)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("fraction of seeds at target")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="best")
    figure.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=pathlib.Path, default=DATA, help="folder of instances")
    parser.add_argument("--instances", default="G22,K2000", help="comma-separated names")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..K-1 per solver")
    parser.add_argument("--time", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for SB (default: torch's; SA uses one)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only: no RESULTS.md section, no plot unless --plot")
    parser.add_argument("--plot", type=pathlib.Path,
                        help=f"the figure (default {FIGURE.relative_to(ROOT)}, unless --no-write)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    best_known = read_best_known(args.data)
    paths = instance_paths(args.data, args.instances)
    unknown = [p.name for p in paths if p.name.split(".")[0] not in best_known]
    if unknown:
        raise SystemExit(f"no best known cut for {', '.join(unknown)}: no target to time")
    opening = measured()
    results: Dict[str, Reached] = {}
    settings = {}
    for path in paths:
        name = path.name.split(".")[0]
        results[name], settings[name] = measure(path, best_known[name], args.time,
                                                range(args.seeds))
        print(f"{name}: done", flush=True)
    lines = table(results, args.time)
    print("\n".join(lines))

    figure = args.plot or (None if args.no_write else FIGURE)
    if figure:
        plot(results, args.time, figure)
        print(f"figure: {figure}")
    targets = " and ".join(label(target) for target in TARGETS)
    section = "\n".join([
        SECTION, "", opening, "", f"Command: `{command_line('bench_ttt.py', argv)}`", "",
        f"Settings: {args.time:g} s per run, seeds 0..{args.seeds - 1}. SB: "
        "sb_native.solve_within(model, T, sense=\"maximize\", seed=s) with the settings "
        "of the class ("
        + "; ".join(f"{name}: {text}" for name, text in settings.items())
        + f"). SA: dwave-samplers SimulatedAnnealingSampler, up to {SA_SWEEPS} sweeps per "
        "read, reads until T, as bench_gset.py.", "",
        f"Each cell is the fraction of seeds whose best cut had reached {targets} of the best "
        "known cut (`best_known.json`) by that time; \"median to target\" is the median of "
        "the seeds' times (– where half or fewer got there). SA's improvements are stamped "
        "at the end of the sampler call that found them (within a factor 1.5 of the time)."
        + (f" Figure: `{figure.resolve().relative_to(ROOT)}`."
           if figure and figure.resolve().is_relative_to(ROOT) else ""), "",
        *lines, ""])
    if not args.no_write:
        write_section(SECTION, section)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
