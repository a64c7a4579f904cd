"""The Ising forms of a batch of dense polynomials of one size, made for the whole batch.

`QuadraticPolynomial.to_ising` and `Ising._coupling` per problem cost about 0.2 ms each, as
much as a 64-variable problem's steps for a few hundred agents (bench/RESULTS.md, batched
SB). For dense problems of one size with a one-bit domain (spin, binary), their element-wise
steps run here on the whole batch: element-wise arithmetic gives every problem the numbers
its own call gives. Their two reductions (a row sum and a product with the spin indicator)
stay problem by problem, since a batched reduction may sum in another order. The spins go
back to domain values the same way.
"""

from typing import List, NamedTuple, Optional, Sequence

import torch

from ..engine import Coupling
from .polynomial import DomainLike, QuadraticPolynomial


class DenseIsingBatch(NamedTuple):
    couplings: List[Coupling]  # each problem's coupling, as Ising._coupling makes it
    linear: torch.Tensor  # (B,) bool: the problem has a field, folded in as spin n
    spin: torch.Tensor  # (n, 1) spin indicator of the domain
    weighted: torch.Tensor  # (n,) the domain's one-bit encoding


def dense_isings(polynomials: Sequence[QuadraticPolynomial], domain: DomainLike,
                 sense: str) -> Optional[DenseIsingBatch]:
    """The couplings of `-ising` (maximize) or `ising` (minimize) of every problem, or None
    when the batch is not dense problems of one size with a one-bit domain."""
    first = polynomials[0]
    n = first.dimension
    if any(p.dimension != n or p.quadratic.layout != torch.strided for p in polynomials):
        return None
    _, spin, weighted = first._encoded(domain)
    if weighted.ndim != 1:
        return None
    Q = torch.stack([p.quadratic for p in polynomials])
    linear = torch.stack([p.linear for p in polynomials]).unsqueeze(2)
    # QuadraticPolynomial.to_ising, diagonal encoding, on every problem at once.
    symmetric = (Q + Q.transpose(1, 2)) / 2
    left = weighted.reshape(-1, 1) * symmetric
    J = -0.5 * (left * weighted.reshape(1, -1))
    linear_part = 0.5 * (weighted.reshape(-1, 1) * linear)
    h = torch.stack([(linear_part[b] - J[b].sum(axis=1).reshape(-1, 1) - left[b] @ spin)
                     .reshape(-1) for b in range(len(polynomials))])
    if sense == "maximize":  # Ising.__neg__
        J, h = -J, -h
    # Ising._coupling: the symmetric, zero-diagonal part and the field as spin n.
    coupled = (J + J.transpose(1, 2)) / 2
    torch.diagonal(coupled, dim1=1, dim2=2)[...] = 0.0
    has_linear = torch.any(h != 0, dim=1)
    couplings = []
    for b, field in enumerate(has_linear.tolist()):
        if not field:
            couplings.append(Coupling.dense(coupled[b]))
            continue
        matrix = torch.zeros((n + 1, n + 1), dtype=Q.dtype, device=Q.device)
        matrix[:n, :n] = coupled[b]
        matrix[:n, n] = -h[b]
        matrix[n, :n] = -h[b]
        couplings.append(Coupling.dense(matrix))
    return DenseIsingBatch(couplings, has_linear, spin, weighted)


def dense_values(batch: DenseIsingBatch, spins: torch.Tensor, dtype) -> torch.Tensor:
    """Domain values (B, n, agents) of the batch's spins (B, >= n, agents): the field's spin
    folded back where there is one (Ising._run), then convert_spins' one-bit decoding."""
    n = batch.weighted.shape[0]
    own = spins[:, :n]
    if bool(torch.any(batch.linear)):
        own = torch.where(batch.linear.reshape(-1, 1, 1), spins[:, n:n + 1] * own, own)
    return (0.5 * batch.weighted.reshape(-1, 1) * (own + 1) - batch.spin).to(dtype)
