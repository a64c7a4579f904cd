"""The command line's info and bench commands, solve --time-limit and solve over several
files (cli.py parses)."""

import json
import os
import platform
import sys
import time
from importlib import metadata
from typing import Dict, List, Optional

import torch

from .cli import _given, _load, _result, _solver_kwargs, _UserError, _write_solution
from .engine.history import History


def _package_version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _process_group() -> Optional[dict]:
    """This process's place in a torch.distributed group or torchrun launch, or None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return {"rank": dist.get_rank(), "world_size": dist.get_world_size(),
                "backend": dist.get_backend()}
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        return {"rank": int(os.environ["RANK"]), "world_size": int(os.environ["WORLD_SIZE"]),
                "backend": "torchrun launch, group not initialised"}
    return None


def info(args) -> int:
    from . import __version__
    from ._ops import backend_info

    backend = backend_info()
    info = {"sb_native": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": _package_version("numpy"),
            "native": backend["native"], "native_reason": backend["reason"],
            "cuda_kernels": backend["cuda"], "cuda_available": torch.cuda.is_available(),
            "cuda_devices": torch.cuda.device_count(), "threads": backend["threads"],
            "optional": {name: _package_version(name)
                         for name in ("dimod", "networkx", "dwave-samplers", "scipy")},
            "process_group": _process_group()}
    if args.json:
        print(json.dumps(info))
        return 0
    native = "loaded" if info["native"] else f"unavailable ({info['native_reason']})"
    print(f"sb_native {info['sb_native']} (python {info['python']}, torch {info['torch']}, "
          f"numpy {info['numpy']})")
    print(f"native extension: {native}")
    print(f"CUDA kernels built: {'yes' if info['cuda_kernels'] else 'no'}; CUDA available: "
          f"{'yes' if info['cuda_available'] else 'no'} ({info['cuda_devices']} devices)")
    print(f"CPU threads: {info['threads']}")
    group = info["process_group"]
    if group is not None:
        print(f"process group: rank {group['rank']} of {group['world_size']} "
              f"({group['backend']})")
    print("optional: " + ", ".join(f"{name} {version or 'not installed'}"
                                   for name, version in info["optional"].items()))
    return 0


# bench

def _bench_model(args, dtype):
    if args.file:
        kind, model, _ = _load(args.file, "auto", dtype, args.device)
        return args.file, model, "maximize" if kind == "gset" else "minimize"
    if not 0 < args.density <= 1:
        raise _UserError(f"--density must be in (0, 1], got {args.density}")
    from .demo import random_graph
    from .models import MaxCut

    upper = torch.triu(random_graph(args.nodes, args.density, args.seed or 0), diagonal=1)
    rows, cols = torch.nonzero(upper, as_tuple=True)
    edges = torch.stack([rows, cols, upper[rows, cols].long()], dim=1)
    model = MaxCut.from_edges(edges.numpy(), n_nodes=args.nodes, dtype=dtype,
                              device=args.device)
    name = f"random Max-Cut n={args.nodes} density={args.density} ({len(edges)} edges)"
    return name, model, "maximize"


def bench(args) -> int:
    from ._ops import backend_info

    if args.max_steps is None:
        raise _UserError("bench needs a step count: --max-steps cannot be 'none'")
    name, model, sense = _bench_model(args, getattr(torch, args.dtype))
    backends = ["native", "torch"] if backend_info()["native"] else ["torch"]
    if args.backend != "auto":
        backends = [args.backend]
    # Fixed step count, no early stopping: both backends do the same work, so the
    # time per step compares the engines and not their stopping points.
    kwargs = _solver_kwargs(args, verbose=False)
    kwargs.update(early_stopping=False)
    rows = []
    for backend in backends:
        kwargs["backend"] = backend
        times, value = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            _, value = getattr(model, sense)(**kwargs)
            times.append(time.perf_counter() - start)
        best = min(times)
        assert value is not None  # --repeat is positive: at least one run
        rows.append({"backend": backend, "value": float(value), "best_s": round(best, 4),
                     "steps_per_s": round(args.max_steps / best, 1)})
    if len(rows) == 2:
        rows[0]["speedup"] = round(rows[1]["best_s"] / rows[0]["best_s"], 2)
    if args.plot:
        _plot_bench(args, name, model, sense, kwargs, backends)
    if args.json:
        print(json.dumps({"instance": name, "agents": args.agents, "steps": args.max_steps,
                          "mode": args.mode, "dtype": args.dtype, "threads":
                          torch.get_num_threads(), "results": rows}))
        return 0
    print(f"{name}: {args.agents} agents, {args.max_steps} steps, {args.mode}, {args.dtype}, "
          f"{torch.get_num_threads()} threads, best of {args.repeat}")
    label = "cut" if sense == "maximize" else "energy"
    print(f"{'backend':<8} {label:>12} {'time (s)':>9} {'steps/s':>10}")
    for row in rows:
        print(f"{row['backend']:<8} {row['value']:>12g} {row['best_s']:>9.3f} "
              f"{row['steps_per_s']:>10.1f}")
    if len(rows) == 2:
        print(f"native speedup: {rows[0]['speedup']:.2f}x")
    return 0


def _plot_bench(args, name: str, model, sense: str, kwargs: dict, backends) -> None:
    """One more run per backend, untimed, whose histories share one figure."""
    from . import plot

    runs = {}
    for backend in backends:
        runs[backend] = History()
        getattr(model, sense)(**dict(kwargs, backend=backend), callback=runs[backend])
    plot.histories(runs, title=f"{name}: {args.agents} agents, {args.mode}", path=args.plot)


# solve --time-limit

def solve_within(args, files: List[str]) -> int:
    """The best answer for one problem file within --time-limit seconds (sb_native.timed)."""
    from dataclasses import replace

    from ._ops import resolve_backend
    from .timed import settings_for
    from .timed import solve_within as solve

    if len(files) > 1 or os.path.isdir(args.file[0]):
        raise _UserError(f"--time-limit solves one problem file; got {len(files)} problems")
    for option, value in (("--timeout", args.timeout), ("--distributed", args.distributed),
                          ("--plot", args.plot)):
        if value is not None:
            raise _UserError(f"{option} does not go with --time-limit (which runs until the "
                             "limit, restarting with fresh seeds)")
    path = files[0]
    dtype = getattr(torch, args.dtype)
    start = time.perf_counter()
    kind, model, size = _load(path, args.format, dtype, args.device)
    loaded = time.perf_counter() - start
    sense = "maximize" if kind == "gset" else "minimize"
    given = _given(args)
    if given.get("max_steps", 0) is None:
        raise _UserError("--max-steps cannot be 'none' with --time-limit (a run needs a "
                         "step count to ramp over)")
    settings = replace(settings_for(model), **given)
    seed = 0 if args.seed is None else args.seed
    verbose = not args.quiet and not args.json and sys.stderr.isatty()
    result = solve(model, args.time_limit, sense=sense, seed=seed, settings=settings,
                   backend=args.backend, verbose=verbose)
    record = _result(path, kind, size, model, result.value, dict(
        backend=resolve_backend(args.backend, model.device), read_s=round(loaded, 4),
        solve_s=round(result.seconds, 4), found_s=round(result.found_at, 4), runs=result.runs,
        steps_per_run=result.steps, time_limit=args.time_limit, ranks=1,
        settings=dict(vars(settings), seed=seed)))
    if args.output:
        _write_solution(args.output, kind, path, result.vector, result.value)
        record["output"] = args.output
    if args.json:
        print(json.dumps(record))
        return 0
    label = "cut" if kind == "gset" else "energy"
    print(f"{path}: {label} {result.value:g} found at {result.found_at:.2f} s; {result.runs} "
          f"runs of up to {result.steps} steps in {result.seconds:.2f} s "
          f"(limit {args.time_limit:g} s)")
    print(f"{record['backend']} backend, {settings.mode}{' heated' if settings.heated else ''}, "
          f"{settings.agents} agents, time step {settings.time_step}, "
          f"{'polished, ' if settings.polish else ''}seeds from {seed}, {args.dtype}")
    if args.output:
        print(f"solution written to {args.output}")
    return 0


def solve_batch(args, files: List[str]) -> int:
    """Every file in one batched run per format (G-set maximized, qbsolv minimized); one
    result per file, in order, as `solve FILE --seed seed + b` gives it alone."""
    from ._ops import resolve_backend
    from ._options import SolverOptions
    from .core.batch import PolynomialBatch

    dtype = getattr(torch, args.dtype)
    problems = []
    for path in files:
        start = time.perf_counter()
        kind, model, size = _load(path, args.format, dtype, args.device)
        problems.append((path, kind, model, size, time.perf_counter() - start))
    if args.output:
        os.makedirs(args.output, exist_ok=True)
    verbose = not args.quiet and not args.json and sys.stderr.isatty()
    kwargs = _solver_kwargs(args, verbose)
    kwargs.update(timeout=args.timeout, early_stopping=not args.no_early_stopping,
                  polish=args.polish)
    results: List[Optional[dict]] = [None] * len(problems)
    histories: Dict[str, History] = {}  # each problem's, by file, for --plot
    for kind, sense in (("gset", "maximize"), ("qubo", "minimize")):
        rows = [b for b, problem in enumerate(problems) if problem[1] == kind]
        if not rows:
            continue
        batch = PolynomialBatch([problems[b][2] for b in rows])
        seeds = None if args.seed is None else [args.seed + b for b in rows]
        # As for one file (_solve_here): recorded with early stopping, or for --plot.
        wanted = args.plot or (args.json and (args.history or not args.no_early_stopping))
        history = History() if wanted else None
        start = time.perf_counter()
        vectors, values = batch._optimize(sense, problems[rows[0]][2].domain,
                                          SolverOptions(**kwargs, callback=history),
                                          seeds=seeds)
        elapsed = time.perf_counter() - start
        for row, b in enumerate(rows):
            path, _, model, size, loaded = problems[b]
            vector = vectors[row, :model.dimension]
            result = _result(path, kind, size, model, float(values[row]), dict(
                backend=resolve_backend(args.backend, model.device), read_s=round(loaded, 4),
                solve_s=round(elapsed, 4), batch_size=len(rows), batch_index=b, ranks=1,
                settings={k: v for k, v in kwargs.items() if k != "verbose"} | {
                    "seed": None if seeds is None else seeds[row]}))
            if history is not None:
                histories[path] = history.problem(row)
                result["history"] = histories[path].to_dict()
            if args.output:
                result["output"] = os.path.join(args.output, os.path.basename(path) + ".sol")
                _write_solution(result["output"], kind, path, vector, float(values[row]))
            results[b] = result
    records = [result for result in results if result is not None]  # all: gset or qubo each
    if args.plot:
        from . import plot

        plot.histories({os.path.basename(path): histories[path] for path in files},
                       title=f"{len(files)} problems", path=args.plot)
    for result in records:
        if args.json:
            print(json.dumps(result))
        else:
            label = "cut" if result["format"] == "gset" else "energy"
            print(f"{result['file']}: {label} {result[label]:g}"
                  + (f" -> {result['output']}" if "output" in result else ""))
    if not args.json:
        print(f"{len(records)} problems, {records[0]['backend']} backend, batched"
              + (f"; histories drawn to {args.plot}" if args.plot else ""))
    return 0
