"""MaxCut.from_gset / from_networkx: exact cut values against brute force and networkx."""

import itertools
import json

import numpy as np
import pytest
import torch

from sb_native import io as sio
from sb_native.engine import SPARSE_DENSITY
from sb_native.models import MaxCut
from tests.helpers import GSET

EDGES = [(1, 2, 3), (1, 3, -1), (2, 4, 2), (3, 4, 1), (4, 5, -2), (5, 6, 4), (6, 7, 1),
         (7, 8, 2), (1, 8, -3), (2, 7, 1), (3, 6, 2)]  # 8 nodes, mixed signs


pytestmark = pytest.mark.usefixtures("one_thread")


def brute_force_cuts(edges, n):
    """Cut weight of every partition, spins in lexicographic order, from the edge list only."""
    spins = np.array(list(itertools.product([-1, 1], repeat=n)))
    cuts = np.zeros(len(spins))
    for i, j, w in edges:
        cuts += w * (spins[:, i - 1] != spins[:, j - 1])
    return torch.from_numpy(spins).double(), torch.from_numpy(cuts)


@pytest.fixture
def gset_file(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text(f"8 {len(EDGES)}\n" + "".join(f"{i} {j} {w}\n" for i, j, w in EDGES))
    return path


@pytest.mark.parametrize("sparse", [None, True, False])
def test_from_gset_cut_values_match_brute_force(gset_file, sparse):
    model = MaxCut.from_gset(gset_file, dtype=torch.float64, sparse=sparse)
    spins, cuts = brute_force_cuts(EDGES, 8)
    assert torch.equal(model.cut_value(spins), cuts)
    assert torch.equal(model.cut_value((spins > 0).long()), cuts)  # 0/1 labels too
    assert model.weights.is_sparse == (sparse is True)  # 22 of 64 entries: dense by default


def test_from_gset_solution_is_the_optimum(gset_file):
    model = MaxCut.from_gset(gset_file, dtype=torch.float64)
    _, best = brute_force_cuts(EDGES, 8)
    vector, cut = model.maximize(agents=32, max_steps=2000, seed=0, verbose=False,
                                 early_stopping=False)
    assert float(cut) == float(best.max())
    partition = model.partition
    assert sorted(partition["left"] + partition["right"]) == list(range(8))
    assert partition["cut"] == float(best.max())
    assert float(model.cut_value(vector)) == float(cut)


def test_from_gset_keeps_sparse_graphs_sparse(tmp_path):
    n = 3000
    path = tmp_path / "ring.txt.gz"
    rows = torch.arange(n)
    ring = torch.sparse_coo_tensor(torch.stack([rows, (rows + 1) % n]), torch.ones(n), (n, n),
                                   check_invariants=True)
    sio.write_gset(path, ring)
    model = MaxCut.from_gset(path)
    assert model.weights.is_sparse and model.quadratic.is_sparse
    # An even ring is bipartite: alternate sides cut every edge.
    alternating = torch.where(rows % 2 == 0, 1.0, -1.0)
    assert float(model.cut_value(alternating)) == n


def test_from_gset_dense_graph_is_dense(tmp_path):
    n = 20
    full = torch.triu(torch.ones(n, n, dtype=torch.float64), diagonal=1)
    sio.write_gset(tmp_path / "k20.txt", full)
    model = MaxCut.from_gset(tmp_path / "k20.txt")
    assert model.weights.layout == torch.strided
    assert float(model.cut_value(torch.tensor([1.0] * 10 + [-1.0] * 10))) == 100


def test_from_gset_propagates_file_errors(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("3 1\n1 9 1\n")
    with pytest.raises(sio.ProblemFileError, match="bad.txt:2: node id 9 out of range"):
        MaxCut.from_gset(path)


# networkx


@pytest.fixture
def nx():
    return pytest.importorskip("networkx")


def test_from_networkx_cut_values_match_networkx(nx):
    graph = nx.gnm_random_graph(12, 30, seed=5)
    rng = np.random.default_rng(5)
    for u, v in graph.edges:
        graph.edges[u, v]["weight"] = int(rng.integers(-4, 5))
    graph = nx.relabel_nodes(graph, {k: f"v{k}" for k in graph.nodes})
    model = MaxCut.from_networkx(graph, dtype=torch.float64)
    assert model.nodes == list(graph.nodes)
    for _ in range(20):
        side = rng.random(12) < 0.5
        chosen = {node for node, s in zip(model.nodes, side) if s}
        expected = nx.cut_size(graph, chosen, weight="weight")
        assert float(model.cut_value(torch.from_numpy(side).long())) == expected


def test_from_networkx_weight_attribute_and_defaults(nx):
    graph = nx.Graph()
    graph.add_edge("a", "b", weight=5, cost=2)
    graph.add_edge("b", "c", cost=7)  # no "weight": counts 1
    graph.add_node("isolated")
    cut = torch.tensor([1.0, -1.0, 1.0, 1.0])  # a | b | c with "isolated" beside a
    assert float(MaxCut.from_networkx(graph).cut_value(cut)) == 6
    assert float(MaxCut.from_networkx(graph, weight="cost").cut_value(cut)) == 9
    assert float(MaxCut.from_networkx(graph, weight=None).cut_value(cut)) == 2


def test_from_networkx_multi_directed_and_self_loops(nx):
    multi = nx.MultiGraph([(0, 1), (0, 1), (1, 1)])
    assert float(MaxCut.from_networkx(multi).cut_value(torch.tensor([1.0, -1.0]))) == 2
    directed = nx.DiGraph()
    directed.add_weighted_edges_from([(0, 1, 2), (1, 0, 3)])
    assert float(MaxCut.from_networkx(directed).cut_value(torch.tensor([1.0, -1.0]))) == 5


def test_from_networkx_sparse_and_optimum(nx):
    graph = nx.cycle_graph(400)  # density 0.005: stored sparse
    model = MaxCut.from_networkx(graph)
    assert model.weights.is_sparse and 2 * 400 < SPARSE_DENSITY * 400 * 400
    vector, cut = model.maximize(agents=16, max_steps=2000, seed=0, verbose=False,
                                 early_stopping=False)
    assert float(model.cut_value(vector)) == float(cut)
    # Checked against networkx's own count; a cycle crosses any partition an even number of
    # times, and 400 is the optimum of an even cycle: within 10% of it.
    side = {node for node, s in zip(model.nodes, vector.tolist()) if s > 0}
    assert float(cut) == nx.cut_size(graph, side)
    assert float(cut) % 2 == 0 and float(cut) >= 360


def test_from_networkx_bad_weights_and_empty(nx):
    graph = nx.Graph()
    graph.add_edge(0, 1, weight="heavy")
    with pytest.raises(TypeError, match="edge \\(0, 1\\) has a non-numeric 'weight': 'heavy'"):
        MaxCut.from_networkx(graph)
    with pytest.raises(ValueError, match="no nodes"):
        MaxCut.from_networkx(nx.Graph())


# The shared G-set instances (absent from a fresh clone)


@pytest.mark.skipif(not GSET.is_dir(), reason="../shared/data/gset is absent")
def test_shared_gset_instances_read_consistently():
    best_known = json.loads((GSET / "best_known.json").read_text())
    for path in sorted(GSET.glob("G*.txt")):
        header = path.read_text().split("\n", 1)[0].split()
        nodes, edges = int(header[0]), int(header[1])
        model = MaxCut.from_gset(path)
        weights = model.weights
        assert model.dimension == nodes, path.name
        assert weights.is_sparse == (2 * edges < SPARSE_DENSITY * nodes * nodes), path.name
        weights = weights.coalesce().values() if weights.is_sparse else weights
        assert int(torch.count_nonzero(weights)) == 2 * edges, path.name  # no repeated edges
        if path.stem in best_known:
            # A random cut takes half of the total weight on average, so the best cut takes at
            # least that; no cut takes more than the positive weights. A best-known value
            # filed under the wrong instance, or weights read wrongly, falls outside.
            total = float(weights.sum()) / 2
            positive = float(weights.clamp(min=0).sum()) / 2
            assert total / 2 <= best_known[path.stem] <= positive, path.name
