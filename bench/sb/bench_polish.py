"""Local-search polish (sb_polish): what it adds to SB's cuts and what it costs, native and
torch reference, measured in one run.

    .venv/bin/python bench/sb/bench_polish.py
    .venv/bin/python bench/sb/bench_polish.py --instances G22 --agents 16 --steps 2000

For each instance: one dSB run (the class's time step, pressure ramped over the run, seed 0),
then its spins polished by the native kernel and by the torch reference (the same spins
come out: checked). The table gives the best and mean cut of the agents before and after, the
flips made, the run's time and each polish's time.
"""

import argparse
import pathlib
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sb_native as sb  # noqa: E402
from sb_native.engine import SBRunner  # noqa: E402
from sb_native.engine.polish import Polisher  # noqa: E402
from sb_native.models import MaxCut  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gset"


def load(name: str) -> MaxCut:
    path = DATA / f"{name}.txt"
    return MaxCut.from_gset(path if path.exists() else DATA / f"{name}.txt.gz")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", default="G14,G22,G55,G70,G81,K2000")
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--torch-max-nodes", type=int, default=5000,
                        help="time the torch reference up to this size (it loops in Python)")
    args = parser.parse_args(argv)
    if not sb.backend_info()["native"]:
        print("bench_polish: the native extension is not loaded", file=sys.stderr)
        return 1
    print(f"{args.agents} agents, {args.steps} steps, dSB, seed 0, "
          f"{torch.get_num_threads()} threads")
    print("| instance | n | cut before (best / mean) | cut after (best / mean) | flips per agent "
          "| SB run (s) | polish native (s) | polish torch (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.instances.split(","):
        model = load(name)
        coupling = (-model.to_ising("spin"))._coupling().for_run("native", True)
        settings = sb.settings_for(model)
        runner = SBRunner(agents=args.agents, max_steps=args.steps, timeout=None, mode="discrete",
                          heated=False, verbose=False, early_stopping=False, sampling_period=50,
                          convergence_threshold=50, backend="native",
                          generator=torch.Generator().manual_seed(0))
        previous = sb.get_env()
        sb.set_env(time_step=settings.time_step,
                   pressure_slope=1 / (settings.time_step * args.steps))
        try:
            began = time.perf_counter()
            spins = runner.run(coupling)
            run_s = time.perf_counter() - began
        finally:
            sb.set_env(**previous)
        before = model(spins.t())
        began = time.perf_counter()
        native, _ = Polisher(coupling, "native")(spins)
        native_s = time.perf_counter() - began
        torch_s = "–"
        if coupling.n <= args.torch_max_nodes:
            began = time.perf_counter()
            reference, _ = Polisher(coupling, "torch")(spins)
            torch_s = f"{time.perf_counter() - began:.3f}"
            assert torch.equal(reference, native), "the reference must make the same flips"
        after = model(native.t())
        flips = float((native != spins).sum()) / args.agents
        print(f"| {name} | {model.dimension} | {before.max():.0f} / {before.mean():.1f} | "
              f"{after.max():.0f} / {after.mean():.1f} | {flips:.1f} | {run_s:.3f} | "
              f"{native_s:.4f} | {torch_s} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
