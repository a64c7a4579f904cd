"""The QIMAD CUDA ops run on the CPU under the emulation (tests/emulation), from their entry
(launchers included), against the CPU ops on the same inputs (test_qimad_ops's builders):
qimad_fidelity (fidelity_rows_kernel) and qimad_update (jump_scales_kernel, swarm_step_kernel,
sequential_step_kernel), with and without a box, and on a shard of the swarm (first). The
fidelity's transcendentals are the CPU's own functions here, so its rows match to rounding; the
update's per-element arithmetic is shared (csrc/qimad/math.h)."""

import pytest
import torch

from tests.qimad.test_cuda import QIMAD_CASES, SIZES, fidelity_mask
from tests.qimad.test_qimad_ops import angles, box_for, cloned, swarm_case

TOL = {torch.float64: dict(rtol=1e-12, atol=1e-14), torch.float32: dict(rtol=1e-5, atol=1e-6)}
DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1.0, 2.5])
@pytest.mark.parametrize("n", [1, 13, 300])  # 300: more agents than a block's 128 threads
@pytest.mark.parametrize("topology", ["complete", "random", "none"])
def test_qimad_fidelity(emulated, dtype, k, n, topology):
    a, b = angles(n, dtype, "cpu", seed=2)
    mask = fidelity_mask(n, topology)
    W = emulated.qimad_fidelity(a, b, mask, k, 1e-8)
    torch.testing.assert_close(W, torch.ops.sb_native.qimad_fidelity(a, b, mask, k, 1e-8),
                               **TOL[dtype])
    assert bool((W[~mask] == 0).all())


def test_qimad_fidelity_no_agents(emulated):
    none = torch.zeros(0)
    W = emulated.qimad_fidelity(none, none, torch.zeros(0, 0, dtype=torch.bool), 2.0, 1e-8)
    assert W.shape == (0, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", QIMAD_CASES)
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("box", [False, True])
def test_qimad_update(emulated, dtype, case, sequential, box):
    case = dict(QIMAD_CASES[case])
    sizes = case.pop("sizes", SIZES)
    cpu = swarm_case(case.pop("n", 7), sizes, dtype, "cpu", seed=5, **case)
    cpu += [sequential, box_for(cpu) if box else None]
    got = cloned(cpu)
    torch.ops.sb_native.qimad_update(*cpu)
    emulated.qimad_update(*got)
    for i in (0, 1):  # theta, square_avg; rows not updated must be untouched
        torch.testing.assert_close(got[i], cpu[i], **TOL[dtype])


def test_qimad_update_index_checks(emulated):
    args = swarm_case(5, [4, 3], torch.float64, "cpu", seed=1) + [False]
    args[5] = torch.tensor([0, 9])  # rows: agent 9 of 5
    with pytest.raises((ValueError, IndexError), match="rows"):
        emulated.qimad_update(*args)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sequential", [False, True])
def test_qimad_update_of_a_shard(emulated, dtype, sequential):
    """square_avg and grad holding the agents [2, 5) only (first = 2; a swarm sharded over
    ranks): the device code indexes them from first, theta from 0."""
    cpu = swarm_case(7, SIZES, dtype, "cpu", seed=3, rows=[2, 4], tunnel_rows=[4])
    cpu += [sequential, None]
    cpu[1], cpu[2] = cpu[1][2:5].clone(), cpu[2][2:5].clone()
    got = cloned(cpu)
    torch.ops.sb_native.qimad_update(*cpu, 2)
    emulated.qimad_update(*got, 2)
    for i in (0, 1):
        torch.testing.assert_close(got[i], cpu[i], **TOL[dtype])
