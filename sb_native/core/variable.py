"""Optimization domains: spin, binary and n-bit integers, and their spin encodings."""

import functools
import math
import re
from typing import List, Sequence, Tuple, Union

import torch

DomainLike = Union[str, Sequence[str]]

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


def max_exact_bits(dtype: torch.dtype) -> int:
    """The widest intN domain whose values dtype holds exactly: a float of m explicit mantissa
    bits holds every integer up to 2^(m + 1) (float32: 2^24, float64: 2^53)."""
    return round(-math.log2(torch.finfo(dtype).eps)) + 1


def parse_domain(domain: Union[str, Sequence[str]], dimension: int,
                 dtype: torch.dtype = torch.float32, exact: bool = False) -> List[Variable]:
    """One Variable per polynomial variable, from a domain string or a list of them.

    Integer variables must fit dtype: their Ising form finite (max_integer_bits), and with
    exact (a solve, or decoding spins) their values too (max_exact_bits). Wider values come
    back rounded to the float's spacing, a vector the spins do not encode, which the peer
    returns silently."""
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
    widest = max((v.encoding_bits for v in variables), default=0)
    advice = " or dtype=torch.float64." if dtype != torch.float64 else "."
    if exact and widest > max_exact_bits(dtype):
        raise ValueError(
            f"domain 'int{widest}' is too wide for {dtype}: its values reach 2**{widest} - 1, "
            f"and dtype {dtype} holds integers exactly only up to 2**{max_exact_bits(dtype)}, "
            f"so the solution would be rounded; use at most {max_exact_bits(dtype)} bits"
            + advice)
    limit = max_integer_bits(dtype)
    if widest > limit:
        raise ValueError(
            f"domain 'int{widest}' is too wide for {dtype}: integer domains may have at most "
            f"{limit} bits with this dtype (wider ones overflow its range); use fewer bits"
            + advice)
    return variables


def domain_key(domain: DomainLike, dimension: int, dtype: torch.dtype):
    """A hashable form of domain (a list of domains becomes a tuple); anything else is not a
    domain, and parse_domain raises its error."""
    if isinstance(domain, str):
        return domain
    if isinstance(domain, (list, tuple)) and all(isinstance(d, str) for d in domain):
        return tuple(domain)
    parse_domain(domain, dimension, dtype)
    raise TypeError(f"domain should be a string or a list of strings, received {domain!r}.")


def encode(variables: Sequence[Variable], dtype: torch.dtype,
           device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Spin indicator (n, 1) and the spin-weighted integer-to-binary encoding.

    The encoding is a (n, bits) matrix, or its diagonal (n,) when every variable has
    one bit; the diagonal form gives bitwise the same numbers without n x n work.
    """
    spin = torch.tensor([[float(v.is_spin)] for v in variables], dtype=dtype, device=device)
    if all(v.encoding_bits == 1 for v in variables):
        return spin, spin.reshape(-1) + 1
    bits = sum(v.encoding_bits for v in variables)
    binary = torch.zeros(len(variables), bits, dtype=dtype, device=device)
    offset = 0
    for row, variable in enumerate(variables):
        binary[row, offset:offset + variable.encoding_bits] = torch.tensor(
            [2.0 ** b for b in range(variable.encoding_bits)], dtype=dtype)
        offset += variable.encoding_bits
    return spin, (spin + 1) * binary


@functools.lru_cache(maxsize=64)
def encoded(domain, dimension: int, dtype: torch.dtype, device: torch.device):
    """(variables, spin, encoding) of a domain key; cached, read-only (never modified in
    place)."""
    variables = tuple(parse_domain(domain if isinstance(domain, str) else list(domain),
                                   dimension, dtype))
    return (variables, *encode(variables, dtype, device))
