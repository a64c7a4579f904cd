"""Memory checks made before a solve's large allocations (issue 19, memory limits).

A request whose SB state, dense coupling, dense graph or QIMAD swarm cannot fit fails up
front with a MemoryError that names what would be allocated, its size, the memory available
and what to change, instead of torch's allocator error halfway through, a swap storm, or the
kernel's OOM killer (which ends the process with no Python exception at all). Sizes past
what the ops' int64 counters hold are a ValueError naming the argument.

What is counted, in bytes of the run's dtype. Each factor is measured by
bench/sb/bench_memory.py (its command and table in bench/RESULTS.md): the peak of resident
memory over the input's (VmHWM of /proc/self/status) on the CPU, buffers over 32 MiB, the
most of two runs; the figures below are its (a run moves some by up to a buffer, the torch
backend's state by more: 6.3 to 7.6). A check compares its count with the memory
available when it runs, so what is already resident then (the input, an earlier phase's
result) is not in its count.

* The SB state, (variables, agents) per problem: positions and momenta plus the buffers of
  that size a run holds at once (the early-stopping window's frozen spins, a sampling
  point's spins and field J @ spins, a call's scratch: dSB's signs and local field, a heated
  run's start momenta, the torch reference's temporaries): STATE_BUFFERS of them, for the
  worst path (peaks of 5.5 to 5.7 measured natively, 6.3 with a sparse coupling, 7.6 on the
  torch backend), POLISH_BUFFERS more with polish (7.8 measured natively).
* The Ising reduction of a dense polynomial of N spins (its variables' bits, plus one for the
  field): DENSE_COPIES N x N matrices at once (Q + Q^T, the encoded product, J and its
  scaling: 4.0 to 4.7 measured), DENSE_COPIES_INTEGER with integer variables, whose encoding
  is itself a dense matrix (4.6 measured); a batch, BATCH_DENSE_COPIES of each problem's
  (6.0 measured: the whole batch's reduction runs at once).
* A RowBlock rank: the state of its rows, and what a step gathers from every rank
  (check_rows).
* A batch's padded couplings (engine/batched.py): one B x n x n batch of dense matrices, two
  when some problem runs on another form (sparse, int8), plus those problems' forms made
  dense.
* A dense quadratic that build_model makes itself (a linear-only polynomial, a sympy Poly)
  or converts to another dtype or device: one n x n matrix.
* A dense coupling's CSR form: CSR_BYTES_PER_NONZERO + 2 items per non-zero, plus a mask of
  n x n bytes (the COO indices, then the CSR; 40 bytes per entry of a full float32 matrix
  measured, 41 counted).
* A dense coupling's int8 form (dSB's exact integer path): INT8_FORM_BYTES bytes per entry
  (the form, and the int8 run's copy of it: 2.1 measured, 3 counted) and INT8_FORM_ITEMS
  items per entry (the run's squared norm, taken after the form: torch.sum(J ** 2), the
  peer's reduction), plus INT8_FORM_CHUNK_ITEMS items per entry of one chunk of
  INT8_FORM_CHUNK entries (the form's test, chunk by chunk); 6.2-6.5 bytes per entry measured
  in float32, 7 counted. When it does not fit the run keeps the float coupling (the int8 form
  only makes it faster).
* MaxCut's dense weights made from a graph's edges (from_gset, from_edges; models/maxcut.py):
  GRAPH_BYTES_PER_ENTRY bytes per entry of N x N, on the CPU whatever the model's device (the
  dense adjacency, its symmetric weights and their scaled negative in float64, the model's
  weights and quadratic in its dtype, a finiteness mask: 39.2 bytes measured in float32,
  35.2 in float64).
* QIMADTorch's swarm of the P parameters sharing a (device, dtype) (optim/_swarm.py):
  SWARM_BUFFERS agents x P buffers (positions, RMSProp averages, gradients) and SWARM_VECTORS
  vectors of P (the best weights, a closure's gradient, the first step's copies: 3.3 agents x
  P buffers measured with 16 agents, 4.1 with 2, on the native backend, whose step makes
  nothing of that size). The torch backend's step (optim/_state.py) adds the reference's
  temporaries: SWARM_STEP_BUFFERS more, 3 in sequential order and 9 in synchronous order
  (6.0 and 11.6 buffers in all measured with 16 agents).

Against what: available(device). CPU: MemAvailable of /proc/meminfo (free memory plus what
the kernel can reclaim), or the physical memory where there is no /proc; capped by the
headroom of a cgroup memory limit (a container's), which MemAvailable does not see. CUDA:
the device's free memory plus what torch's caching allocator holds unused. Other devices:
unknown, no check. SB_NATIVE_MEMORY_LIMIT (bytes, or with a K, M, G or T suffix of powers
of 1024) caps it further: a budget on a shared machine, and what the tests use to check the
errors without allocating anything large.
"""

import os
from typing import Optional, Sequence, Tuple, Union

import torch

from . import _checks

LIMIT_ENV = "SB_NATIVE_MEMORY_LIMIT"
INT64_MAX = 2**63 - 1  # the ops' sizes, indices and step counters are int64

STATE_BUFFERS = 8
# A RowBlock's dSB step gathers its signs, its spins at sampling points and, on a step with a
# zero position, a second plane: 4 planes of the gathered rows at most (engine/rows.py).
ROWS_GATHERED_WORDS = 4
POLISH_BUFFERS = 2
DENSE_COPIES = 5
DENSE_COPIES_INTEGER = 6
BATCH_DENSE_COPIES = 8
# Per non-zero: the COO's two int64 indices and their transposed copy (40 bytes measured
# with the two values, float32).
CSR_BYTES_PER_NONZERO = 32
INT8_FORM_BYTES = 3
INT8_FORM_ITEMS = 1
INT8_FORM_CHUNK = 1 << 18
INT8_FORM_CHUNK_ITEMS = 4
GRAPH_BYTES_PER_ENTRY = 40
SWARM_BUFFERS = 3
SWARM_VECTORS = 8
# Keyed by update_order == "sequential".
SWARM_STEP_BUFFERS = {True: 3, False: 9}

SPARSE_HINT = ("use a sparse coupling (a torch sparse tensor, a scipy.sparse matrix, or "
               "sb_native.io's readers, which keep a problem sparse) or fewer variables")
AGENTS_HINT = "use fewer agents"

_UNITS = (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20))
_SUFFIXES = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

DeviceLike = Union[str, torch.device]


def human(nbytes: int) -> str:
    """A size in binary units, one decimal: '1.5 GiB'; below 0.05 MiB, '1234 bytes'."""
    if nbytes < 2**20 // 20:
        return f"{nbytes} bytes"
    name, unit = next(((name, unit) for name, unit in _UNITS if nbytes >= unit), _UNITS[-1])
    return f"{nbytes / unit:.1f} {name}"


def limit() -> Optional[int]:
    """SB_NATIVE_MEMORY_LIMIT in bytes (read at each call, so a test can set it), or None."""
    text = os.environ.get(LIMIT_ENV, "").strip()
    if not text:
        return None
    scale = _SUFFIXES.get(text[-1].upper(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or int(digits) < 1:
        raise ValueError(f"{LIMIT_ENV} must be a positive number of bytes, optionally with a "
                         f"K, M, G or T suffix (powers of 1024), got {text!r}")
    return int(digits) * scale


def _meminfo_available(path: str = "/proc/meminfo") -> Optional[int]:
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file's unit is kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):  # absent, unreadable, or "max" (no limit)
        return None


def _inactive_file(path: str, key: str) -> int:
    """The reclaimable page cache a cgroup's usage counts (memory.stat's inactive file)."""
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def cgroup_headroom(root: str = "/sys/fs/cgroup") -> Optional[int]:
    """What this process's memory cgroup still lets it take (limit - usage + the page cache
    it can drop), or None without a limit. cgroup v2 at root, else v1 at root/memory; a
    container's limit is invisible to MemAvailable, and going past it is an OOM kill."""
    for limit_file, usage_file, stat_file, key in (
            ("memory.max", "memory.current", "memory.stat", "inactive_file"),
            ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes",
             "memory/memory.stat", "total_inactive_file")):
        cap = _read_int(os.path.join(root, limit_file))
        usage = _read_int(os.path.join(root, usage_file))
        # cgroup v1 writes "no limit" as a number near 2**63.
        if cap is None or usage is None or cap >= INT64_MAX // 2:
            continue
        return max(0, cap - usage + _inactive_file(os.path.join(root, stat_file), key))
    return None


def _measured(device: torch.device) -> Optional[int]:
    if device.type == "cpu":
        free = _meminfo_available()
        if free is None:
            try:
                free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            except (ValueError, OSError, AttributeError):  # no sysconf names (Windows)
                return None
        headroom = cgroup_headroom()
        return free if headroom is None else min(free, headroom)
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            # Blocks the caching allocator holds unused are free to this process too.
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        except (RuntimeError, AssertionError, ValueError):  # no CUDA, or a bad index
            return None
        return int(free) + int(cached)
    return None


def _available(device: DeviceLike) -> Tuple[Optional[int], str]:
    """(bytes, how the message names them) of device, or (None, "") where unknown."""
    device = torch.device(device)
    measured, cap = _measured(device), limit()
    if cap is not None and (measured is None or cap < measured):
        return cap, f"allowed on {device} by {LIMIT_ENV}"
    return measured, f"available on {device}"


def available(device: DeviceLike) -> Optional[int]:
    """Bytes a new allocation on device may take now, or None where it cannot be told."""
    return _available(device)[0]


def fits(nbytes: int, device: DeviceLike) -> bool:
    """Whether nbytes fit in available(device) (True where that is unknown)."""
    free = available(device)
    return free is None or nbytes <= free


def check_fits(what: str, nbytes: int, device: DeviceLike, use: str, hint: str) -> None:
    """Raises MemoryError when nbytes exceed the memory of device, naming what, the size, its
    use and the memory there, and ending with hint."""
    free, where = _available(device)
    if free is None or nbytes <= free:
        return
    raise MemoryError(f"{what} needs {human(nbytes)} of memory for {use}, more than the "
                      f"{human(free)} {where}: {hint}.")


def itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _check_count(name: str, value, what: str) -> None:
    if _checks._is_int(value) and value > INT64_MAX:
        raise ValueError(f"{name} should be at most 2**63 - 1 ({what}), received {value}.")


def check_run(variables: int, agents, max_steps, dtype: torch.dtype, device: DeviceLike, *,
              problems: int = 1, polish: bool = False) -> None:
    """Before a run's state is drawn: agents and max_steps within int64 (ValueError naming
    them), and the state within memory (MemoryError). Arguments of the wrong type or sign
    are left to _checks (the run's options are validated before it starts)."""
    _check_count("max_steps", max_steps, "the ops count steps in int64; max_steps=None sets "
                                         "no step limit")
    _check_count("agents", agents, "the ops index agents in int64")
    if not (_checks._is_int(agents) and agents > 0):
        return
    elements = problems * variables * agents
    shape = f"{problems} x {variables} x {agents}" if problems > 1 else \
        f"{variables} x {agents}"
    if elements > INT64_MAX:
        raise ValueError(f"agents: a state of {shape} elements (variables x agents) is more "
                         f"than the ops' int64 indices hold; use fewer agents, received "
                         f"agents={agents}.")
    buffers = STATE_BUFFERS + (POLISH_BUFFERS if polish else 0)
    name = dtype_name(dtype)
    what = (f"A run of {agents} agents on {problems} problems of up to {variables} spins"
            if problems > 1 else f"A run of {agents} agents on {variables} spins")
    hint = AGENTS_HINT + (", or dtype=torch.float32" if dtype == torch.float64 else "")
    check_fits(what, buffers * elements * itemsize(dtype), device,
               f"its state ({buffers} buffers of {shape} {name}: positions, momenta and the "
               "run's buffers of that size)", hint)


def check_rows(rows: int, gathered: int, agents, max_steps, dtype: torch.dtype,
               device: DeviceLike, discrete: bool, incremental: bool = False) -> None:
    """Before a rank's block of a RowBlock run is drawn: check_run's count on its rows, plus
    what each step's all_gather receives, gathered rows of every rank (bSB: positions in the
    dtype; dSB: ROWS_GATHERED_WORDS planes of one int64 word per 64 agents), and for an
    incremental field the field (rows x agents) and a second plane of signs."""
    check_run(rows, agents, max_steps, dtype, device)
    if not (_checks._is_int(agents) and agents > 0):
        return
    if discrete:
        planes = ROWS_GATHERED_WORDS + int(incremental)
        nbytes = planes * gathered * -(-agents // 64) * 8
        use = (f"the packed signs every rank gathers ({planes} planes of "
               f"{gathered} x {-(-agents // 64)} int64 words)")
        if incremental:
            nbytes += rows * agents * itemsize(dtype)
            use += f" and its rows' field ({rows} x {agents} {dtype_name(dtype)})"
    else:
        nbytes = gathered * agents * itemsize(dtype)
        use = f"the positions every rank gathers ({gathered} x {agents} {dtype_name(dtype)})"
    check_fits(f"A rank of a run of {agents} agents on {gathered} gathered rows", nbytes,
               device, use, AGENTS_HINT + ("" if discrete else ", or mode='discrete' (1 bit "
                                                              "per spin gathered)"))


def _spins(polynomial, domain) -> Optional[Tuple[int, bool]]:
    """(spins of the polynomial's Ising form over domain, without the field's; whether some
    variable is an integer), or None for a bad domain, which _optimize reports itself."""
    from .core.variable import parse_domain

    try:
        variables = parse_domain(domain if isinstance(domain, str) else list(domain),
                                 polynomial.dimension, polynomial.dtype)
    except (TypeError, ValueError):
        return None
    bits = sum(v.encoding_bits for v in variables)
    return bits, bits != len(variables)


def check_solve(model, domain, agents, max_steps, polish) -> None:
    """Before a polynomial (or a batch) is reduced to Ising form and run: the state and the
    dense reduction, each against the memory available (sb_native.minimize calls it; the
    runner checks the state again, with the memory the reduction left)."""
    polynomials: Sequence = getattr(model, "polynomials", [model])
    counted = [_spins(p, domain) for p in polynomials]
    if any(c is None for c in counted):
        return
    # + 1: the field's spin (Ising._coupling adds it to a problem with a linear part).
    sizes = [(c[0] + 1, c[1]) for c in counted if c is not None]
    spins = max(n for n, _ in sizes)
    check_run(spins, agents, max_steps, model.dtype, model.device,
              problems=len(polynomials), polish=bool(polish))
    dense = [size for size, p in zip(sizes, polynomials) if p.quadratic.layout == torch.strided]
    if not dense:
        return
    size, name = itemsize(model.dtype), dtype_name(model.dtype)
    if len(polynomials) > 1:
        check_fits(f"A batch of {len(polynomials)} problems of up to {spins} spins",
                   BATCH_DENSE_COPIES * sum(n * n for n, _ in dense) * size, model.device,
                   f"its dense Ising reduction ({BATCH_DENSE_COPIES} {name} copies of each "
                   "dense problem's spins x spins coupling)", SPARSE_HINT + ", or split the batch")
        return
    n, integer = dense[0]
    copies = DENSE_COPIES_INTEGER if integer else DENSE_COPIES
    check_fits(f"A dense problem of {model.dimension} variables ({n} spins)",
               copies * n * n * size, model.device,
               f"its Ising reduction ({copies} dense {n} x {n} {name} matrices at once)",
               SPARSE_HINT)


def check_dense_graph(nodes: int, dtype: Optional[torch.dtype], source: str) -> None:
    """Before MaxCut makes a graph's dense n x n weights from its sparse edges (from_gset,
    from_edges with sparse=False or a dense graph): the constructor's copies, on the CPU, where
    the edges are, whatever the model's device (MemoryError). A bad dtype is left to the
    constructor."""
    try:
        dtype = _checks.safe_get_dtype(dtype)
    except ValueError:
        return
    check_fits(f"A dense graph of {nodes} nodes ({source})",
               GRAPH_BYTES_PER_ENTRY * nodes * nodes, "cpu",
               f"its dense weights ({GRAPH_BYTES_PER_ENTRY} bytes per entry of {nodes} x "
               f"{nodes}: the float64 copies the constructor works in and the model's "
               f"{dtype_name(dtype)} weights and quadratic)", "keep it sparse (sparse=True)")


def check_swarm(agents: int, parameters: int, dtype: torch.dtype, device: DeviceLike,
                owned: Optional[int] = None) -> None:
    """Before QIMADTorch makes the swarm of the parameters sharing one (device, dtype): its
    agents x parameters buffers and vectors of the parameters' size (optim/_swarm.py: at the
    first step and at a load_state_dict, never per step). owned: the agents whose RMSProp
    averages and gradients this process holds (a swarm sharded over ranks), all by default."""
    name = dtype_name(dtype)
    if owned is None or owned == agents:
        rows, state = SWARM_BUFFERS * agents, (
            f"{SWARM_BUFFERS} buffers of {agents} x {parameters}: positions, RMSProp averages "
            "and gradients")
    else:
        rows, state = agents + (SWARM_BUFFERS - 1) * owned, (
            f"positions, {agents} x {parameters}; RMSProp averages and gradients of this "
            f"rank's agents, {owned} x {parameters} each")
    check_fits(f"A QIMADTorch swarm of {agents} agents over {parameters} {name} parameters",
               (rows + SWARM_VECTORS) * parameters * itemsize(dtype), device,
               f"its state ({state}, and {SWARM_VECTORS} vectors of {parameters})",
               "use fewer agents (num_agents) or fewer parameters"
               + (", or float32 parameters" if dtype == torch.float64 else ""))


def check_swarm_step(agents: int, parameters: int, dtype: torch.dtype, device: DeviceLike,
                     sequential: bool) -> None:
    """Before a QIMADTorch swarm's steps on the torch backend (optim/_state.py: at the first
    step and at a load_state_dict): the temporaries of the torch reference's step, beyond the
    swarm itself (the native step makes none of that size)."""
    name, buffers = dtype_name(dtype), SWARM_STEP_BUFFERS[sequential]
    order = "sequential" if sequential else "synchronous"
    check_fits(f"A QIMADTorch step of {agents} agents over {parameters} {name} parameters "
               "on the torch backend", buffers * agents * parameters * itemsize(dtype), device,
               f"its temporaries ({buffers} buffers of {agents} x {parameters} in "
               f"update_order={order!r})",
               "use the native backend (whose step needs none)"
               + (", update_order='sequential'" if not sequential else "")
               + ", fewer agents (num_agents) or fewer parameters")


def check_polynomial_data(polynomial_data: tuple, dtype: Optional[torch.dtype],
                          device: Optional[DeviceLike]) -> None:
    """Before build_model: the dense n x n quadratic it makes itself (none given, or a sympy
    Poly) or converts (a dense one of another dtype or device). Batches, and data build_model
    will refuse, are left to it."""
    from sympy import Poly

    try:
        target = _checks.safe_get_dtype(dtype)
        where = _checks.safe_get_device(device)
    except (TypeError, ValueError):
        return
    if len(polynomial_data) == 1 and isinstance(polynomial_data[0], Poly):
        n, made = len(polynomial_data[0].gens), "made from the sympy Poly"
    else:
        shapes = [getattr(d, "shape", None) for d in polynomial_data]
        if any(s is not None and len(s) > 2 for s in shapes):
            return  # a batch
        vectors = [s[0] for s in shapes if s is not None and len(s) == 1]
        quadratics = [d for d, s in zip(polynomial_data, shapes) if s is not None and len(s) == 2]
        if not quadratics and vectors:
            n, made = vectors[0], "made for a polynomial given no quadratic coefficients"
        elif len(quadratics) == 1 and _converted_dense(quadratics[0], target, where):
            n, made = quadratics[0].shape[0], f"converted to {target} on {where}"
        else:
            return
    check_fits(f"A polynomial of {n} variables", n * n * itemsize(target), where,
               f"its dense {n} x {n} quadratic coefficients ({made})", SPARSE_HINT)


def _converted_dense(quadratic, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether build_model copies this 2-D quadratic into a new dense tensor."""
    if isinstance(quadratic, torch.Tensor):
        # "cuda" without an index is taken as the tensor's own GPU (a no-op move).
        moved = quadratic.device.type != device.type or (
            device.index is not None and quadratic.device.index != device.index)
        return quadratic.layout == torch.strided and (quadratic.dtype != dtype or moved)
    import numpy as np

    if isinstance(quadratic, np.ndarray):  # torch.from_numpy shares it; .to(dtype) copies
        return quadratic.dtype != np.dtype(str(dtype).replace("torch.", "")) \
            or device.type != "cpu"
    return False
