"""Seeded Max-Cut instances of the G-set's classes, generated in the manner of rudy.

Each generator returns (n, edges): the node count and an (E, 3) float64 array of 0-based
(i, j, w) rows with i < j and no repeated pair, ready for MaxCut.from_edges(edges, n_nodes=n).
The same arguments and seed give the same graph (numpy's default_rng).

    toroidal(rows, cols, weights, seed)   2-D torus grid: G48 (weights 1), G81 (+/-1)
    planar(n, seed, layers)               Delaunay triangulations: G14 is the union of two
    random_graph(n, density, weights, seed)  uniform edges: G1, G22, G43, G55, G70
    complete_pm1(n, seed)                 complete graph with +/-1 weights: K2000
"""

from typing import Tuple

import numpy as np
from scipy.spatial import Delaunay

Instance = Tuple[int, np.ndarray]
# "int": integers 1..100, uniform (weighted graphs: the integer form's scale is 1, but the
# weights are far from the +-1 that SB's default time steps were tuned on).
WEIGHTS = ("one", "pm1", "int")


def _weights(count: int, weights: str, rng: np.random.Generator) -> np.ndarray:
    if weights not in WEIGHTS:
        raise ValueError(f"weights should be one of {WEIGHTS}, got {weights!r}.")
    if weights == "one":
        return np.ones(count)
    if weights == "int":
        return rng.integers(1, 101, size=count).astype(np.float64)
    return rng.choice(np.array([-1.0, 1.0]), size=count)


def _table(i: np.ndarray, j: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.column_stack([i, j, w]).astype(np.float64)


def toroidal(rows: int, cols: int, weights: str = "pm1", seed: int = 0) -> Instance:
    """The rows x cols torus: node r * cols + c joined to its right and lower neighbours,
    wrapping around, so every node has degree 4 and there are 2 * rows * cols edges.

    >>> n, edges = toroidal(3, 4, weights="one")
    >>> n, edges.shape, set(np.bincount(edges[:, :2].astype(int).ravel()).tolist())
    (12, (24, 3), {4})
    """
    if rows < 3 or cols < 3:  # a side of 2 would join the same pair twice
        raise ValueError(f"a torus needs at least 3 rows and 3 columns, got {rows} x {cols}.")
    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(rows * cols), cols)
    node = r * cols + c
    right = r * cols + (c + 1) % cols
    down = ((r + 1) % rows) * cols + c
    a = np.concatenate([node, node])
    b = np.concatenate([right, down])
    i, j = np.minimum(a, b), np.maximum(a, b)
    return rows * cols, _table(i, j, _weights(len(i), weights, rng))


def planar(n: int, seed: int = 0, layers: int = 1) -> Instance:
    """Delaunay triangulation of n uniform random points in the unit square, weights 1.

    layers > 1: the union of that many triangulations of independent point sets over the
    same nodes, an edge present in several counted once (G14-G17 are two such layers:
    G14 has 4,694 edges on 800 nodes, more than one planar graph's 3n - 6).

    >>> n, edges = planar(100, seed=1)
    >>> n, len(edges) <= 3 * n - 6, bool(np.all(edges[:, 0] < edges[:, 1]))
    (100, True, True)
    """
    if n < 3:
        raise ValueError(f"a triangulation needs at least 3 points, got {n}.")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(layers):
        simplices = Delaunay(rng.random((n, 2))).simplices
        for a, b in ((0, 1), (1, 2), (0, 2)):
            pairs.append(np.sort(simplices[:, [a, b]], axis=1))
    unique = np.unique(np.concatenate(pairs), axis=0)
    return n, _table(unique[:, 0], unique[:, 1], np.ones(len(unique)))


def _pair(index: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """The (i, j), i < j, at positions `index` of the upper triangle listed row by row."""
    rows = np.arange(n, dtype=np.int64)
    starts = rows * n - rows * (rows + 1) // 2  # where row i begins in that list
    i = np.searchsorted(starts, index, side="right") - 1
    return i, index - starts[i] + i + 1


def random_graph(n: int, density: float, weights: str = "one", seed: int = 0) -> Instance:
    """round(density * n (n - 1) / 2) distinct edges drawn uniformly, as rudy's
    -rnd_graph (G1: n 800, density 6%, 19,176 edges; G22: 2000, 1%, 19,990).

    >>> n, edges = random_graph(800, 0.06, seed=0)
    >>> n, len(edges), len(np.unique(edges[:, :2], axis=0))
    (800, 19176, 19176)
    """
    if not 0 < density <= 1:
        raise ValueError(f"density should be in (0, 1], got {density}.")
    rng = np.random.default_rng(seed)
    pairs = n * (n - 1) // 2
    count = int(round(density * pairs))
    index = np.sort(rng.choice(pairs, size=count, replace=False))
    i, j = _pair(index, n)
    return n, _table(i, j, _weights(count, weights, rng))


def complete_pm1(n: int, seed: int = 0) -> Instance:
    """Every pair joined, weights +/-1 with equal odds (K2000: n = 2000).

    >>> n, edges = complete_pm1(5, seed=0)
    >>> len(edges), set(edges[:, 2].tolist()) <= {-1.0, 1.0}
    (10, True)
    """
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, k=1)
    return n, _table(i, j, _weights(len(i), "pm1", rng))


def random_qubo(n: int, density: float, seed: int = 0) -> Tuple[int, np.ndarray]:
    """A qbsolv-style random QUBO: (n, rows of i, j, q with i <= j), about density's share of
    the off-diagonal pairs with integer q in [-100, 100] \\ {0}, and every diagonal entry (the
    linear terms) likewise.

    >>> n, entries = random_qubo(50, 0.1, seed=0)
    >>> n, bool((entries[:, 0] <= entries[:, 1]).all()), bool((entries[:, 2] != 0).all())
    (50, True, True)
    """
    rng = np.random.default_rng(seed)
    _, pairs = random_graph(n, density, "one", seed)
    diagonal = np.arange(n, dtype=np.float64)
    i = np.concatenate([pairs[:, 0], diagonal])
    j = np.concatenate([pairs[:, 1], diagonal])
    q = rng.integers(1, 101, size=len(i)) * rng.choice(np.array([-1, 1]), size=len(i))
    return n, _table(i, j, q.astype(np.float64))
