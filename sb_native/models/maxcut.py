import numbers
from typing import Dict, Iterable, List, Optional, Union

import numpy as np
import torch

from .. import _memory, _sparse
from ..engine import prefer_sparse
from ..io import read_gset
from .abc_model import ABCModel


class MaxCut(ABCModel):
    """Maximum cut of a weighted undirected graph (maximize).

    cut(s) = sum_{i<j} w_ij (1 - s_i s_j) / 2 for spins s in {-1, 1}^n, written as the
    polynomial -1/4 s^T W s + (sum_{i<j} w_ij) / 2, so `maximize()` returns the cut value.

    Build it from a weighted adjacency matrix (dense, torch sparse or scipy.sparse; a
    non-symmetric matrix counts A_ij + A_ji, so an upper-triangular one works) or with
    `MaxCut.from_edges`. dtype: float32 (default) or float64; device: where it lives (default
    CPU). The symmetric weights are kept as `model.weights`.

    >>> import torch
    >>> from sb_native.models import MaxCut
    >>> model = MaxCut(torch.tensor([[0.0, 1.0, 3.0], [0.0, 0.0, 2.0], [0.0, 0.0, 0.0]]))
    >>> spins, cut = model.maximize(agents=8, max_steps=200, seed=0, verbose=False,
    ...                             early_stopping=False)
    >>> float(cut), sorted([model.partition["left"], model.partition["right"]])
    (5.0, [[0, 1], [2]])
    """

    domain = "spin"
    nodes: list  # the graph's node labels, set by from_networkx

    def __init__(self, adjacency, dtype: Optional[torch.dtype] = None,
                 device: Optional[Union[str, torch.device]] = None) -> None:
        if isinstance(adjacency, np.ndarray):
            adjacency = torch.from_numpy(adjacency)
        elif _sparse.is_scipy_sparse(adjacency):
            adjacency = _sparse.from_scipy(adjacency)
        if not isinstance(adjacency, torch.Tensor):
            raise TypeError(
                "adjacency should be a tensor, an array or a sparse matrix, got "
                f"{type(adjacency).__name__}; "
                "use MaxCut.from_edges for an edge list."
            )
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(
                f"adjacency must be a square matrix, got shape {tuple(adjacency.shape)}.")
        weights = _sparse.symmetric_weights(adjacency.to(dtype=torch.float64))
        total = (weights.values().sum() if weights.layout != torch.strided else weights.sum()) / 4
        self.weights = weights.to(dtype=dtype or torch.float32)
        super().__init__(-0.25 * weights, total, dtype=dtype, device=device)

    @classmethod
    def from_edges(cls, edges: Union[Iterable, np.ndarray, torch.Tensor],
                   n_nodes: Optional[int] = None, dtype: Optional[torch.dtype] = None,
                   device: Optional[Union[str, torch.device]] = None,
                   sparse: Optional[bool] = None) -> "MaxCut":
        """From (i, j) or (i, j, weight) rows, 0-based (weight 1 when absent).

        Repeated edges add up; self-loops never cross a cut and are dropped. The graph is
        kept sparse unless `sparse=False` or it is denser than SPARSE_DENSITY. edges: a list
        of tuples, an (E, 2) or (E, 3) array or tensor (all rows the same length); n_nodes:
        the number of nodes (default: the largest endpoint + 1); dtype, device: as the
        constructor's; sparse: True or False forces the storage (None: by density).

        >>> from sb_native.models import MaxCut
        >>> model = MaxCut.from_edges([(0, 1, 1.0), (1, 2, 2.0), (0, 2, 3.0)], n_nodes=4,
        ...                           sparse=True)  # node 3 has no edge
        >>> model.dimension, model.quadratic.is_sparse
        (4, True)
        >>> _, cut = model.maximize(agents=8, max_steps=200, seed=0, verbose=False,
        ...                         early_stopping=False)
        >>> float(cut)
        5.0
        """
        table = torch.as_tensor(np.asarray(list(edges) if not isinstance(
            edges, (np.ndarray, torch.Tensor)) else edges, dtype=np.float64), dtype=torch.float64)
        if table.ndim != 2 or table.shape[1] not in (2, 3):
            raise ValueError("edges must be rows of (i, j) or (i, j, weight).")
        nodes = table[:, :2]
        not_indices = bool(torch.any(nodes < 0)) or bool(torch.any(nodes != nodes.round()))
        if table.shape[0] and not_indices:
            raise ValueError("edge endpoints must be non-negative integers (0-based).")
        rows, cols = nodes.long().t()
        needed = int(nodes.max().item()) + 1 if table.shape[0] else 0
        n = needed if n_nodes is None else n_nodes
        if n < needed:
            raise ValueError(f"n_nodes={n_nodes} is too small: edges reach node {needed - 1}.")
        if n == 0:
            raise ValueError("The graph has no nodes.")
        weights = (table[:, 2] if table.shape[1] == 3
                   else torch.ones(table.shape[0], dtype=torch.float64))
        upper = _sparse.coo(torch.stack([rows, cols]), weights, (n, n))
        if sparse is None:
            sparse = prefer_sparse(upper.values().numel() * 2, n)
        if not sparse:
            _memory.check_dense_graph(n, dtype, "MaxCut.from_edges")
        return cls(upper if sparse else upper.to_dense(), dtype=dtype, device=device)

    @classmethod
    def from_gset(cls, path, dtype: Optional[torch.dtype] = None,
                  device: Optional[Union[str, torch.device]] = None,
                  sparse: Optional[bool] = None) -> "MaxCut":
        """From a G-set/rudy file (plain or gzip); see sb_native.io.read_gset.

        Stored sparse unless `sparse=False` or the graph is denser than SPARSE_DENSITY.
        path: the file; dtype, device: as the constructor's; sparse: as from_edges'.

        >>> import os, tempfile
        >>> from sb_native.models import MaxCut
        >>> folder = tempfile.TemporaryDirectory()
        >>> path = os.path.join(folder.name, "triangle.txt")
        >>> with open(path, "w") as handle:  # 3 nodes, 3 edges, 1-based ids
        ...     _ = handle.write("3 3\\n1 2 1\\n2 3 2\\n1 3 3\\n")
        >>> model = MaxCut.from_gset(path)
        >>> _, cut = model.maximize(agents=8, max_steps=200, seed=0, verbose=False,
        ...                         early_stopping=False)
        >>> model.dimension, float(cut)
        (3, 5.0)
        >>> folder.cleanup()
        """
        adjacency = read_gset(path)
        n = adjacency.shape[0]
        if sparse is None:
            sparse = prefer_sparse(adjacency._nnz(), n)
        if not sparse:
            _memory.check_dense_graph(n, dtype, "MaxCut.from_gset")
        return cls(adjacency if sparse else adjacency.to_dense(), dtype=dtype, device=device)

    @classmethod
    def from_networkx(cls, graph, weight: Optional[str] = "weight",
                      dtype: Optional[torch.dtype] = None,
                      device: Optional[Union[str, torch.device]] = None,
                      sparse: Optional[bool] = None) -> "MaxCut":
        """From a networkx graph; node k of the model is `list(graph.nodes)[k]`.

        Edge weights come from the `weight` attribute (1 where absent, and everywhere with
        weight=None). Directed and multi-graphs count as undirected with weights summed;
        self-loops never cross a cut and are dropped. The labels are kept in `model.nodes`.
        graph: a networkx Graph, DiGraph, MultiGraph or MultiDiGraph; dtype, device, sparse:
        as from_edges'.

        >>> import networkx as nx
        >>> from sb_native.models import MaxCut
        >>> graph = nx.Graph([("a", "b", {"weight": 1.0}), ("b", "c", {"weight": 2.0}),
        ...                   ("a", "c", {"weight": 3.0})])
        >>> model = MaxCut.from_networkx(graph)
        >>> _, cut = model.maximize(agents=8, max_steps=200, seed=0, verbose=False,
        ...                         early_stopping=False)
        >>> float(cut), sorted(model.nodes[k] for k in model.partition["left"]) in (["c"],
        ...                                                                        ["a", "b"])
        (5.0, True)
        """
        nodes = list(graph.nodes)
        index = {node: k for k, node in enumerate(nodes)}
        rows = []
        for u, v, w in graph.edges(data=weight, default=1):
            if isinstance(w, bool) or not isinstance(w, numbers.Real):
                raise TypeError(f"edge ({u!r}, {v!r}) has a non-numeric {weight!r}: {w!r}")
            rows.append((index[u], index[v], float(w)))
        table = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
        model = cls.from_edges(table, n_nodes=len(nodes), dtype=dtype, device=device,
                               sparse=sparse)
        model.nodes = nodes
        return model

    def cut_value(self, partition: Union[torch.Tensor, np.ndarray, List]) -> torch.Tensor:
        """Cut weight of one partition (n,) or a batch (..., n): spins ±1 or 0/1 labels.

        partition: a tensor, an array or a list; an entry > 0 puts its node on one side.

        >>> from sb_native.models import MaxCut
        >>> model = MaxCut.from_edges([(0, 1, 1.0), (1, 2, 2.0), (0, 2, 3.0)])
        >>> float(model.cut_value([0, 0, 1])), model.cut_value([[1, -1, -1], [1, 1, 1]]).tolist()
        (5.0, [4.0, 0.0])
        """
        value = torch.as_tensor(np.asarray(partition) if not isinstance(partition, torch.Tensor)
                                else partition)
        return self(torch.where(value > 0, 1.0, -1.0).to(dtype=self.dtype, device=self.device))

    @property
    def partition(self) -> Dict[str, Union[List[int], float, None]]:
        """Best cut found by the last optimization: node lists on each side and its value.

        {"left": nodes with spin +1, "right": the others, "cut": its weight}; empty lists and
        cut None before any run.

        >>> from sb_native.models import MaxCut
        >>> model = MaxCut.from_edges([(0, 1, 1.0), (1, 2, 2.0), (0, 2, 3.0)])
        >>> model.partition
        {'left': [], 'right': [], 'cut': None}
        >>> _ = model.maximize(agents=8, max_steps=200, seed=0, verbose=False,
        ...                    early_stopping=False)
        >>> sides = model.partition
        >>> sorted([sides["left"], sides["right"]]), sides["cut"]
        ([[0, 1], [2]], 5.0)
        """
        if self.sb_result is None:
            return {"left": [], "right": [], "cut": None}
        values = self.cut_value(self.sb_result.t())
        best = self.sb_result[:, int(torch.argmax(values))]
        return {
            "left": torch.nonzero(best > 0).reshape(-1).tolist(),
            "right": torch.nonzero(best <= 0).reshape(-1).tolist(),
            "cut": float(values.max()),
        }
