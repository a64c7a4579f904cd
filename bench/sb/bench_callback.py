"""What a run history costs: the same seeded run with no callback and with
sb_native.History, early stopping on and off, best of --repeat interleaved runs each.

    .venv/bin/python bench/sb/bench_callback.py            # G22 (else a random graph)

With early stopping the callback reuses its sampling points; without, it adds them.
Results: bench/RESULTS.md, "The callback's cost".
"""

import argparse
import pathlib
import sys
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "sb"))

from bench_history import load  # noqa: E402

import sb_native  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instance", default="G22")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    model = load(args.instance)
    # 2000 steps end before any agent can freeze (50 samplings of 50 steps): both runs do
    # the same steps, whatever the early stopping.
    warnings.simplefilter("ignore", sb_native.ConvergenceWarning)
    kwargs = dict(agents=128, max_steps=args.steps, seed=0, verbose=False)
    print(f"{args.instance}, 128 agents, {args.steps} steps, best of {args.repeat}")
    for early in (True, False):
        times = {"off": [], "on": []}
        for _ in range(args.repeat):
            for name in times:
                callback = sb_native.History() if name == "on" else None
                start = time.perf_counter()
                model.maximize(**kwargs, early_stopping=early, callback=callback)
                times[name].append(time.perf_counter() - start)
        off, on = min(times["off"]), min(times["on"])
        print(f"early_stopping={early}: no callback {off:.3f} s, History {on:.3f} s, "
              f"ratio {on / off:.2f}")


if __name__ == "__main__":
    main()
