"""Command line: `sb-native` / `python -m sb_native`.

    sb-native solve G1.txt --agents 256 --max-steps 2000 --seed 0 --output cut.txt
    sb-native solve problems/ --json          (a folder or several files: one batched run)
    sb-native info
    sb-native bench --nodes 2000 --density 0.01
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from typing import List, NoReturn, Optional

import torch

from .engine.history import History

PROG = "sb-native"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump), so a bad option reads like a bad file."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


class _UserError(Exception):
    """A problem with the user's input: reported as one line, exit status 1."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _max_steps(text: str) -> Optional[int]:
    return None if text.lower() == "none" else _positive_int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


_UNSET = object()  # --max-steps not given (None is --max-steps none; not a string, which
# argparse would parse)
SOLVE_DEFAULTS = dict(mode="ballistic", agents=128, max_steps=10_000, heated=False)


def _given(args) -> dict:
    """The solver options given on solve's command line (the others are unset)."""
    unset = {name: None for name in SOLVE_DEFAULTS} | {"max_steps": _UNSET}
    return {name: getattr(args, name) for name in SOLVE_DEFAULTS
            if getattr(args, name) is not unset[name]}


def _add_solver_options(command: argparse.ArgumentParser, max_steps: Optional[int]) -> None:
    command.add_argument("--mode", choices=("ballistic", "discrete"), default="ballistic",
                         help="bSB or dSB (default: ballistic)")
    command.add_argument("--heated", action="store_true", help="add the thermal term (HbSB/HdSB)")
    command.add_argument("--agents", type=_positive_int, default=128,
                         help="parallel SB agents (default: 128)")
    command.add_argument("--max-steps", type=_max_steps, default=max_steps,
                         help=f"step limit, or 'none' (default: {max_steps})")
    command.add_argument("--backend", choices=("auto", "native", "torch"), default="auto")
    command.add_argument("--seed", type=int, default=None, help="seed of a private generator")
    command.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    command.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    command.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog=PROG, description="Simulated Bifurcation at native speed.",
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = commands.add_parser("demo", help="solve a seeded random Max-Cut on every backend")
    demo.add_argument("--nodes", type=int, default=400)
    demo.add_argument("--seed", type=int, default=0)

    solve = commands.add_parser("solve", help="solve a G-set (Max-Cut) or qbsolv .qubo file")
    solve.add_argument("file", nargs="+",
                       help="problem file, plain or gzip; several files or a folder are "
                            "solved together in one batched run (file b uses seed + b), one "
                            "result line each")
    solve.add_argument("--format", choices=("auto", "gset", "qubo"), default="auto",
                       help="file format (default: from the suffix, else the content)")
    _add_solver_options(solve, max_steps=10_000)
    solve.add_argument("--timeout", type=_positive_float, default=None, help="seconds")
    solve.add_argument("--polish", action="store_true",
                       help="polish every agent's spins by local search (greedy single flips)")
    solve.add_argument("--time-limit", type=_positive_float, default=None, metavar="T",
                       help="the best answer within T seconds: runs with fresh seeds drawn from "
                            "--seed (default 0), each polished by local search; settings by "
                            "problem class unless --mode, --agents, --max-steps (the most "
                            "steps of a run) or --heated are given")
    # Unset here, so a time-limited solve can tell given options from defaults (_defaults).
    solve.set_defaults(mode=None, agents=None, max_steps=_UNSET, heated=None)
    solve.add_argument("--no-early-stopping", action="store_true",
                       help="run to --max-steps/--timeout even when all agents have converged")
    solve.add_argument("--output", "-o", help="write the best solution to this file (a "
                       "folder of FILE.sol solutions for several problems)")
    solve.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    solve.add_argument("--plot", metavar="FILE.png",
                       help="draw the run's history (best value and frozen agents against "
                            "time) to this image; needs matplotlib (sb_native[plot])")
    solve.add_argument("--history", action="store_true",
                       help="record the run's history for --json even with "
                            "--no-early-stopping, where its sampling costs time (with early "
                            "stopping --json always carries it)")
    solve.add_argument("--distributed", choices=("agents", "rows"), default=None,
                       help="spread a torchrun launch's ranks over the agents, or over the "
                            "variables (rows: each rank reads and holds only its rows of the "
                            "problem); gloo on the CPU, NCCL on cuda:LOCAL_RANK; rank 0 "
                            "prints the result")

    info = commands.add_parser("info", help="backend, threads, CUDA, versions")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    bench = commands.add_parser("bench", help="native vs pure-torch speed on one instance")
    bench.add_argument("file", nargs="?", help="problem file (default: a generated Max-Cut)")
    bench.add_argument("--nodes", type=_positive_int, default=1000, help="generated graph size")
    bench.add_argument("--density", type=float, default=0.01, help="generated edge density")
    bench.add_argument("--repeat", type=_positive_int, default=3, help="timed runs per backend")
    bench.add_argument("--plot", metavar="FILE.png",
                       help="after the timed runs, one more run per backend with its history "
                            "drawn to this image (best value against time)")
    _add_solver_options(bench, max_steps=1000)
    return parser


# solve

def _load(path: str, kind: str, dtype, device, rows: bool = False):
    from . import io
    from .models import QUBO, MaxCut

    kind = io.detect_format(path) if kind == "auto" else kind
    if rows:
        from .core import RowBlock
        if kind == "gset":
            block = RowBlock.from_gset(path, dtype=dtype, device=device)
            return kind, block, {"nodes": block.dimension, "edges": block.edges}
        block = RowBlock.from_qubo(path, dtype=dtype, device=device)
        return kind, block, {"variables": block.dimension, "entries": block.entries}
    if kind == "gset":
        model = MaxCut.from_gset(path, dtype=dtype, device=device)
        edges = model.weights._nnz() if model.weights.is_sparse else \
            int(torch.count_nonzero(model.weights))
        return kind, model, {"nodes": model.dimension, "edges": edges // 2}
    Q = io.read_qubo(path)
    return kind, QUBO(Q, dtype=dtype, device=device), {"variables": Q.shape[0],
                                                         "entries": Q._nnz()}


def _solver_kwargs(args, verbose: bool) -> dict:
    return dict(agents=args.agents, max_steps=args.max_steps, mode=args.mode,
                heated=args.heated, backend=args.backend, seed=args.seed, verbose=verbose)


def _write_solution(path: str, kind: str, source: str, vector, value: float) -> None:
    # One "id value" line per variable, ids as the input file numbers them: 1-based spins
    # (±1, the side of the cut) for G-set, 0-based bits for qbsolv.
    # Written to a temporary file beside it, then renamed over it: a run killed or interrupted
    # while writing leaves the previous file (or none), never a half-written one.
    values = [int(v) for v in vector.tolist()]
    first = 1 if kind == "gset" else 0
    label = "cut" if kind == "gset" else "energy"
    folder, name = os.path.split(os.path.abspath(path))
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, prefix=f".{name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(f"# sb-native solution of {source}: {label} {value:g}\n")
            handle.write("".join(f"{k + first} {v}\n" for k, v in enumerate(values)))
        os.replace(handle.name, path)
    except BaseException:
        os.unlink(handle.name)
        raise


def _join_process_group(args) -> bool:
    """Joins the torchrun launch's process group (made here unless the caller made one);
    True when this call made it and must destroy it."""
    import torch.distributed as dist

    if "WORLD_SIZE" not in os.environ and not dist.is_initialized():
        raise ValueError("--distributed needs a torchrun launch (torchrun --standalone "
                         "--nproc-per-node=K -m sb_native solve FILE --distributed agents)")
    if args.device.startswith("cuda"):
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        args.device = f"cuda:{local_rank}"
    if dist.is_initialized():
        return False
    dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
    return True


def _problem_files(paths: List[str]) -> List[str]:
    """The files named, with each folder replaced by its files (sorted, hidden ones left)."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if not n.startswith("."))
            files += [os.path.join(path, n) for n in names
                      if os.path.isfile(os.path.join(path, n))]
        else:
            files.append(path)
    if not files:
        raise _UserError(f"no problem files in {', '.join(paths)}")
    return files


def _solve(args) -> int:
    import torch.distributed as dist

    files = _problem_files(args.file)
    if args.time_limit is not None:
        from ._cli_tools import solve_within

        return solve_within(args, files)
    for name, value in SOLVE_DEFAULTS.items():
        setattr(args, name, _given(args).get(name, value))
    if len(files) > 1 or os.path.isdir(args.file[0]):
        if args.distributed is not None:
            raise _UserError("--distributed solves one problem file; got "
                             f"{len(files)} problems")
        from ._cli_tools import solve_batch

        return solve_batch(args, files)
    args.file = files[0]
    created = args.distributed is not None and _join_process_group(args)
    try:
        return _solve_here(args)
    finally:
        if created:
            dist.destroy_process_group()


def _result(path: str, kind: str, size: dict, model, value: float, fields: dict) -> dict:
    """One problem's result record (the --json object)."""
    result = {"file": path, "format": kind, **size, **fields}
    if kind == "gset" and hasattr(model, "total_weight"):  # a RowBlock
        result.update(cut=value, ising_energy=model.total_weight - 2 * value)
    elif kind == "gset":
        total = float(model.weights.sum() if not model.weights.is_sparse
                      else model.weights.values().sum()) / 2
        # Ising energy of the same spins with J = -W, h = 0: total weight - 2 cut.
        result.update(cut=value, ising_energy=total - 2 * value)
    else:
        result.update(energy=value)
    return result


def _solve_here(args) -> int:
    import torch.distributed as dist

    distributed = args.distributed is not None
    rank = dist.get_rank() if distributed else 0
    dtype = getattr(torch, args.dtype)
    start = time.perf_counter()
    rows = args.distributed == "rows"
    kind, model, size = _load(args.file, args.format, dtype, args.device, rows)
    loaded = time.perf_counter() - start
    verbose = not args.quiet and not args.json and sys.stderr.isatty() and rank == 0
    kwargs = _solver_kwargs(args, verbose)
    kwargs.update(timeout=args.timeout, early_stopping=not args.no_early_stopping,
                  polish=args.polish)
    if distributed:
        kwargs.update(process_group=True)
    # With early stopping the history reuses its sampling points (no measurable cost); with
    # --no-early-stopping sampling would cost 1.3-1.5x (G22, bench/RESULTS.md), so --json
    # carries a history there only when --history or --plot asks for one.
    wanted = args.plot or (args.json and (args.history or not args.no_early_stopping))
    history = History() if wanted else None
    start = time.perf_counter()
    if kind == "gset":
        vector, value = model.maximize(**kwargs, callback=history)
    else:
        vector, value = model.minimize(**kwargs, callback=history)
    elapsed = time.perf_counter() - start
    if rank != 0:
        return 0  # every rank has the same result; rank 0 reports it
    if args.plot:
        assert history is not None
        from . import plot

        plot.history(history, title=os.path.basename(args.file), path=args.plot)
    from ._ops import resolve_backend

    result = _result(args.file, kind, size, model, float(value), dict(
        backend=resolve_backend(args.backend, model.device), read_s=round(loaded, 4),
        solve_s=round(elapsed, 4), ranks=dist.get_world_size() if distributed else 1,
        distributed=args.distributed,
        settings={k: v for k, v in kwargs.items() if k != "verbose"}))
    if history is not None:
        result["history"] = history.to_dict()
    if args.output:
        _write_solution(args.output, kind, args.file, vector, float(value))
        result["output"] = args.output
    if args.plot:
        result["plot"] = args.plot
    if args.json:
        print(json.dumps(result))
        return 0
    what = (f"Max-Cut, {size['nodes']} nodes, {size['edges']} edges" if kind == "gset"
            else f"QUBO, {size['variables']} variables, {size['entries']} entries")
    print(f"{args.file}: {what} (read in {loaded:.2f} s)")
    print(f"{result['backend']} backend, {args.mode}{' heated' if args.heated else ''}, "
          f"{args.agents} agents, max steps {args.max_steps}, timeout {args.timeout}, "
          f"seed {args.seed}, {args.dtype}"
          + (f", {args.distributed} shared by {result['ranks']} ranks" if distributed else ""))
    if kind == "gset":
        print(f"cut {result['cut']:g}  (Ising energy {result['ising_energy']:g})  "
              f"in {elapsed:.2f} s")
    else:
        print(f"energy {result['energy']:g}  in {elapsed:.2f} s")
    if args.output:
        print(f"solution written to {args.output}")
    if args.plot:
        print(f"history drawn to {args.plot}")
    return 0


# info

def main(argv: Optional[List[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(n=args.nodes, seed=args.seed)
    from . import _cli_tools

    command = {"solve": _solve, "info": _cli_tools.info, "bench": _cli_tools.bench}[args.command]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status = command(args)
        for warning in caught:
            print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
        return status
    except OSError as err:
        message = f"{err.filename}: {err.strerror}" if err.filename else str(err)
        print(f"{PROG}: error: {message}", file=sys.stderr)
    except (_UserError, ValueError, TypeError, RuntimeError) as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
    except MemoryError as err:
        # A problem too large for this machine's memory (sb_native/_memory.py checks before
        # allocating): exit 2, apart from bad input (1), so a script can retry it smaller.
        print(f"{PROG}: error: {' '.join(str(err).split()) or 'out of memory'}",
              file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
