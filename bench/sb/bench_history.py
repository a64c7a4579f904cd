"""How the best cut grows with time, native against pure-torch: one seeded run per backend
on a G-set instance, histories recorded with sb_native.History, drawn to one figure.

    .venv/bin/python bench/sb/bench_history.py                       # G22, writes the PNG
    .venv/bin/python bench/sb/bench_history.py --instance G1 --mode discrete --no-write

Both backends run the same steps from the same seed (early stopping on, as users run it), so
the curves differ in time only. Prints one row per backend (final cut, steps, seconds, time
to 99.5% of the final cut) and, unless --no-write, writes bench/convergence.png (the
README's figure). The ratios are measured in one run; see bench/RESULTS.md.
"""

import argparse
import pathlib
import platform
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sb_native  # noqa: E402
from sb_native.models import MaxCut  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gset"
FIGURE = ROOT / "bench" / "convergence.png"


def load(name: str) -> MaxCut:
    path = DATA / f"{name}.txt"
    if path.exists():
        return MaxCut.from_gset(str(path))
    # Without the data: a seeded random graph of G22's size and density.
    print(f"{path} not found: a random 2000-node graph instead", file=sys.stderr)
    g = torch.Generator().manual_seed(0)
    upper = torch.triu((torch.rand(2000, 2000, generator=g) < 0.01).float(), diagonal=1)
    rows, cols = torch.nonzero(upper, as_tuple=True)
    edges = torch.stack([rows, cols, torch.ones_like(rows)], dim=1).numpy()
    return MaxCut.from_edges(edges, n_nodes=2000)


def time_to(history: sb_native.History, fraction: float) -> float:
    target = fraction * history.best[-1]
    return next(p.seconds for p in history if p.best >= target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instance", default="G22")
    parser.add_argument("--mode", choices=("ballistic", "discrete"), default="ballistic")
    parser.add_argument("--agents", type=int, default=128)
    parser.add_argument("--max-steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    model = load(args.instance)
    backends = ["native", "torch"] if sb_native.backend_info()["native"] else ["torch"]
    runs = {}
    print(f"{args.instance}: {args.agents} agents, {args.mode}, seed {args.seed}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"{'backend':<8} {'cut':>8} {'steps':>7} {'seconds':>8} {'to 99.5%':>9}")
    for backend in backends:
        runs[backend] = history = sb_native.History()
        _, cut = model.maximize(agents=args.agents, max_steps=args.max_steps, mode=args.mode,
                                seed=args.seed, backend=backend, verbose=False,
                                callback=history)
        print(f"{backend:<8} {float(cut):>8g} {history.steps[-1]:>7} "
              f"{history.seconds[-1]:>8.2f} {time_to(history, 0.995):>9.2f}")
    if len(runs) == 2:
        # Early stopping may end the two runs at different steps: compare at the last step
        # both reached.
        step = min(run.steps[-1] for run in runs.values())
        at = {name: run.seconds[run.steps.index(step)] for name, run in runs.items()}
        print(f"native speed-up to step {step}: {at['torch'] / at['native']:.1f}x")
    if not args.no_write:
        sb_native.plot.histories(runs, title=f"{args.instance}, {args.agents} agents, "
                                             f"{args.mode} SB, same seed", path=str(FIGURE))
        print(f"figure: {FIGURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
