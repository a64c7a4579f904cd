"""QIMADTorch benchmarks against the seed's reference implementation, measured in one run.

    .venv/bin/python bench/qimad/bench_qimad.py [--write bench/RESULTS.md]

1. sklearn digits, MLP 64-128-10, full batch, N=8, eta=0.01: per-step time split into the N
   closure calls and everything else, against the reference and the pure-torch backend; also
   the N closures alone (no optimizer), step_batched and update_order="sequential" (the
   reference's agent order); final best loss after the steps.
2. Rastrigin-30 and Ackley-30, N=16: per-step time of step_batched (and step) against the
   reference's step, best values per seed.
3. The reference's published protocol: Rastrigin d=10, 8 agents, 150 iterations, 30 seeds.

The reference is the seed's code, vendored as the test oracle
tests/oracles/qimad_seed_reference.py; without it the reference columns are left out. Times
are medians over steps.
"""

import argparse
import datetime
import math
import pathlib
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from results_section import emit, write_section

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from sb_native.optim import QIMADTorch  # noqa: E402
from tests.helpers import SEED_REFERENCE, import_reference  # noqa: E402


def load_reference():
    """The seed's QIMADTorch class, or None when the seed is absent."""
    module = import_reference()
    return None if module is None else module.QIMADTorch


# The reference draws its tunnelling noise from the global RNG. Seeding that with the seed that
# initialised the model would make its jumps replay the initialisation's uniform draws (jumps
# along the initial weights, far gentler than random ones), so it gets a seed of its own.
NOISE_SEED_OFFSET = 10_000


def median_ms(values):
    return 1e3 * statistics.median(values)


# ── 1. digits MLP ─────────────────────────────────────────────────────────────

def digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    X = torch.tensor(data.data / 16.0, dtype=torch.float32)
    return X, torch.tensor(data.target, dtype=torch.int64)


def mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


class DigitsContender:
    """One model and optimizer stepping on digits; records each step's time and the time spent
    inside its N closure calls. The closure returns the loss detached, so freeing the autograd
    graph is counted inside the closure for every contender alike."""

    def __init__(self, make_opt, X, y, seed, mode):
        self.model = mlp(seed)
        self.opt = make_opt(self.model.parameters()) if make_opt else None
        self.X, self.y, self.mode = X, y, mode
        self.step_s, self.closure_s, self.best = [], [], None
        self.inside = 0.0

    def closure(self):
        t0 = time.perf_counter()
        if self.opt is None:
            self.model.zero_grad()
        else:
            self.opt.zero_grad()
        loss = F.cross_entropy(self.model(self.X), self.y)
        loss.backward()
        loss = loss.detach()
        self.inside += time.perf_counter() - t0
        return loss

    def step(self, agents=8):
        self.inside = 0.0
        t0 = time.perf_counter()
        if self.mode == "alone":  # N forward/backward passes, no optimizer at all
            for _ in range(agents):
                self.closure()
        elif self.mode == "batched":
            self.best = self.opt.step_batched(
                lambda forward: F.cross_entropy(forward(self.X), self.y), module=self.model)
        else:
            self.best = self.opt.step(self.closure)
        self.step_s.append(time.perf_counter() - t0)
        self.closure_s.append(self.inside)


def bench_digits(ref_cls, steps, seeds, out):
    X, y = digits()
    kw = dict(num_agents=8, eta=0.01)
    makers = [("ours native, step",
               lambda ps, s: QIMADTorch(ps, seed=s, backend="native", **kw), "step"),
              ("ours native, step, update_order='sequential'",
               lambda ps, s: QIMADTorch(ps, seed=s, backend="native", update_order="sequential",
                                        **kw), "step"),
              ("ours torch, step",
               lambda ps, s: QIMADTorch(ps, seed=s, backend="torch", **kw), "step"),
              ("ours native, step_batched", lambda ps, s: QIMADTorch(ps, seed=s, **kw), "batched"),
              ("N closures alone (no optimizer)", None, "alone")]
    if ref_cls is not None:
        makers.insert(0, ("reference", lambda ps, s: ref_cls(ps, seed=s, **kw), "step"))
    results = {name: [] for name, _, _ in makers}
    for seed in seeds:
        contenders = [(name, DigitsContender(make and (lambda ps, m=make: m(ps, seed)), X, y, seed,
                                             mode)) for name, make, mode in makers]
        torch.manual_seed(NOISE_SEED_OFFSET + seed)
        lockstep([c for _, c in contenders], steps)
        for name, c in contenders:
            results[name].append(c)
    rows = {}
    for name, runs in results.items():
        rows[name] = dict(
            step=statistics.median(median_ms(c.step_s) for c in runs),
            closure=statistics.median(median_ms(c.closure_s) for c in runs),
            outside=statistics.median(median_ms([s - i for s, i in zip(c.step_s, c.closure_s)])
                                      for c in runs),
            best=[c.best for c in runs])
    alone = rows.pop("N closures alone (no optimizer)")["step"]
    ours = rows["ours native, step"]
    lines = [f"digits MLP 64-128-10, full batch (1797 x 64), N=8, eta=0.01, {steps} steps, "
             f"seeds {seeds}; times are medians per step (ms)", "",
             "| run | step | N closures in step | outside closures | final best loss (per seed) |",
             "|---|---|---|---|---|"]
    for name, r in rows.items():
        closure = f"{r['closure']:.2f}" if r["closure"] else "-"
        outside = f"{r['outside']:.3f}" if r["closure"] else "-"
        lines.append(f"| {name} | {r['step']:.2f} | {closure} | {outside} | "
                     + ", ".join(f"{b:.4f}" for b in r["best"]) + " |")
    lines.append(f"| N closures alone (no optimizer) | {alone:.2f} | | | |")
    lines += ["", "| ratio | value |", "|---|---|"]
    if "reference" in rows:
        ref = rows["reference"]
        lines.append(f"| outside-closure time, reference / ours native | "
                     f"{ref['outside'] / ours['outside']:.1f}x |")
        lines.append(f"| whole step, reference / ours native | {ref['step'] / ours['step']:.2f}x |")
        seq = rows["ours native, step, update_order='sequential'"]
        lines.append(f"| mean final best loss, ours / reference | "
                     f"{statistics.mean(ours['best']) / statistics.mean(ref['best']):.3f} |")
        lines.append(f"| mean final best loss, ours update_order='sequential' / reference | "
                     f"{statistics.mean(seq['best']) / statistics.mean(ref['best']):.3f} |")
        lines.append(f"| outside-closure time, reference / ours native sequential | "
                     f"{ref['outside'] / seq['outside']:.1f}x |")
    lines.append(f"| outside-closure time, ours torch / ours native | "
                 f"{rows['ours torch, step']['outside'] / ours['outside']:.1f}x |")
    per_closure = ours["step"] / ours["closure"]
    lines.append(f"| ours native step / its N closure calls | {per_closure:.3f} |")
    lines.append(f"| ours native step / N closures alone | {ours['step'] / alone:.3f} |")
    lines.append(f"| step_batched / step (ours native) | "
                 f"{rows['ours native, step_batched']['step'] / ours['step']:.2f} |")
    emit(out, lines)


# ── 2. Rastrigin-30 and Ackley-30 ─────────────────────────────────────────────

def rastrigin(x):
    return 10 * x.shape[-1] + (x * x - 10 * torch.cos(2 * math.pi * x)).sum(-1)


def ackley(x):
    d = x.shape[-1]
    return (-20 * torch.exp(-0.2 * torch.sqrt((x * x).sum(-1) / d))
            - torch.exp(torch.cos(2 * math.pi * x).sum(-1) / d) + 20 + math.e)


FUNCTIONS = {"Rastrigin": (rastrigin, 5.12), "Ackley": (ackley, 32.768)}


def start(dim, bound, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(dim, generator=g) * 2 - 1) * bound


class FunctionContender:
    """One optimizer minimising fn from x0, by step(closure) or step_batched(fn)."""

    def __init__(self, make_opt, fn, x0, mode):
        self.x = torch.nn.Parameter(x0.clone())
        self.opt, self.fn, self.mode = make_opt([self.x]), fn, mode
        self.seconds, self.best = 0.0, None

    def closure(self):
        self.opt.zero_grad()
        loss = self.fn(self.x)
        loss.backward()
        return loss

    def step(self):
        t0 = time.perf_counter()
        if self.mode == "batched":
            self.best = self.opt.step_batched(self.fn)
        else:
            self.best = self.opt.step(self.closure)
        self.seconds += time.perf_counter() - t0


def lockstep(contenders, steps):
    """All contenders step by step in a rotating order, so machine load falls on all alike."""
    for k in range(steps):
        for j in range(len(contenders)):
            contenders[(j + k) % len(contenders)].step()


def function_contenders(ref_cls, kw):
    makers = [("ours step_batched", lambda ps, s: QIMADTorch(ps, seed=s, **kw), "batched"),
              ("ours step", lambda ps, s: QIMADTorch(ps, seed=s, **kw), "closure")]
    if ref_cls is not None:
        makers.insert(0, ("reference", lambda ps, s: ref_cls(ps, seed=s, **kw), "closure"))
    return makers


def run_functions(makers, fn, dim, bound, steps, seed):
    contenders = [FunctionContender(lambda ps, m=make: m(ps, seed), fn, start(dim, bound, seed),
                                    mode) for _, make, mode in makers]
    torch.manual_seed(NOISE_SEED_OFFSET + seed)
    lockstep(contenders, steps)
    return {name: (c.best, 1e3 * c.seconds / steps) for (name, _, _), c in zip(makers, contenders)}


def bench_functions(ref_cls, steps, seeds, dim, agents, out):
    makers = function_contenders(ref_cls, dict(num_agents=agents, total_steps=steps))
    lines = [f"{dim}-dimensional, N={agents}, {steps} steps, defaults (eta=0.05, gamma=0.05, "
             f"cosine cooling over the run), x0 ~ U(-b, b)^{dim}, seeds {seeds}; ms per step "
             "(mean over the run, median over seeds)", "",
             "| function | run | ms / step | best value per seed | mean best |",
             "|---|---|---|---|---|"]
    ratios = []
    for fname, (fn, bound) in FUNCTIONS.items():
        per_seed = [run_functions(makers, fn, dim, bound, steps, s) for s in seeds]
        times = {}
        for name, _, _ in makers:
            times[name] = statistics.median(r[name][1] for r in per_seed)
            bests = [r[name][0] for r in per_seed]
            per_seed = ", ".join(f"{b:.3f}" for b in bests)
            lines.append(f"| {fname} | {name} | {times[name]:.3f} | {per_seed} | "
                         f"{statistics.mean(bests):.3f} |")
        if "reference" in times:
            ratios.append(f"| {fname}: reference step / ours step_batched | "
                          f"{times['reference'] / times['ours step_batched']:.1f}x |")
            ratios.append(f"| {fname}: reference step / ours step | "
                          f"{times['reference'] / times['ours step']:.1f}x |")
    emit(out, lines + ["", "| ratio | value |", "|---|---|"] + ratios)


def bench_protocol(ref_cls, seeds, out):
    makers = function_contenders(ref_cls, dict(num_agents=8))
    lines = [f"Rastrigin d=10, 8 agents, 150 iterations, {len(seeds)} seeds (0..{len(seeds) - 1}), "
             "defaults, x0 ~ U(-5.12, 5.12)^10; the reference reports 19.58 +- 9.46", "",
             "| run | mean best | std | min | max |", "|---|---|---|---|---|"]
    per_seed = [run_functions(makers, rastrigin, 10, 5.12, 150, s) for s in seeds]
    for name, _, _ in makers:
        bests = [r[name][0] for r in per_seed]
        lines.append(f"| {name} | {statistics.mean(bests):.2f} | {statistics.stdev(bests):.2f} | "
                     f"{min(bests):.2f} | {max(bests):.2f} |")
    emit(out, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits-steps", type=int, default=200)
    parser.add_argument("--digits-seeds", type=int, default=5)
    parser.add_argument("--fn-steps", type=int, default=2000)
    parser.add_argument("--fn-seeds", type=int, default=5)
    parser.add_argument("--protocol-seeds", type=int, default=30)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--write", type=pathlib.Path, help="results file to update")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ref_cls = None if args.no_reference else load_reference()
    out = []
    header = [f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
              "reference " + (f"loaded from {SEED_REFERENCE.relative_to(ROOT)}"
                              if ref_cls else "absent")]
    print(header[0], flush=True)
    bench_digits(ref_cls, args.digits_steps, list(range(args.digits_seeds)), out)
    bench_functions(ref_cls, args.fn_steps, list(range(args.fn_seeds)), 30, 16, out)
    bench_protocol(ref_cls, list(range(args.protocol_seeds)), out)
    if args.write:
        command = "python " + " ".join(sys.argv)
        method = ["All contenders step in lockstep, in rotating order, so load from other jobs "
                  "falls "
                  "on all alike. The reference's global RNG (its tunnelling noise) is seeded "
                  f"{NOISE_SEED_OFFSET} + seed, not with the model's init seed."]
        body = "\n".join(["## QIMADTorch", "", *header, "", *method, "", f"Command: `{command}`",
                          "", *out])
        write_section(args.write, "## QIMADTorch", body)


if __name__ == "__main__":
    main()
