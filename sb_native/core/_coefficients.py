"""The coefficients of a QuadraticPolynomial from what its constructor accepts: a sympy.Poly,
or tensors, arrays and numbers in any order (simulated-bifurcation 2.0.0's rules and
messages), converted to one dtype and device and checked."""

import numbers
from typing import Dict, Tuple

import numpy as np
import torch
from sympy import Poly

from .. import _checks, _sparse

Coefficients = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # quadratic, linear, bias


def check_finite(name: str, tensor: torch.Tensor) -> None:
    values = tensor.values() if tensor.layout == torch.sparse_coo else (
        tensor.values() if tensor.layout == torch.sparse_csr else tensor)
    if values.is_floating_point() and not bool(torch.all(torch.isfinite(values))):
        raise ValueError(f"The {name} coefficients must be finite (no NaN or infinity).")


def from_poly(polynomial: Poly, dtype: torch.dtype, device: torch.device) -> Coefficients:
    if not polynomial.is_quadratic:
        raise ValueError(
            "Expected a quadratic polynomial but got a total degree of "
            f"{polynomial.total_degree()}."
        )
    dimension = len(polynomial.gens)
    quadratic = torch.zeros(dimension, dimension, dtype=dtype, device=device)
    linear = torch.zeros(dimension, dtype=dtype, device=device)
    bias = torch.tensor(0.0, dtype=dtype, device=device)
    for monom, coeff in polynomial.terms():
        coeff = float(coeff)
        degree = sum(monom)
        if degree == 0:
            bias = torch.tensor(coeff, dtype=dtype, device=device)
        elif degree == 1:
            linear[monom.index(1)] = coeff
        elif 2 in monom:
            row = monom.index(2)
            quadratic[row, row] = coeff
        else:
            row = monom.index(1)
            quadratic[row, monom.index(1, row + 1)] = coeff
    return quadratic, linear, bias


def from_data(polynomial_data, dtype: torch.dtype, device: torch.device) -> Coefficients:
    dimension = None
    given: Dict[int, torch.Tensor] = {}  # degree -> the tensor provided for it
    for data in polynomial_data:
        if isinstance(data, np.ndarray):
            data = torch.from_numpy(data)
        elif _sparse.is_scipy_sparse(data):
            data = _sparse.from_scipy(data)
        elif isinstance(data, numbers.Real) and not isinstance(data, bool):
            data = torch.tensor(float(data), dtype=dtype, device=device)
        if not isinstance(data, torch.Tensor):
            raise ValueError(
                f"Unsupported coefficient tensor type: {type(data)}. "
                "Expected a torch.Tensor or a numpy.ndarray."
            )
        if data.ndim == 2 and data.shape[0] != data.shape[1]:
            raise ValueError("Provided quadratic coefficients tensor is not square.")
        if data.ndim > 2:
            raise ValueError(f"Expected a tensor with at most 2 dimensions, got {data.ndim}.")
        if data.ndim in given:
            raise ValueError(
                "Providing two tensors for the same degree is ambiguous. "
                f"Got at least two tensors for degree {data.ndim}."
            )
        if data.ndim > 0:
            if dimension is None:
                dimension = data.shape[0]
            elif dimension != data.shape[0]:
                raise ValueError(
                    "Inconsistant shape among provided tensors. "
                    f"Expected {dimension} but got {data.shape[0]}."
                )
        if data.dtype == torch.bool or data.is_complex():
            raise TypeError(f"Coefficients must be real numbers, got dtype {data.dtype}.")
        name = {0: "constant", 1: "linear", 2: "quadratic"}[data.ndim]
        _checks.check_device_available(data.device, f"the {name} coefficients")
        converted = data.to(dtype=dtype, device=device)
        if converted.layout == torch.sparse_csr:
            converted = converted.to_sparse_coo()
        if converted.layout == torch.sparse_coo:
            converted = converted.coalesce()
        check_finite(name, converted)
        given[data.ndim] = converted
    if dimension is None:
        raise ValueError(
            "The polynomial has no variables: provide a quadratic (2-D) or linear (1-D) "
            "coefficient tensor."
        )
    if dimension == 0:
        raise ValueError("The polynomial has no variables: its coefficient tensors are empty.")
    return (given[2] if 2 in given
            else torch.zeros(dimension, dimension, dtype=dtype, device=device),
            given[1] if 1 in given else torch.zeros(dimension, dtype=dtype, device=device),
            given[0] if 0 in given else torch.tensor(0.0, dtype=dtype, device=device))
