"""Every SB op's arguments in unusual memory (issue 19): every tensor argument as a
non-contiguous view, every written argument sharing memory with another argument, and scalar
arguments out of range. Each call must give the reference's result or a ValueError /
TypeError that names the argument (the values themselves are fuzzed in
tests/sb/test_op_fuzz.py, whose builders this reuses)."""
import inspect
import math

import pytest
import torch

from sb_native.engine import reference
from tests.helpers import NATIVE_ONLY, csr_of, state, symmetric
from tests.sb.test_op_fuzz import OPS, agree, block, packed

pytestmark = NATIVE_ONLY


WRITTEN = {"sb_step": ("position", "momentum"), "sb_run": ("position", "momentum"),
           "sb_run_csr": ("position", "momentum"), "sb_run_int8": ("position", "momentum"),
           "sb_run_batched": ("position", "momentum"),
           "sb_sample": ("energies", "stability", "bifurcated", "final_spins"),
           "sb_polish": ("spins", "field"),
           "sb_rows_step": ("position", "momentum", "start_momentum"),
           "sb_rows_pack": ("packed",), "sb_rows_energy": ("energies",)}
EXACT = {"sb_sample", "sb_polish", "sb_rows_pack", "sb_rows_energy"}


def case(op):
    """Valid arguments of op (schema order, as the reference names them), every tensor of two
    elements or more; fresh tensors at every call."""
    J = symmetric(5, torch.float64, integer=True) + torch.triu(torch.ones(5, 5), 1)  # J != J^T
    x, m = state(5, 3, torch.float64)
    spins = reference.sample_spins(x)
    crow, col, values = csr_of(J)
    (bcrow, bcol, bvalues), bx, bm, positions = block(5, 7, 3, torch.float64, 0, False, [])
    run = [0, 3, 0.1, 0.01, 0.02, 0.05]
    return {
        "sb_step": lambda: [J, x, m, -0.07, 0.1, 0.02, 0.05, True],
        "sb_run": lambda: [J, x, m, *run, False],
        "sb_run_csr": lambda: [crow, col, values, x, m, *run, True],
        "sb_run_int8": lambda: [J.to(torch.int8), 0.5, x, m, *run],
        "sb_run_batched": lambda: [torch.stack([J, -J]), torch.stack([x, m]), torch.stack([m, x]),
                                   torch.tensor([True, True]), *run[:4],
                                   torch.tensor([0.02, 0.03], dtype=torch.float64), 0.05, False],
        "sb_sample": lambda: [x, J @ spins, torch.tensor([math.inf, 1.0, 2.0], dtype=torch.float64),
                              torch.tensor([0, 1, 0], dtype=torch.int16),
                              torch.tensor([False, False, True]), spins.clone(), 2],
        "sb_polish": lambda: [crow, col, values, spins, J @ spins, 5],
        "sb_rows_step": lambda: [bcrow, bcol, bvalues, positions, bx, bm, bm.flip(0), -0.07, 0.1,
                                 0.3, 0.01, True, True],
        "sb_rows_pack": lambda: [x, torch.zeros(6, 1, dtype=torch.int64), False],
        "sb_rows_energy": lambda: [bcrow, bcol, bvalues, packed(positions, True)[:-1], bx,
                                   torch.zeros(3, dtype=torch.float64)],
    }[op]()


def arg_names(op):
    return list(inspect.signature(getattr(reference, op)).parameters)


def non_contiguous(t, how):
    """t's values in a view of other strides: transposed twice, or every other column."""
    if how == "transposed":
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    wide = t.new_zeros(*t.shape[:-1], 2 * t.shape[-1])
    wide[..., ::2] = t
    return wide[..., ::2]


def expect_clear_error_or_reference(op, native, built, names):
    """native gives a ValueError or TypeError naming every one of names, or the reference's
    result on built(), the same arguments built afresh."""
    try:
        getattr(OPS, op)(*native)
    except (ValueError, TypeError) as error:
        assert all(name in str(error) for name in names), str(error)
        return
    ref = built()
    getattr(reference, op)(*ref)
    for name in WRITTEN[op]:
        i = arg_names(op).index(name)
        agree(native[i], ref[i], op in EXACT)


NON_CONTIGUOUS = [(op, name, how) for op in WRITTEN for name, t in zip(arg_names(op), case(op))
                  for how in ("strided", "transposed") if torch.is_tensor(t) and t.dim() >= 1
                  and (how == "strided" or t.dim() >= 2)
                  and not non_contiguous(t, how).is_contiguous()]


@pytest.mark.parametrize("op,name,how", NON_CONTIGUOUS)
def test_non_contiguous_argument(op, name, how):
    native = case(op)
    i = arg_names(op).index(name)
    native[i] = non_contiguous(native[i], how)
    expect_clear_error_or_reference(op, native, lambda: case(op), [name])


def shared(args, i, j, how):
    """args with args[j] the very tensor args[i] ("same"), or both copied into one buffer
    with args[j] starting inside args[i] ("overlap"; args[i]'s values win where they meet)."""
    args = list(args)
    a, b = args[i], args[j]
    if how == "same":
        args[j] = a
        return args
    size, other = a.numel() * a.element_size(), b.numel() * b.element_size()
    start = size // 2 // 8 * 8  # inside a, aligned for every dtype
    buffer = torch.zeros(start + other + size, dtype=torch.uint8)
    args[j] = buffer[start:start + other].view(b.dtype).view(b.shape).copy_(b)
    args[i] = buffer[:size].view(a.dtype).view(a.shape).copy_(a)
    return args


def alias_pairs():
    for op, written in WRITTEN.items():
        names, args = arg_names(op), case(op)
        for w in written:
            for o, t in zip(names, args):
                if torch.is_tensor(t) and o != w and not (o in written and written.index(o) <
                                                          written.index(w)):
                    a = args[names.index(w)]
                    for how in ("same", "overlap"):
                        if how == "overlap" or (a.shape == t.shape and a.dtype == t.dtype):
                            yield op, w, o, how


@pytest.mark.parametrize("op,written,other,how", list(alias_pairs()))
def test_aliased_arguments(op, written, other, how):
    names = arg_names(op)
    i, j = names.index(written), names.index(other)
    native = shared(case(op), i, j, how)
    expect_clear_error_or_reference(op, native, lambda: shared(case(op), i, j, how),
                                    [written, other])


@pytest.mark.parametrize("op,index,value,message,reference_too", [
    *(("sb_run_int8", 1, v, "scale must be finite", True) for v in (math.nan, math.inf, -math.inf)),
    *(("sb_sample", 6, v, "threshold must be in", True) for v in (0, -1, 32769, 2**40)),
    ("sb_run", 3, 2**63 - 2, r"start_step \+ num_steps must fit int64", False),
])
def test_scalar_argument_out_of_range(op, index, value, message, reference_too):
    # A scale the kernel cannot fold in as the reference's product spreads it (csrc/sb/
    # checks.h), a threshold int16 cannot count to, step indices past int64.
    for run in (getattr(OPS, op),) + ((getattr(reference, op),) if reference_too else ()):
        args = case(op)
        args[index] = value
        with pytest.raises(ValueError, match=message):
            run(*args)
