"""simulated-bifurcation 2.0.0's `core` module: the polynomial and its Ising form."""

from .ising import Ising
from .polynomial import QuadraticPolynomial

__all__ = ["Ising", "QuadraticPolynomial"]
