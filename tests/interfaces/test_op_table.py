"""The op table (sb_native/_ops.py) against the registered schemas: every op the library
registers is in the table, and every wrapper and torch reference takes exactly its schema's
arguments, by name and in order, so argument-order drift fails here."""

import importlib
import inspect

import pytest
import torch

from sb_native import _ops
from tests.helpers import NATIVE_ONLY

pytestmark = NATIVE_ONLY

# algorithm -> (module of the per-op wrappers, module of the torch references)
MODULES = {"sb": ("sb_native.engine.ops", "sb_native.engine.reference"),
           "qimad": ("sb_native.optim.ops", "sb_native.optim._reference")}


def schema_names(name):
    return [argument.name for argument in getattr(torch.ops.sb_native, name).default._schema.arguments]


def parameter_names(function):
    return [name for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind != inspect.Parameter.KEYWORD_ONLY]


def test_the_table_lists_every_registered_op():
    registered = {name.split("::", 1)[1] for name in torch._C._dispatch_get_all_op_names()
                  if name.startswith("sb_native::")}
    assert registered == set(_ops.op_names())
    assert set(_ops.op_names("sb")) | set(_ops.op_names("qimad")) == set(_ops.op_names())


@pytest.mark.parametrize("op", _ops.OPS, ids=lambda op: op.name)
def test_wrapper_and_reference_take_the_schema_arguments(op):
    wrappers, references = (importlib.import_module(m) for m in MODULES[op.algorithm])
    expected = schema_names(op.name)
    wrapper = getattr(wrappers, op.name)
    assert parameter_names(wrapper) == expected
    assert [n for n, p in inspect.signature(wrapper).parameters.items()
            if p.kind == inspect.Parameter.KEYWORD_ONLY] == ["backend"]
    assert parameter_names(getattr(references, op.name)) == expected


@pytest.mark.parametrize("op", _ops.OPS, ids=lambda op: op.name)
def test_every_op_runs_natively_on_the_cpu(op):
    assert _ops.has_kernels([op.name], "cpu")
    assert not _ops.has_kernels([op.name], "meta")


def test_select_picks_the_overload_or_the_reference():
    reference = object()
    assert _ops.select("sb_run", "torch", reference) is reference
    assert _ops.select("sb_run", "native", reference) is torch.ops.sb_native.sb_run.default


def test_resolve_backend_names_the_missing_kernel():
    with pytest.raises(RuntimeError, match="no kernel for device meta"):
        _ops.resolve_backend("native", "meta")
    assert _ops.resolve_backend("auto", "meta") == "torch"
    assert _ops.resolve_backend("auto", "cpu", "qimad") == "native"
