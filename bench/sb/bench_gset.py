"""Solution quality on the G-set: SB, simulated annealing and tabu search within fixed wall
times, against best known cuts.

    .venv/bin/python bench/sb/bench_gset.py --time 1 10
    .venv/bin/python bench/sb/bench_gset.py --time 5 --instances G1,G11 --seeds 3 --no-write

SB is sb_native.solve_within(model, T, sense="maximize"): restarts until T with the settings
of the problem's class (settings_for), unless --agents, --max-steps, --mode, --time-step or
--heated override a field. dwave-samplers' simulated annealing and tabu search take reads
on the same Ising form until the same T. --seeds K runs every solver K times and reports
the best. One table per budget, printed and written into the "## G-set quality" section of
bench/RESULTS.md.
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import re
import shlex
import sys
import time
from typing import List, Optional, Tuple

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sb_native  # noqa: E402
from sb_native import io as sio  # noqa: E402
from sb_native.models import MaxCut  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gset"
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## G-set quality"
CALIBRATION_STEPS = 20
SA_SWEEPS = 1000  # sweeps per SA read, unless a read would not fit the budget
# Tabu reads shorter than this mostly measure the sampler's per-call set-up.
MIN_TABU_READ_S = 0.01


@dataclasses.dataclass(frozen=True)
class Run:
    """One solver's run within a budget: its best cut, (seconds, cut) each time the best
    improved, and what it did ("runs × steps", "reads × sweeps", ...)."""

    cut: float
    improvements: Tuple[Tuple[float, float], ...]
    detail: str

    @property
    def found_at(self) -> float:
        return self.improvements[-1][0]


class Best:
    """The best cut of a run so far, and when each improvement came (seconds from start)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.cut = -float("inf")
        self.improvements: List[Tuple[float, float]] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def offer(self, cut: float) -> None:
        if cut > self.cut:
            self.cut = cut
            self.improvements.append((self.elapsed(), cut))

    def run(self, detail: str) -> Run:
        return Run(self.cut, tuple(self.improvements), detail)


def batch_size(per_read: float, remaining: float, elapsed: float) -> int:
    """Reads for the next sampler call: what fits in the time left, and no more than span half
    the time so far, so that an improvement, stamped at the end of its call, is stamped within
    a factor 1.5 of when it was found (which is what a log time axis shows)."""
    return min(int(remaining / per_read), max(1, int(0.5 * elapsed / per_read)))


def instance_name(path: pathlib.Path) -> str:
    return path.name.split(".")[0]


def natural_key(path: pathlib.Path):
    parts = re.split(r"(\d+)", instance_name(path))
    return [int(part) if part.isdigit() else part for part in parts]


def instance_paths(data: pathlib.Path, names: Optional[str]) -> List[pathlib.Path]:
    """The instance files in data, in natural order; only `names` (comma-separated) if given."""
    if not data.is_dir():
        raise SystemExit(f"no instance folder at {data}")
    paths = sorted((p for p in data.iterdir() if re.fullmatch(r".+\.txt(\.gz)?", p.name)),
                   key=natural_key)
    if not names:
        return paths
    wanted = names.split(",")
    missing = set(wanted) - {instance_name(p) for p in paths}
    if missing:
        raise SystemExit(f"unknown instances: {', '.join(sorted(missing))}")
    return [p for p in paths if instance_name(p) in wanted]


def read_best_known(data: pathlib.Path) -> dict:
    path = data / "best_known.json"
    return json.loads(path.read_text()) if path.exists() else {}


def spin_bqm(edges: np.ndarray, nodes: int):
    """The Ising form SA and tabu minimize, and the total weight: minimizing
    sum w_ij s_i s_j = total - 2 cut maximizes the cut, so cut = (total - energy) / 2."""
    import dimod

    rows, cols, weights = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64), edges[:, 2]
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(np.zeros(nodes), (rows, cols, weights),
                                                        0.0, dimod.SPIN)
    return bqm, float(weights.sum())


def solvers_available() -> bool:
    try:
        import dimod  # noqa: F401
        from dwave.samplers import SimulatedAnnealingSampler, TabuSampler  # noqa: F401
    except ImportError:
        return False
    return True


def run_sb(model: MaxCut, budget: float, seed: int, settings: Optional[sb_native.Settings],
           backend: str = "auto") -> Tuple[Run, sb_native.Settings]:
    """solve_within's best cut within budget, and the settings it used."""
    result = sb_native.solve_within(model, budget, sense="maximize", seed=seed,
                                    settings=settings, backend=backend, verbose=False)
    run = Run(result.value, result.improvements, f"{result.runs} × {result.steps}")
    return run, result.settings


def run_sa(bqm, total: float, budget: float, seed: int, sweeps: int) -> Run:
    """dwave-samplers' simulated annealing, reads until the budget.

    Sweeps per read are `sweeps`, or fewer when one read would not fit the budget (by a
    calibration read, which counts as a read). Each call's seed comes from default_rng(seed),
    below 2**31 as the sampler requires.
    """
    from dwave.samplers import SimulatedAnnealingSampler

    sampler = SimulatedAnnealingSampler()
    seeds = np.random.default_rng(seed)
    best = Best()

    def read(count: int, read_sweeps: int) -> None:
        sample = sampler.sample(bqm, num_reads=count, num_sweeps=read_sweeps,
                                seed=int(seeds.integers(2**31)))
        best.offer((total - float(sample.first.energy)) / 2)

    read(1, CALIBRATION_STEPS)
    per_sweep = best.elapsed() / CALIBRATION_STEPS
    sweeps = max(CALIBRATION_STEPS, min(sweeps, int(0.9 * budget / per_sweep)))
    per_read, reads = sweeps * per_sweep, 1
    while (batch := batch_size(per_read, budget - best.elapsed(), best.elapsed())) >= 1:
        began = time.perf_counter()
        read(batch, sweeps)
        per_read = (time.perf_counter() - began) / batch
        reads += batch
    return best.run(f"{reads} × {sweeps}")


def run_tabu(bqm, total: float, budget: float, seed: int, read_ms: int) -> Run:
    """dwave-samplers' tabu search, reads until the budget.

    Tabu's timeout bounds one read, and every call first copies the problem into a dense
    n x n matrix (0.8 s for K2000 on 2 cores). The first call, one read of a quarter of the
    budget (at most read_ms), measures that set-up; later calls take as many reads as fit
    in what is left. A short budget on a large instance can overrun by that first set-up.
    """
    from dwave.samplers import TabuSampler

    sampler = TabuSampler()
    seeds = np.random.default_rng(seed)
    best = Best()
    read_s, overhead, reads = min(read_ms / 1000, budget / 4), None, 0
    while True:
        batch, this_read = 1, read_s
        if overhead is not None:
            usable = budget - best.elapsed() - overhead
            this_read = min(read_s, usable)
            if this_read < MIN_TABU_READ_S:
                break
            batch = batch_size(this_read, usable, best.elapsed())
        began = time.perf_counter()
        sample = sampler.sample(bqm, num_reads=batch, timeout=max(1, int(1000 * this_read)),
                                seed=int(seeds.integers(2**31)))
        overhead = max(0.0, time.perf_counter() - began - batch * this_read)
        best.offer((total - float(sample.first.energy)) / 2)
        reads += batch
    return best.run(f"{reads} × {1000 * read_s:.0f} ms")


def best_of(runs: List[Run]) -> Run:
    """The highest cut; among equal cuts, the one found first."""
    return max(runs, key=lambda run: (run.cut, -run.found_at))


def percent(cut, best_known):
    return f"{100 * cut / best_known:.2f}" if best_known else "–"


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    info = sb_native.backend_info()
    native = ("native extension loaded" if info["native"]
              else f"native unavailable ({info['reason']})")
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), {gpu}, "
            f"torch {torch.__version__}, torch threads: {info['threads']}, {native}")


def measured() -> str:
    """When, where and how loaded the machine was: the first line of every section."""
    return (f"Measured {datetime.date.today().isoformat()} on {machine()}; "
            f"1-minute load average at the start: {os.getloadavg()[0]:.1f}.")


def command_line(script: str, argv: Optional[List[str]]) -> str:
    arguments = argv if argv is not None else sys.argv[1:]
    return f"python bench/sb/{script} {shlex.join(arguments)}".strip()


def describe(settings: sb_native.Settings) -> str:
    return (f"{settings.mode}{' heated' if settings.heated else ''}, {settings.agents} agents, "
            f"time step {settings.time_step:g}, up to {settings.max_steps} steps per run"
            f"{'' if settings.polish else ', unpolished'}")


def write_section(section: str, text: str, path: pathlib.Path = RESULTS) -> None:
    """Replace (or append) the section titled `section` of path, leaving the others alone."""
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    body = text.rstrip("\n") + "\n"
    match = re.search(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", current, re.S | re.M)
    if match:
        rest = current[match.end():]
        updated = current[:match.start()] + body + ("\n" + rest if rest else "")
    else:
        updated = current.rstrip("\n") + "\n\n" + body
    path.write_text(updated)


def settings_override(args) -> dict:
    """The Settings fields given on the command line (the rest come from the class)."""
    given = {"mode": args.mode, "agents": args.agents, "time_step": args.time_step,
             "max_steps": args.max_steps, "heated": True if args.heated else None}
    return {field: value for field, value in given.items() if value is not None}


def sb_settings(model: MaxCut, override: dict) -> Optional[sb_native.Settings]:
    """None (solve_within picks by class) or the class's settings with `override` applied."""
    if not override:
        return None
    return dataclasses.replace(sb_native.settings_for(model), **override)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=int, help="override the class's agents")
    parser.add_argument("--max-steps", type=int, help="override the class's steps per run")
    parser.add_argument("--mode", choices=("ballistic", "discrete"), help="override the mode")
    parser.add_argument("--time-step", type=float, help="override the class's time step")
    parser.add_argument("--heated", action="store_true", help="heated SB")


def compare(instance: tuple, budget: float, seeds: range, args):
    """SB's, SA's and tabu's best runs over the seeds (None for a solver left out), and
    the settings SB used."""
    nodes, _, model, bqm_total, settings = instance
    sb_runs = [run_sb(model, budget, seed, settings, args.backend) for seed in seeds]
    sa = None if args.no_sa else best_of(
        [run_sa(*bqm_total, budget, seed, args.sa_sweeps) for seed in seeds])
    tabu = None if args.no_tabu or nodes > args.tabu_max_nodes else best_of(
        [run_tabu(*bqm_total, budget, seed, args.tabu_timeout) for seed in seeds])
    return best_of([run for run, _ in sb_runs]), sb_runs[0][1], sa, tabu


def row_cells(name: str, instance: tuple, known, sb: Run, sa: Optional[Run],
              tabu: Optional[Run]) -> List[str]:
    nodes, edges = instance[:2]
    cells = [name, str(nodes), str(len(edges)), str(known or "–"), f"{sb.cut:.0f}",
             percent(sb.cut, known), f"{sb.found_at:.1f}", sb.detail]
    for other in (sa, tabu):
        cells += ([f"{other.cut:.0f}", percent(other.cut, known), f"{other.found_at:.1f}"]
                  if other else ["–"] * 3)
    others = [other.cut for other in (sa, tabu) if other]
    return cells + [("yes" if sb.cut >= max(others) else "no") if others else "–"]


def seeds_text(first: int, count: int) -> str:
    return f"seed {first}" if count == 1 else f"seeds {first}..{first + count - 1}"


def describe_solvers(used: dict, override: dict, args) -> str:
    """The solvers' settings in words; used: the SB settings per instance."""
    groups: dict = {}
    for name, settings in used.items():
        groups.setdefault(describe(settings), []).append(name)
    by_class = "; ".join(f"{text} ({', '.join(names)})" for text, names in groups.items())
    given = ", ".join(f"{field}={value}" for field, value in override.items())
    origin = (f"the class's settings (settings_for) with {given} from the command line"
              if override else "settings by problem class (settings_for)")
    parts = [f"SB: sb_native.solve_within(model, T, sense=\"maximize\"), {origin}: "
             f"{by_class}; float32, backend {args.backend}, each run sized to the budget by a "
             "calibration, restarts until T."]
    if not args.no_sa:
        parts.append(f"SA: dwave-samplers SimulatedAnnealingSampler, up to {args.sa_sweeps} "
                     "sweeps per read (fewer where a read would not fit), reads until T.")
    if not args.no_tabu:
        parts.append(f"Tabu: dwave-samplers TabuSampler, reads of at most {args.tabu_timeout} "
                     f"ms (and a quarter of T) until T, skipped above {args.tabu_max_nodes} "
                     "nodes.")
    parts.append(f"{seeds_text(args.seed, args.seeds).capitalize()}, best of {args.seeds} per "
                 "solver (solve_within draws its runs' seeds from the seed, so repetitions "
                 "share no run); SB on torch's threads, SA and tabu on one.")
    return " ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=pathlib.Path, default=DATA, help="folder of instances")
    parser.add_argument("--instances", help="comma-separated names, e.g. G1,G22,K2000")
    parser.add_argument("--time", type=float, nargs="+", default=[10.0],
                        help="seconds per instance, solver and seed; several give one table each")
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs per solver (seeds seed..seed+K-1); the best is reported")
    parser.add_argument("--seed", type=int, default=0)
    add_settings_arguments(parser)
    parser.add_argument("--backend", choices=("auto", "native", "torch"), default="auto")
    parser.add_argument("--sa-sweeps", type=int, default=SA_SWEEPS, help="sweeps per SA read")
    parser.add_argument("--tabu-timeout", type=int, default=1000,
                        help="longest tabu read, ms (a quarter of the budget at most)")
    parser.add_argument("--tabu-max-nodes", type=int, default=10000,
                        help="skip tabu above this many nodes (it copies the problem to a "
                             "dense n x n float64 matrix per call)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for SB (default: torch's; SA and tabu use one)")
    parser.add_argument("--no-sa", action="store_true", help="skip simulated annealing")
    parser.add_argument("--no-tabu", action="store_true", help="skip tabu search")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--note", default="", help="text written under the tables")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = instance_paths(args.data, args.instances)
    best_known = read_best_known(args.data)
    have_dwave = solvers_available()
    if not have_dwave and not (args.no_sa and args.no_tabu):
        print("bench_gset: dwave-samplers not installed: SA and tabu skipped", file=sys.stderr)
    args.no_sa, args.no_tabu = args.no_sa or not have_dwave, args.no_tabu or not have_dwave
    seeds = range(args.seed, args.seed + args.seeds)
    opening = measured()

    header = ("| instance | n | edges | best known | SB cut | SB % | SB to best (s) "
              "| SB runs × steps | SA cut | SA % | SA to best (s) | Tabu cut | Tabu % "
              "| Tabu to best (s) | SB ≥ SA, tabu |")
    tables, used = [], {}
    loaded = {}
    for budget in args.time:
        lines = [header, "|" + "---|" * (header.count(" | ") + 1)]
        details: dict = {}  # SA's and tabu's reads per instance, listed under the table
        print(f"\n{budget:g} s per instance, solver and seed\n{header}", flush=True)
        for path in paths:
            name = instance_name(path)
            if name not in loaded:
                nodes, edges = sio.read_gset_edges(path)
                model = MaxCut.from_gset(path)
                loaded[name] = (nodes, edges, model, spin_bqm(edges, nodes) if have_dwave
                                else None, sb_settings(model, settings_override(args)))
            sb, settings, sa, tabu = compare(loaded[name], budget, seeds, args)
            used[name] = settings
            cells = row_cells(name, loaded[name], best_known.get(name), sb, sa, tabu)
            row = "| " + " | ".join(cells) + " |"
            lines.append(row)
            print(row, flush=True)
            for label, other in (("SA reads × sweeps", sa), ("tabu reads × read", tabu)):
                if other:
                    details.setdefault(label, []).append(f"{name} {other.detail}")
        tables += [f"### {budget:g} s per instance, solver and seed", "", *lines, ""]
        tables += ["; ".join(f"{label}: {', '.join(rows)}" for label, rows in details.items())
                   + ".", ""] if details else []

    settings_text = describe_solvers(used, settings_override(args), args)
    section = "\n".join([
        SECTION, "", opening, "", f"Command: `{command_line('bench_gset.py', argv)}`", "",
        f"Settings: {settings_text}", "",
        "\"%\" is the cut as a percentage of the best known cut (`best_known.json`; – where "
        "none is listed). \"to best\" is the wall time at which the best cut of the budget was "
        "found (SA and tabu: the end of the sampler call that found it); instance loading is "
        "not counted. \"SB ≥ SA, tabu\": SB's cut is at least the others'.", "",
        *tables, *([args.note, ""] if args.note else [])])
    if not args.no_write:
        write_section(SECTION, section)
        print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
