"""The tests' oracles (issue 19): under CI (CI=true or 1, as .ci/run sets) a missing oracle fails
the test that needs it, naming what is missing and how to get it; elsewhere it skips. The
oracles: the peer package simulated_bifurcation and the QIMAD seed reference vendored in
tests/oracles."""

import sys

import pytest

from tests import helpers

SHARED_SEED = helpers.SHARED / "seeds" / "000_qimad_seed_reformatted.py"


@pytest.fixture
def no_peer(monkeypatch):
    """The peer as if not installed: a None in sys.modules makes its import fail."""
    monkeypatch.setitem(sys.modules, "simulated_bifurcation", None)


@pytest.fixture
def no_seed(monkeypatch, tmp_path):
    monkeypatch.setattr(helpers, "SEED_REFERENCE", tmp_path / "absent.py")


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_a_missing_peer_fails_under_ci(monkeypatch, no_peer, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception,
                       match=r"^the peer package simulated_bifurcation .* is missing: pip install "
                             r"simulated-bifurcation==2\.0\.0 .* every oracle must be present"):
        helpers.load_peer()


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_a_missing_peer_skips_outside_ci(monkeypatch, no_peer, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="simulated_bifurcation .* is missing: pip"):
        helpers.load_peer()


def test_a_missing_seed_fails_under_ci_and_skips_outside(monkeypatch, no_seed, tmp_path):
    absent = str(tmp_path / "absent.py")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="QIMAD seed reference") as failed:
        helpers.load_reference()
    assert absent in str(failed.value) and "git checkout -- tests/oracles" in str(failed.value)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="QIMAD seed reference"):
        helpers.load_reference()
    assert helpers.import_reference() is None


def test_present_oracles_load():
    assert helpers.load_reference().QIMADTorch.__name__ == "QIMADTorch"
    assert hasattr(helpers.load_peer(), "minimize")


def test_the_seed_reference_is_vendored_in_the_repository():
    assert helpers.SEED_REFERENCE.is_relative_to(helpers.ROOT)
    assert helpers.SEED_REFERENCE.is_file()


@pytest.mark.skipif(not SHARED_SEED.is_file(), reason="no shared/ beside the repository")
def test_the_vendored_seed_is_the_shared_one_under_its_header():
    lines = helpers.SEED_REFERENCE.read_text(encoding="utf-8").splitlines(keepends=True)
    body = next(k for k, line in enumerate(lines) if not line.startswith("#"))
    assert body > 0 and "not project code" in lines[0]
    assert "".join(lines[body:]) == SHARED_SEED.read_text(encoding="utf-8")
