"""`python -m sb_native demo`: a seeded Max-Cut instance solved on every available backend."""

import time
import warnings
from typing import List

import torch

from . import _ops
from ._options import BackendChoice
from .engine import ConvergenceWarning
from .models import MaxCut


def random_graph(n: int, density: float, seed: int) -> torch.Tensor:
    """Symmetric ±1-weighted adjacency of an Erdős–Rényi graph, from a private generator."""
    generator = torch.Generator().manual_seed(seed)
    upper = torch.rand((n, n), generator=generator) < density
    signs = torch.where(torch.rand((n, n), generator=generator) < 0.5, -1.0, 1.0)
    weights = torch.triu(upper * signs, diagonal=1)
    return weights + weights.t()


def main(n: int = 400, density: float = 0.1, seed: int = 0, agents: int = 128,
         max_steps: int = 3000) -> int:
    info = _ops.backend_info()
    print(f"sb_native demo: Max-Cut on a random ±1 graph, {n} nodes, density {density}, "
          f"seed {seed}")
    status = "loaded" if info["native"] else f"unavailable ({info['reason']})"
    print(f"native extension: {status}, CUDA kernels: {info['cuda']}, torch {info['torch']}, "
          f"{info['threads']} threads")
    model = MaxCut(random_graph(n, density, seed))
    edges = int(torch.count_nonzero(model.weights)) // 2
    print(f"{edges} edges; {agents} agents, bSB, up to {max_steps} steps, early stopping\n")
    backends: List[BackendChoice] = ["native", "torch"] if info["native"] else ["torch"]
    print(f"{'backend':<8} {'cut':>8} {'Ising energy':>13} {'time (s)':>9}")
    # A short demo run may end before any agent meets the convergence criterion; the
    # returned spins are still the final ones, so the warning is noise here.
    warnings.simplefilter("ignore", category=ConvergenceWarning)
    for backend in backends:
        start = time.perf_counter()
        _, cut = model.maximize(agents=agents, max_steps=max_steps, verbose=False,
                                backend=backend, seed=seed)
        elapsed = time.perf_counter() - start
        # Ising energy of the same spins: -0.5 s^T J s with J = -W, i.e. total weight - 2 cut.
        energy = float(model.weights.sum() / 2) - 2 * float(cut)
        print(f"{backend:<8} {float(cut):>8.0f} {energy:>13.0f} {elapsed:>9.2f}")
    return 0
