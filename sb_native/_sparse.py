"""Sparse-tensor helpers shared by the polynomial, the models and the coupling."""

import warnings

import numpy as np
import torch


def coo(indices: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """A coalesced COO tensor; indices are checked (O(nnz)) so a bad one raises, not crashes."""
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()


def transpose(matrix: torch.Tensor) -> torch.Tensor:
    rows, cols = matrix.indices()
    return coo(torch.stack([cols, rows]), matrix.values(), matrix.shape)


def to_csr_parts(matrix: torch.Tensor):
    """(crow, col, values) of a COO matrix, each contiguous."""
    with warnings.catch_warnings():
        # torch flags CSR as beta on every construction; the conversion itself is sound.
        warnings.simplefilter("ignore", UserWarning)
        csr = matrix.to_sparse_csr()
    return (csr.crow_indices().contiguous(), csr.col_indices().contiguous(),
            csr.values().contiguous())


def csr_tensor(crow, col, values, shape) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape)


def is_scipy_sparse(value) -> bool:
    return type(value).__module__.startswith("scipy.sparse") and hasattr(value, "tocoo")


def from_scipy(value) -> torch.Tensor:
    matrix = value.tocoo()
    indices = torch.from_numpy(np.vstack([matrix.row, matrix.col]).astype(np.int64))
    return coo(indices, torch.from_numpy(np.asarray(matrix.data)), matrix.shape)


def symmetric_weights(adjacency: torch.Tensor) -> torch.Tensor:
    """W with W_ij = weight of edge {i, j} and a zero diagonal, dense or sparse COO."""
    if adjacency.layout == torch.strided:
        weights = adjacency if torch.equal(adjacency, adjacency.t()) else adjacency + adjacency.t()
        weights = weights.clone()
        weights.fill_diagonal_(0)
        return weights
    adjacency = adjacency.to_sparse_coo().coalesce()
    transposed = transpose(adjacency)
    symmetric = (torch.equal(adjacency.indices(), transposed.indices())
                 and torch.equal(adjacency.values(), transposed.values()))
    total = adjacency if symmetric else (adjacency + transposed).coalesce()
    rows, cols = total.indices()
    off = rows != cols
    return coo(total.indices()[:, off], total.values()[off], total.shape)
