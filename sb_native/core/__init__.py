from .ising import IsingForm
from .polynomial import QuadraticPolynomial

__all__ = ["IsingForm", "QuadraticPolynomial"]
