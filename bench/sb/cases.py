"""Benchmark instances: dense ±1 graphs (K2000 from ../shared/data when present) and the
sparse G-set graphs G22, G55, G81 (generated stand-ins of the same size when absent)."""

import json
import pathlib
from dataclasses import dataclass
from typing import Optional

import torch

import sb_native as sb

GSET = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gset"


@dataclass
class Case:
    name: str
    model: sb.models.MaxCut
    source: str

    @property
    def n(self) -> int:
        return self.model.dimension


def complete_pm1(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.where(torch.rand(n, n, generator=g) < 0.5, -1.0, 1.0), 1)
    return upper + upper.t()


def random_sparse_edges(n: int, edges: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ends = torch.randint(0, n, (edges, 2), generator=g)
    ends = ends[ends[:, 0] != ends[:, 1]]
    return torch.cat([ends.double(), torch.ones(len(ends), 1, dtype=torch.float64)], 1)


def dense_case(n: int) -> Case:
    if n == 2000 and (GSET / "K2000.txt.gz").exists():
        return Case("K2000", sb.models.MaxCut.from_gset(GSET / "K2000.txt.gz", sparse=False),
                    "shared/data")
    name = "K2000" if n == 2000 else f"dense{n}"
    return Case(name, sb.models.MaxCut(complete_pm1(n)), "generated ±1 complete graph")


SPARSE = {"G22": (2000, 19990), "G55": (5000, 12468), "G81": (20000, 40000)}


def sparse_case(name: str) -> Case:
    path = GSET / f"{name}.txt"
    if path.exists():
        return Case(name, sb.models.MaxCut.from_gset(path, sparse=True), "shared/data")
    n, e = SPARSE[name]
    return Case(name, sb.models.MaxCut.from_edges(random_sparse_edges(n, e), n, sparse=True),
                "generated random graph of the same size")


def best_known(name: str) -> Optional[float]:
    path = GSET / "best_known.json"
    return json.loads(path.read_text()).get(name) if path.exists() else None
