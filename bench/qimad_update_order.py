"""Final digits loss of QIMADTorch against the reference over many seeds, with an ablation of
the update order: the reference moves agents one after another, so agent i's communication
term reads the already-moved positions of agents 0..i-1 (Gauss-Seidel); QIMADTorch updates
all agents from the positions before the step (synchronous, as issue 4 asks). The ablation
runs QIMADTorch's own update one agent at a time in agent order, which restores the
reference's order and changes nothing else. Both QIMADTorch runs use the torch backend, whose
step (sb_native/optim/_kernels.py: step_torch) calls update_torch, the function the ablation
replaces; the native backend runs the same dynamics in one call into the extension.

    .venv/bin/python bench/qimad_update_order.py --seeds 20

Prints a markdown table (mean, standard deviation and per-seed values of the best loss after
the steps); digits MLP 64-128-10, full batch, N=8, eta=0.01, as in bench_qimad.py.
"""

import argparse
import statistics

import torch

from bench_qimad import NOISE_SEED_OFFSET, DigitsContender, digits, load_reference
from sb_native.optim import QIMADTorch, _kernels

_synchronous_update = _kernels.update_torch


def sequential_update(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta,
                      seg_gamma, seg_w, tunnel_rows, noise, temperature, decay, eps):
    """The same update applied to one agent at a time, in agent order."""
    tunnels = tunnel_rows.tolist()
    for r in rows.tolist():
        mine = [k for k, t in enumerate(tunnels) if t == r]
        _synchronous_update(theta, square_avg, grad, best, W, rows.new_tensor([r]),
                            attract, segments, seg_eta, seg_gamma, seg_w,
                            tunnel_rows.new_tensor([r] if mine else []), noise[mine],
                            temperature, decay, eps)


def final_losses(make, seeds, steps, X, y):
    out = []
    for seed in seeds:
        c = DigitsContender(lambda ps: make(ps, seed), X, y, seed, "step")
        torch.manual_seed(NOISE_SEED_OFFSET + seed)  # the reference's tunnelling noise, as in bench_qimad
        for _ in range(steps):
            c.step()
        out.append(c.best)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = digits()
    seeds = list(range(args.seeds))
    kw = dict(num_agents=8, eta=0.01)
    runs = {}
    ref = load_reference()
    if ref is not None:
        runs["reference (sequential order)"] = final_losses(
            lambda ps, s: ref(ps, seed=s, **kw), seeds, args.steps, X, y)
    ours = lambda ps, s: QIMADTorch(ps, seed=s, backend="torch", **kw)  # noqa: E731
    runs["QIMADTorch (synchronous, default)"] = final_losses(ours, seeds, args.steps, X, y)
    _kernels.update_torch = sequential_update
    try:
        runs["QIMADTorch, ablation: sequential order"] = final_losses(ours, seeds, args.steps, X, y)
    finally:
        _kernels.update_torch = _synchronous_update
    print(f"digits MLP 64-128-10, N=8, eta=0.01, {args.steps} steps, seeds 0..{args.seeds - 1}\n")
    print("| run | mean best loss | std | per seed |")
    print("|---|---|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {statistics.mean(values):.5f} | {statistics.stdev(values):.5f} | "
              f"{', '.join(f'{v:.4f}' for v in values)} |")


if __name__ == "__main__":
    main()
