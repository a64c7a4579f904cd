"""Time per SB step: native vs the pure-torch path vs simulated-bifurcation 2.0.0 (the peer),
measured in one run, plus a bare GEMM of the same shape as the floor for dense bSB.

    python bench/sb/bench_sb.py                 # every case
    python bench/sb/bench_sb.py --cases dense100 K2000 --steps 500

Each solver runs a whole `maximize` call (agents=128, float32, early stopping off, a fixed
number of steps, same seed); time per step = wall time / steps, so set-up costs count.
"""

import argparse
import platform
import time
import warnings

import torch
from cases import dense_case, sparse_case

import sb_native as sb

DENSE = {"dense100": 100, "dense500": 500, "K2000": 2000}
DEFAULT_STEPS = {"dense100": 2000, "dense500": 1000, "K2000": 1000, "G22": 1000, "G55": 500,
                 "G81": 500}
PEER_MAX_N = 5000  # the peer needs an n x n dense matrix; above this it is not run


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_case(name: str, mode: str, steps: int, agents: int, peer) -> dict:
    case = dense_case(DENSE[name]) if name in DENSE else sparse_case(name)
    model = case.model
    kwargs = dict(agents=agents, max_steps=steps, early_stopping=False, verbose=False, mode=mode)
    row = {"case": name, "n": case.n, "mode": mode, "steps": steps}
    row["native"] = timed(lambda: model.maximize(backend="native", seed=0, **kwargs)) / steps
    row["torch"] = timed(lambda: model.maximize(backend="torch", seed=0, **kwargs)) / steps
    if peer is not None and case.n <= PEER_MAX_N:
        quadratic = model.quadratic.to_dense() if model.quadratic.is_sparse else model.quadratic
        torch.manual_seed(0)
        row["peer"] = timed(lambda: peer.maximize(quadratic, model.bias, domain="spin",
                                                  **kwargs)) / steps
    if name in DENSE:
        matrix = model.quadratic
        x = torch.rand(case.n, agents)
        reps = max(10, steps // 10)
        row["gemm"] = timed(lambda: [torch.mm(matrix, x) for _ in range(reps)]) / reps
    return row


def fmt(value) -> str:
    return "n/a" if value is None else f"{value * 1e3:.3f}"


def ratio(a, b) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(DEFAULT_STEPS))
    parser.add_argument("--modes", nargs="*", default=["ballistic", "discrete"])
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: per case)")
    parser.add_argument("--agents", type=int, default=128)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    try:
        import simulated_bifurcation as peer
    except ImportError:
        peer = None
    info = sb.backend_info()
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{info['threads']} threads, torch {info['torch']}, native={info['native']}, "
          f"agents={args.agents}, float32")
    print("| case | n | mode | steps | native ms/step | torch ms/step | peer ms/step | GEMM ms | "
          "peer/native | torch/native | native/GEMM |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        for mode in args.modes:
            row = run_case(name, mode, args.steps or DEFAULT_STEPS[name], args.agents, peer)
            native, torch_, peer_, gemm = (row.get(k) for k in ("native", "torch", "peer", "gemm"))
            floor = ratio(native, gemm) if mode == "ballistic" else "n/a"
            cells = [name, row["n"], mode, row["steps"], fmt(native), fmt(torch_), fmt(peer_),
                     fmt(gemm), ratio(peer_, native), ratio(torch_, native), floor]
            print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
