"""Solution quality on the G-set: every instance within a fixed wall time, against best known.

    .venv/bin/python bench/sb/bench_gset.py --time 10
    .venv/bin/python bench/sb/bench_gset.py --time 5 --instances G1,G11 --no-write

For each instance SB restarts with a new seed until the time budget is spent and keeps the
best cut; dwave-samplers' simulated annealing (when installed) gets the same budget. The
table is printed and written into the "## G-set quality" section of bench/RESULTS.md.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import shlex
import sys
import time
import warnings

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


def instance_name(path: pathlib.Path) -> str:
    return path.name.split(".")[0]


def natural_key(path: pathlib.Path):
    parts = re.split(r"(\d+)", instance_name(path))
    return [int(part) if part.isdigit() else part for part in parts]


CALIBRATION_STEPS = 20


def sb_steps(model: MaxCut, budget: float, args) -> int:
    """Steps per run: --max-steps, or fewer when a run would not fit in the budget.

    The faster of two short runs sets the pace: the first one also pays one-off set-up.
    """
    timings = []
    for _ in range(2):
        began = time.perf_counter()
        model.maximize(agents=args.agents, max_steps=CALIBRATION_STEPS, mode=args.mode,
                       heated=args.heated, verbose=False, early_stopping=False,
                       backend=args.backend, seed=args.seed)
        timings.append(time.perf_counter() - began)
    per_step = min(timings) / CALIBRATION_STEPS
    return max(CALIBRATION_STEPS, min(args.max_steps, int(0.9 * budget / per_step)))


def run_sb(model: MaxCut, budget: float, args) -> dict:
    """Seeded restarts until the budget is spent; the best cut and when it was found.

    A run cut short by the clock mid-ramp gives a poor cut, so each run is sized to fit
    (`sb_steps`, calibration included in the budget) and, as in sb_native.presets, the
    pressure ramps over the whole run: pressure_slope = 1 / (time_step * steps).
    """
    best, found_at, runs = -float("inf"), 0.0, 0
    start = time.perf_counter()
    env = sb_native.get_env()
    steps = sb_steps(model, budget, args)
    sb_native.set_env(time_step=args.time_step, pressure_slope=1.0 / (args.time_step * steps))
    try:
        with warnings.catch_warnings():
            # A run stopped by the clock before convergence still returns valid spins.
            warnings.simplefilter("ignore", sb_native.ConvergenceWarning)
            while (remaining := budget - (time.perf_counter() - start)) > 0:
                _, cut = model.maximize(agents=args.agents, max_steps=steps, mode=args.mode,
                                        heated=args.heated, timeout=remaining, verbose=False,
                                        backend=args.backend, seed=args.seed + runs)
                runs += 1
                if float(cut) > best:
                    best, found_at = float(cut), time.perf_counter() - start
    finally:
        sb_native.set_env(**env)
    return {"cut": best, "to_best_s": found_at, "total_s": time.perf_counter() - start,
            "runs": runs, "steps": steps}


def run_sa(edges: np.ndarray, nodes: int, budget: float, seed: int, sweeps: int):
    """dwave-samplers' simulated annealing on the same Ising form, reads until the budget.

    Sweeps per read are --sa-sweeps, or fewer when one read would not fit the budget.
    """
    try:
        import dimod
        from dwave.samplers import SimulatedAnnealingSampler
    except ImportError:
        return None
    rows, cols, weights = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64), edges[:, 2]
    # Minimizing sum w_ij s_i s_j = total - 2 cut maximizes the cut.
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(np.zeros(nodes), (rows, cols, weights),
                                                        0.0, dimod.SPIN)
    total = float(weights.sum())
    sampler = SimulatedAnnealingSampler()
    best, found_at, reads = -float("inf"), 0.0, 0
    start = time.perf_counter()
    sampler.sample(bqm, num_reads=1, num_sweeps=CALIBRATION_STEPS, seed=seed)
    per_sweep = (time.perf_counter() - start) / CALIBRATION_STEPS
    sweeps = max(CALIBRATION_STEPS, min(sweeps, int(0.9 * budget / per_sweep)))
    per_read = sweeps * per_sweep
    while (remaining := budget - (time.perf_counter() - start)) > 0:
        batch = int(remaining / per_read) if reads else 1
        if batch < 1:
            break
        began = time.perf_counter()
        energy = float(sampler.sample(bqm, num_reads=batch, num_sweeps=sweeps,
                                      seed=seed + reads).first.energy)
        per_read = (time.perf_counter() - began) / batch
        reads += batch
        if (total - energy) / 2 > best:
            best, found_at = (total - energy) / 2, time.perf_counter() - start
    return {"cut": best, "to_best_s": found_at, "total_s": time.perf_counter() - start,
            "reads": reads, "sweeps": sweeps}


def percent(cut, best_known):
    return f"{100 * cut / best_known:.2f}" if best_known else "–"


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    info = sb_native.backend_info()
    native = ("native extension loaded" if info["native"]
              else f"native unavailable ({info['reason']})")
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), {gpu}, "
            f"torch {torch.__version__}, torch threads: {info['threads']}, {native}")


def write_section(text: str) -> None:
    """Replace (or append) our section of RESULTS.md, leaving every other section alone."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(updated)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=pathlib.Path, default=DATA, help="folder of instances")
    parser.add_argument("--instances", help="comma-separated names, e.g. G1,G22,K2000")
    parser.add_argument("--time", type=float, default=10.0, help="seconds per instance and solver")
    parser.add_argument("--agents", type=int, default=128)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--mode", choices=("ballistic", "discrete"), default="discrete")
    parser.add_argument("--time-step", type=float, default=0.5,
                        help="SB time step (the maxcut-sparse preset's by default)")
    parser.add_argument("--heated", action="store_true")
    parser.add_argument("--backend", choices=("auto", "native", "torch"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sa-sweeps", type=int, default=1000, help="sweeps per SA read")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for SB (default: torch's; SA runs on one)")
    parser.add_argument("--no-sa", action="store_true", help="skip simulated annealing")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--note", default="", help="text written under the table")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        print(f"bench_gset: no instance folder at {args.data}", file=sys.stderr)
        return 1
    best_known_path = args.data / "best_known.json"
    best_known = json.loads(best_known_path.read_text()) if best_known_path.exists() else {}
    paths = sorted((p for p in args.data.iterdir() if re.fullmatch(r".+\.txt(\.gz)?", p.name)),
                   key=natural_key)
    if args.instances:
        wanted = args.instances.split(",")
        missing = set(wanted) - {instance_name(p) for p in paths}
        if missing:
            print(f"bench_gset: unknown instances: {', '.join(sorted(missing))}", file=sys.stderr)
            return 1
        paths = [p for p in paths if instance_name(p) in wanted]

    header = ("| instance | n | edges | best known | SB cut | SB % | SB to best (s) "
              "| SB runs × steps | SA cut | SA % | SA to best (s) | SA reads × sweeps |")
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    print(header, flush=True)
    load_average = os.getloadavg()[0]
    for path in paths:
        name = instance_name(path)
        nodes, edges = sio.read_gset_edges(path)
        model = MaxCut.from_gset(path)
        sb = run_sb(model, args.time, args)
        sa = None if args.no_sa else run_sa(edges, nodes, args.time, args.seed, args.sa_sweeps)
        known = best_known.get(name)
        sa_cells = ([f"{sa['cut']:.0f}", percent(sa["cut"], known), f"{sa['to_best_s']:.1f}",
                     f"{sa['reads']} × {sa['sweeps']}"] if sa else ["–"] * 4)
        cells = [name, str(nodes), str(len(edges)), str(known or "–"), f"{sb['cut']:.0f}",
                 percent(sb["cut"], known), f"{sb['to_best_s']:.1f}",
                 f"{sb['runs']} × {sb['steps']}"] + sa_cells
        row = "| " + " | ".join(cells) + " |"
        lines.append(row)
        print(row, flush=True)

    arguments = argv if argv is not None else sys.argv[1:]
    command = "python bench/sb/bench_gset.py " + shlex.join(arguments)
    settings = (f"SB: {args.mode}{' heated' if args.heated else ''}, {args.agents} agents, "
                f"up to {args.max_steps} steps per run (fewer where a run would not fit the "
                f"budget, by a {CALIBRATION_STEPS}-step calibration; time step {args.time_step:g}, "
                "pressure ramped over the whole run), early stopping on, float32, "
                f"backend {args.backend}, restarts "
                f"with seeds {args.seed}, {args.seed + 1}, ... until {args.time:g} s per "
                f"instance. SA: dwave-samplers SimulatedAnnealingSampler, up to "
                f"{args.sa_sweeps} sweeps per read (fewer where a read would not fit), reads "
                f"until the same {args.time:g} s.")
    section = "\n".join([
        SECTION, "",
        f"Measured {datetime.date.today().isoformat()} on {machine()}; "
        f"1-minute load average at the start: {load_average:.1f}.", "",
        f"Command: `{command.strip()}`", "", f"Settings: {settings}", "",
        "\"%\" is the cut as a percentage of the best known cut (`best_known.json`; – where "
        "none is listed). \"to best\" is the wall time at which the best cut of the budget was "
        "found; instance loading is not counted.", "",
        *lines, "", *([args.note, ""] if args.note else [])])
    if not args.no_write:
        write_section(section)
        print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
