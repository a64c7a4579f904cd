"""sb_native.dimod.SimulatedBifurcationSampler, checked with dimod's own test utilities."""

import inspect
import pathlib
import subprocess
import sys
import unittest

import numpy as np
import pytest

dimod = pytest.importorskip("dimod")
import dimod.testing  # noqa: E402,F811  (the submodule, once dimod is known present)

import sb_native as sb  # noqa: E402
from sb_native.dimod import SimulatedBifurcationSampler  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


class FastSampler(SimulatedBifurcationSampler):
    """Small defaults so dimod's generated suite (32 models) runs in about a second."""

    def sample(self, bqm, **parameters):
        parameters.setdefault("agents", 8)
        parameters.setdefault("max_steps", 300)
        parameters.setdefault("early_stopping", False)
        parameters.setdefault("seed", 0)
        return super().sample(bqm, **parameters)


@dimod.testing.load_sampler_bqm_tests(FastSampler)
class TestDimodSuite(unittest.TestCase):
    """dimod's generated tests: empty, 1-variable and path models, every BQM class and vartype."""


def random_bqm(vartype, n=12, seed=0):
    """Biases in {-2.75, ..., 3.25}: exact in float32, so energies must match to 1e-9."""
    rng = np.random.default_rng(seed)
    return dimod.generators.gnp_random_bqm(
        n, 0.5, vartype, random_state=seed,
        bias_generator=lambda size: rng.integers(-3, 4, size) + 0.25)


def test_sampler_api():
    sampler = SimulatedBifurcationSampler()
    dimod.testing.assert_sampler_api(sampler)
    accepted = inspect.signature(sampler.sample).parameters
    assert set(sampler.parameters) <= set(accepted)
    for name, properties in sampler.parameters.items():
        assert all(key in sampler.properties for key in properties), name


@pytest.mark.parametrize("vartype", [dimod.SPIN, dimod.BINARY])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_sample_per_agent_with_exact_energies(vartype, dtype):
    bqm = random_bqm(vartype)
    sampleset = SimulatedBifurcationSampler().sample(bqm, agents=24, max_steps=500, seed=1,
                                                     dtype=dtype, early_stopping=False)
    assert len(sampleset) == 24 and sampleset.vartype is vartype
    assert set(sampleset.variables) == set(bqm.variables)
    assert all(sampleset.record.num_occurrences == 1)
    dimod.testing.assert_sampleset_energies(sampleset, bqm, precision=9)


@pytest.mark.parametrize("vartype", [dimod.SPIN, dimod.BINARY])
def test_finds_the_ground_state_and_best_only(vartype):
    bqm = random_bqm(vartype, n=10, seed=3)
    ground = dimod.ExactSolver().sample(bqm).first.energy
    sampler = SimulatedBifurcationSampler()
    everything = sampler.sample(bqm, agents=32, max_steps=1000, seed=0, early_stopping=False)
    best = sampler.sample(bqm, agents=32, max_steps=1000, seed=0, early_stopping=False,
                          best_only=True)
    assert len(best) == 1
    assert best.first.energy == pytest.approx(everything.first.energy) == pytest.approx(ground)
    dimod.testing.assert_sampleset_energies(best, bqm)


def test_sample_ising_and_sample_qubo_labels_and_energies():
    h = {"a": 1.0, ("b", 1): -0.5}
    J = {("a", ("b", 1)): -2.0, (("b", 1), 7): 1.5}
    sampleset = SimulatedBifurcationSampler().sample_ising(h, J, agents=8, seed=2)
    assert sampleset.vartype is dimod.SPIN and set(sampleset.variables) == {"a", ("b", 1), 7}
    for sample, energy in sampleset.data(["sample", "energy"]):
        assert dimod.ising_energy(sample, h, J) == pytest.approx(energy)
    Q = {(0, 0): -1.0, (1, 1): -1.0, (0, 1): 2.5, (1, 2): -1.0}
    sampleset = SimulatedBifurcationSampler().sample_qubo(Q, agents=8, seed=2, heated=True,
                                                          mode="discrete")
    assert sampleset.vartype is dimod.BINARY and set(sampleset.first.sample.values()) <= {0, 1}
    assert sampleset.first.energy == min(dimod.ExactSolver().sample_qubo(Q).record.energy)


def test_seed_reproduces_samples_and_info():
    bqm = random_bqm(dimod.SPIN, seed=5)
    sampler = SimulatedBifurcationSampler()
    first = sampler.sample(bqm, agents=6, max_steps=200, seed=11, early_stopping=False)
    second = sampler.sample(bqm, agents=6, max_steps=200, seed=11, early_stopping=False)
    assert (first.record.sample == second.record.sample).all()
    assert first.info["backend"] in ("native", "torch") and first.info["solve_time_s"] >= 0


def test_timeout_stops_the_run():
    bqm = random_bqm(dimod.SPIN, seed=6)
    sampleset = SimulatedBifurcationSampler().sample(bqm, agents=4, max_steps=None,
                                                     early_stopping=False, timeout=0.2)
    assert len(sampleset) == 4 and sampleset.info["solve_time_s"] < 5


def test_bad_parameters():
    sampler = SimulatedBifurcationSampler()
    bqm = random_bqm(dimod.SPIN, n=3)
    with pytest.raises(TypeError, match="num_sweeps"):
        sampler.sample(bqm, num_sweeps=10)
    with pytest.raises(ValueError, match="dtype"):
        sampler.sample(bqm, dtype="float16")
    with pytest.raises(ValueError):
        sampler.sample(bqm, mode="adiabatic")
    with pytest.raises(TypeError, match="BinaryQuadraticModel"):
        sampler.sample({"a": 1})


def test_sb_native_imports_without_dimod():
    # A finder that refuses dimod stands in for an environment without it.
    code = ("import sys; sys.modules['dimod'] = None\n"
            "import sb_native\n"
            "try:\n    import sb_native.dimod\nexcept ImportError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'sb_native[dimod]'" in done.stdout


def _random_bqms(count, vartype):
    rng = np.random.default_rng(3)
    bqms = []
    for b in range(count):
        n = int(rng.integers(1, 12))
        bqm = dimod.generators.gnp_random_bqm(n, 0.6, vartype, random_state=int(b))
        bqms.append(bqm)
    bqms.insert(2, dimod.BinaryQuadraticModel(vartype))  # no variables: an empty SampleSet
    return bqms


@pytest.mark.parametrize("vartype", [dimod.SPIN, dimod.BINARY])
@pytest.mark.parametrize("mode", ["ballistic", "discrete"])
def test_sample_multiple_equals_one_sample_each(vartype, mode):
    bqms = _random_bqms(6, vartype)
    sampler = SimulatedBifurcationSampler()
    options = dict(agents=5, max_steps=200, sampling_period=10, convergence_threshold=3,
                   mode=mode, seed=11)
    samplesets = sampler.sample_multiple(bqms, **options)
    assert len(samplesets) == len(bqms) and len(samplesets[2]) == 0
    for b, (bqm, sampleset) in enumerate(zip(bqms, samplesets)):
        if not bqm.num_variables:
            continue
        alone = sampler.sample(bqm, **dict(options, seed=11 + b))
        assert sampleset.variables == alone.variables and sampleset.vartype is bqm.vartype
        np.testing.assert_array_equal(sampleset.record.sample, alone.record.sample)
        np.testing.assert_array_equal(sampleset.record.energy, alone.record.energy)
        assert sampleset.info["batch_index"] == b and sampleset.info["batch_size"] == 6


def test_sample_multiple_checks_each_bqm():
    sampler = SimulatedBifurcationSampler()
    with pytest.raises(TypeError, match=r"bqms\[1\] must be a dimod.BinaryQuadraticModel"):
        sampler.sample_multiple([dimod.BQM("SPIN"), {"a": 1}])
    assert sampler.sample_multiple([]) == []


@pytest.mark.parametrize("vartype", [dimod.SPIN, dimod.BINARY])
def test_time_limit_gives_the_best_sample(vartype):
    bqm = random_bqm(vartype, n=10, seed=3)
    ground = dimod.ExactSolver().sample(bqm).first.energy
    sampleset = SimulatedBifurcationSampler().sample(bqm, time_limit=0.3, seed=2)
    assert len(sampleset) == 1 and sampleset.vartype is vartype
    assert sampleset.first.energy == pytest.approx(ground)
    dimod.testing.assert_sampleset_energies(sampleset, bqm, precision=9)
    info = sampleset.info
    assert info["runs"] >= 1 and info["time_limit"] == 0.3
    assert 0 < info["found_s"] <= info["solve_time_s"]


def test_time_limit_errors_and_polish():
    bqm = random_bqm(dimod.SPIN, n=8, seed=1)
    sampler = SimulatedBifurcationSampler()
    with pytest.raises(ValueError, match="timeout does not go with time_limit"):
        sampler.sample(bqm, time_limit=0.2, timeout=1.0)
    with pytest.raises(ValueError, match="max_steps cannot be None with time_limit"):
        sampler.sample(bqm, time_limit=0.2, max_steps=None)
    raw = sampler.sample(bqm, agents=16, max_steps=40, seed=0, early_stopping=False)
    polished = sampler.sample(bqm, agents=16, max_steps=40, seed=0, early_stopping=False,
                              polish=True)
    assert polished.record.energy.sum() <= raw.record.energy.sum()
    dimod.testing.assert_sampleset_energies(polished, bqm, precision=9)


def test_callbacks_see_the_bqm_energies():
    """sample's points are the agents' BQM energies; sample_multiple's carry one entry per
    BQM, each its own sample call's (an empty BQM: its offset), and a True stops both."""
    bqms = _random_bqms(4, dimod.SPIN)
    bqms[2].offset = 1.5
    sampler = SimulatedBifurcationSampler()
    options = dict(agents=5, max_steps=100, sampling_period=10, early_stopping=False, seed=3,
                   dtype="float64")
    batch = sb.History()
    samplesets = sampler.sample_multiple(bqms, callback=batch, **options)
    assert batch.steps == list(range(10, 101, 10))
    assert [point.best[2] for point in batch] == [1.5] * 10
    for b, bqm in enumerate(bqms):
        if not bqm.num_variables:
            continue
        alone = sb.History()
        sampleset = sampler.sample(bqm, callback=alone, **dict(options, seed=3 + b))
        assert alone.best[-1] == pytest.approx(float(sampleset.first.energy), abs=1e-9)
        assert alone.mean[-1] == pytest.approx(float(sampleset.record.energy.mean()), abs=1e-9)
        mine = batch.problem(b)
        assert mine.steps == alone.steps and mine.frozen == alone.frozen
        assert mine.best == pytest.approx(alone.best, abs=1e-9)
        assert mine.mean == pytest.approx(alone.mean, abs=1e-9)
        assert float(samplesets[b].first.energy) == float(sampleset.first.energy)
    stopped = sb.History()
    sampler.sample(bqms[0], callback=lambda point: stopped(point) or point.step == 30,
                   **options)
    assert stopped.steps == [10, 20, 30]
