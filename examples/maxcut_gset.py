"""Max-Cut of a G-set graph under a time limit.

Shows `sb_native.models.MaxCut.from_gset` (reads a G-set/rudy file: a line "n m", then one
"i j w" line per edge, 1-based) and `sb_native.solve_within(model, T)`: SB runs sized to the
time limit, each from a fresh seed and polished by local search, until the limit; the best
cut found, when it was found and the runs made (docs/timed.md).

    python examples/maxcut_gset.py                        # G1 from ../shared/data/gset, 10 s
    python examples/maxcut_gset.py path/to/G22.txt --timeout 30
    python examples/maxcut_gset.py --small                # random 100-node graph, 1 s

Without a path, and without the G-set data next to the repository, a random graph is
written in G-set format to a temporary file and solved. The runs made depend on the
machine's speed, so the same --seed gives the same cut only on the same machine; a step
count and a number of runs (solve_within's steps= and max_runs=) make it reproducible.
"""

import argparse
import pathlib
import tempfile

import torch

import sb_native
from sb_native.io import write_gset

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_GSET = ROOT.parent / "shared" / "data" / "gset" / "G1.txt"


def write_random_gset(path: pathlib.Path, nodes: int, seed: int) -> None:
    """A random unweighted graph with G1's density (6%), in G-set format."""
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(nodes, nodes, generator=g) < 0.06, diagonal=1)
    write_gset(path, upper.double())


def main() -> None:
    parser = argparse.ArgumentParser(description="Max-Cut of a G-set file with a time limit.")
    parser.add_argument("path", nargs="?", help="G-set file (default: G1, else a random graph)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true",
                        help="a random 100-node graph (unless a path is given), a 1 s limit")
    args = parser.parse_args()
    time_limit = 1.0 if args.small else args.time_limit

    with tempfile.TemporaryDirectory() as tmp:
        path = args.path
        if path is None and not args.small and DEFAULT_GSET.exists():
            path = DEFAULT_GSET
        elif path is None:
            path = pathlib.Path(tmp) / "random.txt"
            write_random_gset(path, nodes=100 if args.small else 800, seed=args.seed)
        model = sb_native.models.MaxCut.from_gset(path)

    # The settings (discrete SB, agents, steps per run, time step) come from the graph's
    # class: sb_native.settings_for(model).
    result = sb_native.solve_within(model, time_limit, sense="maximize", seed=args.seed,
                                    verbose=False)
    print(f"graph: {pathlib.Path(path).name}, {model.dimension} nodes")
    print(f"cut value: {result.value:.10g} (found at {result.found_at:.2f} s, {result.runs} "
          f"runs of up to {result.steps} steps, limit {time_limit:g} s)")


if __name__ == "__main__":
    main()
