"""Peak memory of a solve against what sb_native/_memory.py predicts (issue 19, memory limits).

    .venv/bin/python bench/sb/bench_memory.py                  # every case, under 2 minutes
    .venv/bin/python bench/sb/bench_memory.py --case qimad     # the cases whose name has it

Each case runs in its own subprocess, on one thread: it builds its input, runs a tiny solve of
the same kind (so the kernels' and the allocator's first memory is not counted), then --reps
times (2 by default): hands freed heap pages back (malloc_trim), resets the peak (5 into
/proc/self/clear_refs sets VmHWM to VmRSS), runs, and takes VmHWM minus the VmRSS before: the
peak of resident memory over the input's. The table shows the most of the runs, and the least.
A few cases start at one check instead (STARTS_AT_CHECK), as that check counts only what comes
after it.

The prediction is the library's own arithmetic, not a copy of it: _memory.check_fits and
_memory.fits are wrapped to record each size they are asked about; a case's prediction is the
largest (for QIMADTorch, whose step's check counts what comes on top of the swarm's, their
sum). "unit" is one buffer of the check the case is sized for (variables x agents, spins x
spins, nodes x nodes or agents x parameters elements, in the case's dtype): the factors are
predicted / unit and measured / unit, and a ratio (measured / predicted) at most 1 means the
check counts enough. Linux with glibc only.
"""

import argparse
import atexit
import ctypes
import gc
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]

QUICK = dict(verbose=False, seed=0)
# The state cases sample often (the window's buffers exist) and never converge.
SAMPLED = dict(early_stopping=True, sampling_period=10, convergence_threshold=30_000)

# Sizes: each check's buffer is over 32 MiB, glibc's largest mmap threshold, so that it is
# mapped and unmapped whole; smaller ones come from the heap, whose reuse of freed blocks moves
# the peak by a buffer or two from run to run (the small sizes' "least" and "most" differ).
# name: (summary of (n, agents, dtype, form, mode), maker's name, its keyword arguments).
STATE = dict(n=63, agents=136_000, dtype="float32")
CASES = {
    "state bSB f32": ("63+1 spins, 136k agents, float32, dense, ballistic", "solve", STATE),
    "state bSB f64": ("63+1 spins, 100k agents, float64, dense, ballistic", "solve",
                      dict(n=63, agents=100_000, dtype="float64")),
    "state dSB f32": ("63+1 spins, 136k agents, float32, dense, discrete", "solve",
                      dict(STATE, mode="discrete")),
    "state bSB f32 heated": ("63+1 spins, 136k agents, float32, dense, ballistic, heated",
                             "solve", dict(STATE, heated=True)),
    "state bSB f32 polish": ("63+1 spins, 136k agents, float32, dense, ballistic, polish",
                             "solve", dict(STATE, polish=True)),
    "state bSB f32 torch": ("63+1 spins, 136k agents, float32, dense, ballistic, torch",
                            "solve", dict(STATE, backend="torch")),
    "state sparse bSB f32": ("2000 spins, 6000 agents, float32, sparse (8 a row), ballistic",
                             "solve", dict(n=2000, agents=6000, dtype="float32", sparse=True)),
    "reduction f32": ("3000+1 spins, 8 agents, float32, dense, ballistic", "solve",
                      dict(n=3000, agents=8, dtype="float32")),
    "reduction f64": ("2200+1 spins, 8 agents, float64, dense, ballistic", "solve",
                      dict(n=2200, agents=8, dtype="float64")),
    "reduction int3 f32": ("1000 int3 variables (3000+1 spins), 8 agents, float32, dense",
                           "solve", dict(n=1000, agents=8, dtype="float32",
                                         domain="int3")),
    "CSR form f32 polish": ("3000+1 spins, 8 agents, float32, dense, ballistic, polish",
                            "solve", dict(n=3000, agents=8, dtype="float32",
                                          polish=True)),
    "int8 form f32 dSB": ("3000+1 spins, 8 agents, float32, dense integer weights, discrete",
                          "solve", dict(n=3000, agents=8, dtype="float32",
                                        mode="discrete", integer=True)),
    "batch reduction f32": ("4 x 1600+1 spins, 8 agents, float32, dense, ballistic", "batch",
                            dict(n=1600, problems=4, agents=8, dtype="float32")),
    "MaxCut.from_gset f32": ("3000 nodes, complete graph, float32, sparse=False", "gset",
                             dict(n=3000, dtype="float32")),
    "MaxCut.from_edges f32": ("3000 nodes, complete graph, float32, sparse=False", "edges",
                              dict(n=3000, dtype="float32")),
    "MaxCut.from_edges f64": ("3000 nodes, complete graph, float64, sparse=False", "edges",
                              dict(n=3000, dtype="float64")),
    "qimad native sequential f32": ("1M parameters, 16 agents, float32, native", "qimad",
                                    dict(dtype="float32", backend="native")),
    "qimad native synchronous f32": ("1M parameters, 16 agents, float32, native", "qimad",
                                     dict(dtype="float32", backend="native",
                                          update_order="synchronous")),
    "qimad torch sequential f32": ("1M parameters, 16 agents, float32, torch", "qimad",
                                   dict(dtype="float32", backend="torch")),
    "qimad torch synchronous f32": ("1M parameters, 16 agents, float32, torch", "qimad",
                                    dict(dtype="float32", backend="torch",
                                         update_order="synchronous")),
    "qimad native sequential f64": ("1M parameters, 16 agents, float64, native", "qimad",
                                    dict(dtype="float64", backend="native")),
    "qimad native sequential f32 2 agents": ("4.4M parameters, 2 agents, float32, native",
                                             "qimad", dict(dtype="float32", backend="native",
                                                           agents=2, width=2100)),
}
# Makers whose checks count memory on top of one another (QIMADTorch's swarm, then its torch
# step's temporaries): their prediction is the checks' sum; the others' is their largest.
ADDED = {"qimad"}
# Cases measured from one check on, not from the run's start: what the run made before it (the
# reduction's coupling, the graph's edges, read or built) is their input, as it is the check's.
STARTS_AT_CHECK = {"CSR form f32 polish": "CSR form", "int8 form f32 dSB": "int8 form",
                   **{name: "dense weights" for name in CASES if name.startswith("MaxCut")}}


def status(key: str) -> int:
    """A /proc/self/status field in bytes (the file's unit is kB)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


# ── The makers: each returns (run, tiny run of the same kind, unit) ───────────────────────

def make_solve(torch, sb, n, agents, dtype, steps=20, mode="ballistic", heated=False,
               polish=False, backend="auto", sparse=False, domain="spin", integer=False,
               tiny=False):
    g = torch.Generator().manual_seed(0)
    if sparse:
        rows = torch.arange(n).repeat_interleave(8)
        Q = torch.sparse_coo_tensor(torch.stack([rows, torch.randint(0, n, (8 * n,), generator=g)]),
                                    torch.randn(8 * n, generator=g, dtype=dtype),
                                    (n, n)).coalesce()
        args = (Q,)
    elif integer:  # dSB's exact integer path runs on the int8 form
        args = (torch.randint(-3, 4, (n, n), generator=g).to(dtype),
                torch.randint(-3, 4, (n,), generator=g).to(dtype))
    else:
        args = (torch.randn(n, n, generator=g, dtype=dtype),
                torch.randn(n, generator=g, dtype=dtype))
    options = dict(QUICK, domain=domain, mode=mode, heated=heated, polish=polish,
                   backend=backend, max_steps=steps, **(SAMPLED if agents > 8 else
                                                        dict(early_stopping=False)))
    run = lambda: sb.minimize(*args, agents=agents, dtype=dtype, **options)
    if tiny:
        return run
    spins = n * (3 if domain == "int3" else 1) + (0 if sparse else 1)
    # One buffer of the check the case is sized for: the state's, or the reduction's matrix.
    unit = spins * max(agents, spins) * dtype.itemsize
    return run, make_solve(torch, sb, 4, 8, dtype, 20, mode, heated, polish, backend, sparse,
                           domain, integer, tiny=True), unit


def make_batch(torch, sb, n, problems, agents, dtype):
    g = torch.Generator().manual_seed(0)
    Q = torch.randn(problems, n, n, generator=g, dtype=dtype)
    h = torch.randn(problems, n, generator=g, dtype=dtype)
    options = dict(QUICK, domain="spin", max_steps=20, early_stopping=False, agents=agents)
    return (lambda: sb.minimize(Q, h, dtype=dtype, **options),
            lambda: sb.minimize(Q[:, :4, :4], h[:, :4], dtype=dtype, **options),
            problems * (n + 1) ** 2 * dtype.itemsize)


def _complete_graph(torch, n):
    """(E, 3) float64 rows (i, j, ±1) of the complete graph, i < j, 0-based."""
    i, j = torch.triu_indices(n, n, 1)
    w = torch.where(torch.rand(i.numel(), generator=torch.Generator().manual_seed(0)) < 0.5,
                    -1.0, 1.0).double()
    return torch.stack([i.double(), j.double(), w], 1)


def make_gset(torch, sb, n, dtype):
    from sb_native import io as sio
    folder = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, folder)
    paths = {size: os.path.join(folder, f"complete{size}.txt") for size in (n, 4)}
    for size, path in paths.items():
        edges = _complete_graph(torch, size)
        sio.write_gset(path, torch.sparse_coo_tensor(edges[:, :2].long().t(), edges[:, 2],
                                                     (size, size)))
    run = lambda path: sb.models.MaxCut.from_gset(path, dtype=dtype, sparse=False)
    return lambda: run(paths[n]), lambda: run(paths[4]), n * n * dtype.itemsize


def make_edges(torch, sb, n, dtype):
    edges = _complete_graph(torch, n)
    return (lambda: sb.models.MaxCut.from_edges(edges, n_nodes=n, dtype=dtype, sparse=False),
            lambda: sb.models.MaxCut.from_edges(edges[:3], dtype=dtype, sparse=False),
            n * n * dtype.itemsize)


def make_qimad(torch, sb, dtype, backend, update_order="sequential", agents=16, width=1000):
    layer = torch.nn.Linear(width, width, dtype=dtype)
    x = torch.randn(4, width, dtype=dtype, generator=torch.Generator().manual_seed(0))

    def steps(module, data, count):
        optimizer = sb.QIMADTorch(module.parameters(), num_agents=agents, seed=0,
                                  backend=backend, update_order=update_order)

        def closure():
            optimizer.zero_grad()
            loss = module(data).square().mean()
            loss.backward()
            return loss
        for _ in range(count):
            optimizer.step(closure)
    small = torch.nn.Linear(4, 4, dtype=dtype)
    parameters = sum(p.numel() for p in layer.parameters())
    return (lambda: steps(layer, x, 2), lambda: steps(small, x[:, :4], 2),
            agents * parameters * dtype.itemsize)


# ── One case, in its own process ──────────────────────────────────────────────────────────

def measure(name: str, reps: int) -> dict:
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    import sb_native as sb
    from sb_native import _memory

    trim = ctypes.CDLL("libc.so.6").malloc_trim  # glibc: hand freed heap pages back
    asked, before = [], [0]
    start_at = STARTS_AT_CHECK.get(name)

    def start():
        """The peak from now: freed heap pages handed back, VmHWM set to VmRSS."""
        trim(0)
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        before[0] = status("VmRSS")

    def record(nbytes, check):
        if check == start_at:  # what came before is this case's input
            asked.clear()
            start()
        asked.append((nbytes, check))
    check_fits, fits = _memory.check_fits, _memory.fits

    def recording_check_fits(what, nbytes, device, use, hint):
        record(nbytes, use.split(" (")[0].removeprefix("its "))
        return check_fits(what, nbytes, device, use, hint)

    def recording_fits(nbytes, device):  # the int8 form's, the one caller
        record(nbytes, "int8 form")
        return fits(nbytes, device)
    _memory.check_fits, _memory.fits = recording_check_fits, recording_fits
    _, maker, kwargs = CASES[name]
    kwargs = dict(kwargs, dtype=getattr(torch, kwargs["dtype"]))
    run, tiny, unit = globals()["make_" + maker](torch, sb, **kwargs)
    tiny()
    peaks = []
    for _ in range(reps):
        gc.collect()
        asked.clear()
        start()
        run()
        peaks.append(status("VmHWM") - before[0])
    if maker in ADDED:
        predicted, check_name = sum(n for n, _ in asked), " + ".join(c for _, c in asked)
    else:
        predicted, check_name = max(asked) if asked else (0, "none")
    return dict(case=name, check=check_name, unit=unit, predicted=predicted,
                measured=max(peaks), least=min(peaks))

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="", help="only the cases whose name has this text")
    parser.add_argument("--reps", type=int, default=2, help="runs per case (the most is shown)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.reps)))
        return
    import torch
    print(f"{platform.machine()}, torch {torch.__version__}, 1 thread, one process per case, "
          f"{args.reps} runs each; bytes: VmHWM over the VmRSS before the run (or before the "
          "check STARTS_AT_CHECK names)")
    print("| case | n, agents, dtype, form, mode | check | predicted (factor) | "
          "measured, most of the runs (factor; the least's) | measured / predicted |")
    print("| --- | --- | --- | --- | --- | --- |")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name, (summary, _, _) in CASES.items():
        if args.case not in name:
            continue
        done = subprocess.run([sys.executable, __file__, "--child", name, "--reps",
                               str(args.reps)], capture_output=True,
                              text=True, env=env, timeout=300)
        if done.returncode:
            print(f"| {name} | {summary} | failed: {done.stderr.strip().splitlines()[-1]} |")
            continue
        row = json.loads(done.stdout.splitlines()[-1])
        unit, predicted, measured = row["unit"], row["predicted"], row["measured"]
        print(f"| {name} | {summary} | {row['check']} | {predicted / 2**20:.1f} MiB "
              f"({predicted / unit:.1f}) | {measured / 2**20:.1f} MiB ({measured / unit:.1f}; "
              f"least {row['least'] / unit:.1f}) "
              f"| {measured / predicted if predicted else float('nan'):.2f} |", flush=True)


if __name__ == "__main__":
    main()
