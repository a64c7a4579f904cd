"""Best cut against wall time on G-set instances and K2000: native SB (several settings),
the peer package (simulated-bifurcation 2.0.0) and dwave-samplers' simulated annealing,
in one run.

    python bench/sb/bench_quality.py --instances G22 K2000
    python bench/sb/bench_quality.py --instances G22 --no-peer

Needs ../shared/data/gset (skips missing instances). Each row is one solver run; SB runs
are seeded (seed 0), SA uses seed 0 too.
"""

import argparse
import contextlib
import time
import warnings

import torch
from cases import GSET, best_known

import sb_native as sb

# (label, environment, solver keywords): the SB settings tried on every instance.
SB_SETTINGS = [
    *[(f"preset {name}", {"time_step": p.time_step, "pressure_slope": p.pressure_slope},
       p.solver_kwargs()) for name, p in sb.presets.PRESETS.items()],
    ("dSB dt=0.5 ramp 128x4000", {"time_step": 0.5, "pressure_slope": 1 / (0.5 * 4000)},
     dict(mode="discrete", agents=128, max_steps=4000, early_stopping=False)),
    ("dSB defaults 128x2000", {},
     dict(mode="discrete", agents=128, max_steps=2000, early_stopping=False)),
    ("bSB 128x1000", {}, dict(mode="ballistic", agents=128, max_steps=1000, early_stopping=False)),
]
SA_SWEEPS = [100, 1000, 4000]


@contextlib.contextmanager
def environment(values):
    sb.set_env(**values)
    try:
        yield
    finally:
        sb.reset_env()


def load(name: str) -> sb.models.MaxCut:
    path = GSET / (f"{name}.txt.gz" if name == "K2000" else f"{name}.txt")
    return sb.models.MaxCut.from_gset(path)


def run_sb(model, env, kwargs):
    with environment(env):
        start = time.perf_counter()
        _, cut = model.maximize(verbose=False, seed=0, **kwargs)
        return float(cut), time.perf_counter() - start


def run_peer(model, agents: int, steps: int):
    import simulated_bifurcation as peer

    quadratic = model.quadratic.to_dense() if model.quadratic.is_sparse else model.quadratic
    torch.manual_seed(0)
    start = time.perf_counter()
    _, cut = peer.maximize(quadratic, model.bias, domain="spin", agents=agents, max_steps=steps,
                           verbose=False)
    return float(cut), time.perf_counter() - start


def run_sa(model, sweeps: int, reads: int = 8):
    from dwave.samplers import SimulatedAnnealingSampler

    weights = model.weights.to_sparse().coalesce() if not model.weights.is_sparse else model.weights
    rows, cols = weights.indices()
    upper = rows < cols
    # Max-Cut as an Ising problem: J_ij = w_ij (minimising sum w s_i s_j maximises the cut).
    J = {(int(i), int(j)): float(w) for i, j, w in
         zip(rows[upper].tolist(), cols[upper].tolist(), weights.values()[upper].tolist())}
    start = time.perf_counter()
    result = SimulatedAnnealingSampler().sample_ising({}, J, num_reads=reads, num_sweeps=sweeps,
                                                      seed=0)
    elapsed = time.perf_counter() - start
    total = float(weights.values()[upper].sum())
    return (total - result.first.energy) / 2, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", nargs="*", default=["G22", "K2000"])
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-sa", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"# {time.strftime('%Y-%m-%d')}, threads {torch.get_num_threads()}, "
          f"native={sb.backend_info()['native']}")
    print("| instance | solver | settings | best cut | % of best known | time (s) |")
    print("|---|---|---|---|---|---|")
    for name in args.instances:
        if not (GSET / f"{name}.txt").exists() and not (GSET / f"{name}.txt.gz").exists():
            print(f"| {name} | skipped: not in {GSET} | | | | |")
            continue
        model = load(name)
        known = best_known(name)

        def row(solver, settings, cut, seconds):
            share = f"{100 * cut / known:.2f}" if known else "n/a"
            print(f"| {name} | {solver} | {settings} | {cut:.0f} | {share} | {seconds:.2f} |",
                  flush=True)

        for label, env, kwargs in SB_SETTINGS:
            row("sb_native", label, *run_sb(model, env, kwargs))
        if not args.no_sa:
            try:
                for sweeps in SA_SWEEPS:
                    row("dwave SA", f"8 reads x {sweeps} sweeps", *run_sa(model, sweeps))
            except ImportError:
                print(f"| {name} | dwave SA | not installed | | | |")
        if not args.no_peer:
            agents, steps = (256, 3000) if name == "K2000" else (128, 10000)
            row("peer 2.0.0", f"bSB {agents}x{steps}", *run_peer(model, agents, steps))


if __name__ == "__main__":
    main()
