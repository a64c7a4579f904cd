"""simulated-bifurcation 2.0.0's `core` module: the polynomial and its Ising form; and
RowBlock, a problem whose rows are spread over the ranks of a process group."""

from .ising import Ising
from .polynomial import QuadraticPolynomial
from .rows import RowBlock

__all__ = ["Ising", "QuadraticPolynomial", "RowBlock"]
