"""Does QIMADTorch's loss_ema pick better weights than the plain best-loss rule on mini-batches?

    .venv/bin/python bench/qimad/bench_best_tracking.py [--seeds 10] [--steps 300]
        [--batch-size 32] [--decays 0.9 0.98] [--threads 1] [--write bench/RESULTS.md]

QIMADTorch leaves the model holding the weights of the agent with the lowest loss ever seen.
With mini-batches every agent of a step sees the same batch, so that minimum is mostly a record
of the easiest batch: the plain rule keeps the agent that happened to be evaluated on it, and its
reported best loss is optimistic. loss_ema ranks agents by a moving average of their losses
instead. This script trains the digits MLP (64-128-10, X/16, as bench_qimad.py) with mini-batches
and measures, for the weights each optimizer leaves in the model, the full training loss, the
test loss and accuracy, and the gap between the best loss step() reported and the true training
loss of those weights. Adam (lr=1e-3) is a reference line of what plain SGD-style training
reaches in the same steps.

Per seed every contender starts from the same MLP (torch.manual_seed(seed)) and sees the same
batches (a torch.Generator seeded with seed draws a permutation each epoch; incomplete last
batches are dropped so every step has batch_size examples). The contenders step in lockstep, in
rotating order, so load from other jobs falls on all alike (it changes the times, not the values).
"""

import argparse
import datetime
import inspect
import os
import pathlib
import platform
import shlex
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from results_section import write_section

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from sb_native.optim import QIMADTorch  # noqa: E402

HEADING = "## QIMAD best tracking with mini-batches"
DEFAULT_ORDER = inspect.signature(QIMADTorch).parameters["update_order"].default


def digits():
    """sklearn digits as in bench_qimad.py (X/16), split 75/25 with a fixed random_state so
    every seed and every run tests on the same held-out images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    data = load_digits()
    X_tr, X_te, y_tr, y_te = train_test_split(data.data / 16.0, data.target, test_size=0.25,
                                              random_state=0)
    as_x = lambda a: torch.tensor(a, dtype=torch.float32)
    as_y = lambda a: torch.tensor(a, dtype=torch.int64)
    return as_x(X_tr), as_y(y_tr), as_x(X_te), as_y(y_te)


def mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


def batch_order(n, batch_size, steps, seed):
    """The index tensors of `steps` mini-batches: a fresh permutation every epoch, drawn from a
    generator of its own so the order is the seed's alone, identical for every contender."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    while len(batches) < steps:
        perm = torch.randperm(n, generator=g)
        batches += [perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return batches[:steps]


class Contender:
    """One model and optimizer; step(batch) runs one optimizer step on that batch and keeps what
    step() returned (QIMADTorch: the best, or best smoothed, loss) and the step's time."""

    def __init__(self, make_opt, seed, X, y):
        self.model = mlp(seed)
        self.opt = make_opt(self.model.parameters())
        self.X, self.y = X, y
        self.batch = None
        self.reported, self.step_s = None, []

    def closure(self):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(self.X[self.batch]), self.y[self.batch])
        loss.backward()
        return loss.detach()

    def step(self, batch):
        self.batch = batch
        t0 = time.perf_counter()
        out = self.opt.step(self.closure)
        self.step_s.append(time.perf_counter() - t0)
        self.reported = float(out)

    @torch.no_grad()
    def metrics(self, data):
        """Full-set losses and accuracy of the weights now in the model: what a user keeps."""
        X_tr, y_tr, X_te, y_te = data
        train = float(F.cross_entropy(self.model(X_tr), y_tr))
        logits = self.model(X_te)
        return dict(train=train, test=float(F.cross_entropy(logits, y_te)),
                    acc=100.0 * float((logits.argmax(1) == y_te).float().mean()),
                    reported=self.reported, gap=self.reported - train,
                    ms=1e3 * statistics.median(self.step_s))


def contenders(decays):
    """(name, optimizer factory taking (params, seed), is QIMAD) for every run compared."""
    kw = dict(num_agents=8, lr=0.01)
    runs = [("QIMAD plain (loss_ema=None)",
             lambda ps, s: QIMADTorch(ps, seed=s, **kw), True)]
    runs += [(f"QIMAD loss_ema={d}",
              lambda ps, s, d=d: QIMADTorch(ps, seed=s, loss_ema=d, **kw), True) for d in decays]
    runs.append(("Adam lr=1e-3", lambda ps, s: torch.optim.Adam(ps, lr=1e-3), False))
    return runs


def run_seed(runs, seed, data, batch_size, steps):
    X_tr, y_tr = data[0], data[1]
    batches = batch_order(len(y_tr), batch_size, steps, seed)
    cs = [Contender(lambda ps, m=make: m(ps, seed), seed, X_tr, y_tr) for _, make, _ in runs]
    for k, batch in enumerate(batches):
        for j in range(len(cs)):
            cs[(j + k) % len(cs)].step(batch)
    return [c.metrics(data) for c in cs]


METRICS = [("train", "full train loss", 4), ("test", "test loss", 4), ("acc", "test acc %", 2),
           ("reported", "step()'s best loss", 4), ("gap", "best loss - train loss", 4),
           ("ms", "ms / step", 2)]


def mean_std(values, digits):
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def paired(ema, plain, key, higher_is_better):
    """Mean difference EMA - plain, seeds where EMA is better, two-sided Wilcoxon signed-rank p
    (paired by seed: same initial weights and batches, so the seed-to-seed spread cancels)."""
    from scipy.stats import wilcoxon
    diffs = [e[key] - p[key] for e, p in zip(ema, plain)]
    better = sum((d > 0) if higher_is_better else (d < 0) for d in diffs)
    try:
        p = f"{wilcoxon(diffs).pvalue:.3g}" if any(diffs) else "-"
    except ValueError:  # too few non-zero differences
        p = "-"
    return statistics.mean(diffs), better, p


def tables(runs, results, args, n_train, n_test):
    seeds = len(next(iter(results.values())))
    lines = [f"digits MLP 64-128-10 (X/16), train/test {n_train}/{n_test} (train_test_split "
             f"test_size=0.25, random_state=0), batch {args.batch_size}, {args.steps} steps "
             f"({args.steps / (n_train // args.batch_size):.1f} epochs), seeds 0..{seeds - 1}; "
             f"QIMADTorch num_agents=8, lr=0.01, update_order={DEFAULT_ORDER!r} (the default), "
             "other settings default. Metrics of the weights the optimizer leaves in the model; "
             "mean ± std over seeds.", "",
             "| run | " + " | ".join(title for _, title, _ in METRICS) + " |",
             "|---" * (len(METRICS) + 1) + "|"]
    for name, _, is_qimad in runs:
        cells = [mean_std([r[key] for r in results[name]], d)
                 if is_qimad or key not in ("reported", "gap") else "-" for key, _, d in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Paired by seed, EMA - plain; |gap| is |best loss - train loss| (how far "
              "step()'s report is from the truth).", "",
              "| comparison | metric | mean difference | seeds EMA better | Wilcoxon p |",
              "|---|---|---|---|---|"]
    plain = results[runs[0][0]]
    for name, _, is_qimad in runs[1:]:
        if not is_qimad:
            continue
        ema = results[name]
        for r in ema + plain:
            r["abs_gap"] = abs(r["gap"])
        for key, title, higher in [("train", "full train loss", False),
                                   ("test", "test loss", False), ("acc", "test acc %", True),
                                   ("abs_gap", "abs gap", False)]:
            diff, better, p = paired(ema, plain, key, higher)
            lines.append(f"| {name} vs plain | {title} | {diff:+.4f} | {better}/{seeds} | {p} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--decays", type=float, nargs="+", default=[0.9, 0.98],
                        help="loss_ema decays to compare with the plain rule")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--write", type=pathlib.Path, help="results file to update")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    exe = pathlib.Path(sys.executable)
    exe_name = (os.path.relpath(exe, pathlib.Path.cwd()) if exe.is_relative_to(ROOT)
                else "python")
    command = shlex.join([exe_name, *sys.argv])
    header = (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, torch {torch.__version__}, torch threads: "
              f"{torch.get_num_threads()}; command: `{command}`")
    print(header, flush=True)
    data = digits()
    runs = contenders(args.decays)
    results = {name: [] for name, _, _ in runs}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for (name, _, _), m in zip(runs, run_seed(runs, seed, data, args.batch_size, args.steps)):
            results[name].append(m)
        print(f"seed {seed} done, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    lines = tables(runs, results, args, len(data[1]), len(data[3]))
    lines.append("")
    lines.append(f"Wall time {time.perf_counter() - t0:.0f} s.")
    print("\n".join(lines), flush=True)
    if args.write:
        method = "\n\n".join(" ".join(p.split()) for p in __doc__.split("\n\n")[2:])
        body = "\n".join([HEADING, "", header, "", method, "", *lines])
        write_section(args.write, HEADING, body)


if __name__ == "__main__":
    main()
