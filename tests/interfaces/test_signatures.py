"""One source for the solver keywords (sb_native/_options.py): every entry point that takes
them keeps an explicit signature, and this test holds those signatures to SolverOptions'
fields, defaults and annotations."""

import dataclasses
import inspect
import typing

import pytest
import torch

import sb_native as sb
from sb_native._options import FIELDS, SolverOptions
from sb_native.core import Ising, QuadraticPolynomial
from sb_native.core.batch import PolynomialBatch
from sb_native.models import ABCModel

FIELD_TYPES = typing.get_type_hints(SolverOptions)
DEFAULTS = {field.name: field.default for field in dataclasses.fields(SolverOptions)}
ENTRY_POINTS = {
    "minimize": sb.minimize, "maximize": sb.maximize,
    "QuadraticPolynomial.minimize": QuadraticPolynomial.minimize,
    "QuadraticPolynomial.maximize": QuadraticPolynomial.maximize,
    "ABCModel.minimize": ABCModel.minimize, "ABCModel.maximize": ABCModel.maximize,
    "MaxCut.maximize": sb.models.MaxCut.maximize,
    "Ising.minimize": Ising.minimize,
    "PolynomialBatch.minimize": PolynomialBatch.minimize,
    "PolynomialBatch.maximize": PolynomialBatch.maximize,
    "RowBlock.minimize": sb.RowBlock.minimize, "RowBlock.maximize": sb.RowBlock.maximize,
}
# Ising.minimize returns every agent's spins, as simulated-bifurcation 2.0.0's: no best_only.
WITHOUT = {"Ising.minimize": {"best_only"}}


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_signature_has_the_solver_options(name):
    function = ENTRY_POINTS[name]
    parameters = inspect.signature(function).parameters
    hints = typing.get_type_hints(function)
    expected = [f for f in FIELDS if f not in WITHOUT.get(name, ())]
    assert [p for p in parameters if p in FIELDS] == expected
    for field in expected:
        parameter = parameters[field]
        assert parameter.kind == inspect.Parameter.KEYWORD_ONLY, field
        assert parameter.default == DEFAULTS[field], field
        assert hints[field] == FIELD_TYPES[field], field


def test_domain_is_typed_alike_where_it_is_taken():
    hints = [typing.get_type_hints(f)["domain"]
             for f in (sb.minimize, sb.maximize, QuadraticPolynomial.minimize,
                       QuadraticPolynomial.maximize)]
    assert all(hint == hints[0] for hint in hints)


def test_the_options_reach_the_runner(monkeypatch):
    seen = []
    original = Ising._run

    def spy(self, options, *rest):
        seen.append(options)
        return original(self, options, *rest)

    monkeypatch.setattr(Ising, "_run", spy)
    sb.maximize(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), domain="spin", agents=3, max_steps=7,
                early_stopping=False, verbose=False, backend="torch", seed=5, best_only=False)
    assert seen == [SolverOptions(agents=3, max_steps=7, best_only=False, early_stopping=False,
                                  verbose=False, backend="torch", seed=5)]
