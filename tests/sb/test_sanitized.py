"""`make sanitize` (scripts/sanitize.sh) runs the native-op tests against the extension built
with AddressSanitizer and UndefinedBehaviorSanitizer. These checks make sure that run tests
what it says: the sanitized build is the one imported, and the sanitizers are live in the
process (a run that silently fell back to the normal build, or to the pure-torch ops, would
pass everything and prove nothing). Skipped outside that run."""

import os
import pathlib

import pytest
import torch

import sb_native

SANITIZED = os.environ.get("SBN_SANITIZED")
pytestmark = pytest.mark.skipif(not SANITIZED, reason="only under make sanitize")


def test_the_sanitized_extension_is_the_one_loaded():
    from sb_native import _C
    assert sb_native.backend_info()["native"]
    assert pathlib.Path(_C.__file__).resolve().is_relative_to(pathlib.Path(SANITIZED).resolve())


def test_the_sanitizers_are_live():
    maps = pathlib.Path("/proc/self/maps").read_text()
    assert "libasan" in maps and "libubsan" in maps


def test_an_op_runs_instrumented():
    """A native op on a small problem: its kernel runs under the sanitizers without a report
    (a report aborts the process, which fails the run)."""
    J = torch.randn(9, 9, dtype=torch.float64)
    spins, energy = sb_native.minimize((J + J.T) / 2, domain="spin", agents=4, max_steps=50,
                                        verbose=False)
    assert spins.shape == (9,) and torch.isfinite(energy)
