"""Predefined optimization models, each a QuadraticPolynomial with its own domain."""

from .abc_model import ABCModel
from .ising import Ising
from .markowitz import Markowitz, SequentialMarkowitz
from .maxcut import MaxCut
from .number_partitioning import NumberPartitioning
from .qubo import QUBO

__all__ = ["ABCModel", "Ising", "Markowitz", "MaxCut", "NumberPartitioning", "QUBO",
           "SequentialMarkowitz"]
