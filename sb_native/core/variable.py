"""Optimization domains: spin, binary and n-bit integers."""

import math
import re
from typing import List, Sequence, Union

import torch

INTEGER_REGEX = re.compile("^int[1-9][0-9]*$")

DOMAIN_ERROR_MESSAGE = (
    'Domain type must be one of "spin" or "binary", or be a string starting '
    'with "int" and followed by a positive integer that represents '
    "the number of bits required to encode the values of the domain. "
    "More formally, it should match the following regular expression: "
    '"^int[1-9][0-9]*$" (ex: "int7", "int42", ...).'
)


class Variable:
    """One decision variable: whether it is a spin and how many bits encode it."""

    __slots__ = ("is_spin", "encoding_bits")

    def __init__(self, is_spin: bool, encoding_bits: int) -> None:
        self.is_spin = is_spin
        self.encoding_bits = encoding_bits

    @staticmethod
    def from_str(domain: str) -> "Variable":
        if not isinstance(domain, str):
            raise TypeError(
                f"domain should be a string or a list of strings, received {domain!r}."
            )
        if domain == "spin":
            return Variable(True, 1)
        if domain == "binary":
            return Variable(False, 1)
        if INTEGER_REGEX.match(domain) is None:
            raise ValueError(DOMAIN_ERROR_MESSAGE)
        return Variable(False, int(domain[3:]))


def max_integer_bits(dtype: torch.dtype) -> int:
    """The widest intN domain dtype can hold: the Ising reduction multiplies coefficients by
    products of two bit weights (up to 2^(2N)), which must stay finite."""
    return int(math.log2(torch.finfo(dtype).max)) // 2


def parse_domain(domain: Union[str, Sequence[str]], dimension: int,
                 dtype: torch.dtype = torch.float32) -> List[Variable]:
    """One Variable per polynomial variable, from a domain string or a list of them."""
    if isinstance(domain, str):
        variables = [Variable.from_str(domain)] * dimension
    elif not isinstance(domain, (list, tuple)):
        raise TypeError(
            f"domain should be a string or a list of strings, received {type(domain).__name__}."
        )
    elif len(domain) != dimension:
        raise ValueError(
            f"Expected {dimension} domains to be provided, got {len(domain)}."
        )
    else:
        variables = [Variable.from_str(d) for d in domain]
    limit = max_integer_bits(dtype)
    widest = max((v.encoding_bits for v in variables), default=0)
    if widest > limit:
        raise ValueError(
            f"domain 'int{widest}' is too wide for {dtype}: integer domains may have at most "
            f"{limit} bits with this dtype (wider ones overflow its range); use fewer bits"
            + (" or dtype=torch.float64." if dtype != torch.float64 else "."))
    return variables
