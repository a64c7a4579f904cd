"""QIMADTorch's memory checks (issue 19, sb_native/_memory.py): a swarm too large for memory
fails at its first step (or at load_state_dict) before its agents x parameters buffers are made
and before any closure runs, with a MemoryError naming the sizes and what to change; on the torch
backend the reference step's temporaries are checked too, by update_order. The check runs once
per swarm, not per step.

Nothing large is allocated here: SB_NATIVE_MEMORY_LIMIT sets a small budget.
"""

import pytest
import torch

from sb_native import _memory, _ops
from sb_native.optim import QIMADTorch
from tests.qimad.test_qimad_ops import QIMAD_OPS

LIMIT = _memory.LIMIT_ENV
NATIVE = pytest.mark.skipif(not _ops.has_kernels(QIMAD_OPS, torch.device("cpu")),
                            reason="no native QIMAD kernels")


def swarm(parameters=10_000, dtype=torch.float32, **options):
    """(optimizer of 8 agents over one parameter tensor, its closure, the closure's calls)."""
    weights = torch.nn.Parameter(torch.ones(parameters, dtype=dtype))
    optimizer = QIMADTorch([weights], num_agents=8, seed=0, **options)
    calls = []

    def closure():
        calls.append(1)
        optimizer.zero_grad()
        loss = (weights ** 2).sum()
        loss.backward()
        return loss
    return optimizer, closure, calls


def test_a_swarm_too_large_fails_before_its_buffers(monkeypatch):
    monkeypatch.setenv(LIMIT, "1M")
    optimizer, closure, calls = swarm()
    with pytest.raises(MemoryError) as caught:
        optimizer.step(closure)
    # (3 x 8 + 8) x 10000 float32: 1.2 MiB.
    assert str(caught.value) == (
        "A QIMADTorch swarm of 8 agents over 10000 float32 parameters needs 1.2 MiB of memory "
        "for its state (3 buffers of 8 x 10000: positions, RMSProp averages and gradients, and "
        "8 vectors of 10000), more than the 1.0 MiB allowed on cpu by "
        f"{LIMIT}: use fewer agents (num_agents) or fewer parameters.")
    assert calls == [] and len(optimizer.state) == 0
    # Nothing half built: the same optimizer runs once the memory is there.
    monkeypatch.delenv(LIMIT)
    assert optimizer.step(closure) == 10_000.0 and len(calls) == 8


def test_float64_parameters_are_told_of_float32(monkeypatch):
    monkeypatch.setenv(LIMIT, "1M")
    optimizer, closure, _ = swarm(dtype=torch.float64)
    with pytest.raises(MemoryError, match=r"over 10000 float64 parameters needs 2\.4 MiB .* "
                                          r"fewer parameters, or float32 parameters\.$"):
        optimizer.step(closure)


def test_the_check_runs_once_per_swarm(monkeypatch):
    counted = []
    check = _memory.check_swarm
    monkeypatch.setattr(_memory, "check_swarm", lambda *args: counted.append(args) or check(*args))
    optimizer, closure, calls = swarm(parameters=100)
    for _ in range(5):
        optimizer.step(closure)
    assert counted == [(8, 100, torch.float32, torch.device("cpu"), 8)] and len(calls) == 40


def test_a_rank_of_a_sharded_swarm_counts_its_agents_state(monkeypatch):
    """A rank holding the RMSProp averages and gradients of 3 of the 8 agents (update_order=
    'synchronous' across ranks) needs (8 + 2 x 3 + 8) x 10000 float32 (0.84 MiB), not the
    whole swarm's 1.2 MiB."""
    monkeypatch.setenv(LIMIT, "1M")
    _memory.check_swarm(8, 10_000, torch.float32, "cpu", 3)
    monkeypatch.setenv(LIMIT, "700K")
    with pytest.raises(MemoryError) as caught:
        _memory.check_swarm(8, 10_000, torch.float32, "cpu", 3)
    assert str(caught.value).startswith(
        "A QIMADTorch swarm of 8 agents over 10000 float32 parameters needs 0.8 MiB of memory "
        "for its state (positions, 8 x 10000; RMSProp averages and gradients of this rank's "
        "agents, 3 x 10000 each, and 8 vectors of 10000), more than the 0.7 MiB")


def test_load_state_dict_checks_the_swarm_it_rebuilds(monkeypatch):
    optimizer, closure, _ = swarm()
    optimizer.step(closure)
    saved = optimizer.state_dict()
    resumed, _, _ = swarm()
    monkeypatch.setenv(LIMIT, "1M")
    with pytest.raises(MemoryError, match="^A QIMADTorch swarm of 8 agents over 10000 float32"):
        resumed.load_state_dict(saved)


def test_the_torch_steps_temporaries_are_checked_by_update_order(monkeypatch):
    # The swarm (1.2 MiB) fits in 2 MiB; the torch reference's synchronous step (9 buffers,
    # 2.7 MiB) does not, its sequential one (3 buffers, 0.9 MiB) does.
    monkeypatch.setenv(LIMIT, "2M")
    optimizer, closure, calls = swarm(backend="torch", update_order="synchronous")
    with pytest.raises(MemoryError) as caught:
        optimizer.step(closure)
    assert str(caught.value) == (
        "A QIMADTorch step of 8 agents over 10000 float32 parameters on the torch backend "
        "needs 2.7 MiB of memory for its temporaries (9 buffers of 8 x 10000 in "
        "update_order='synchronous'), more than the 2.0 MiB allowed on cpu by "
        f"{LIMIT}: use the native backend (whose step needs none), "
        "update_order='sequential', fewer agents (num_agents) or fewer parameters.")
    assert calls == []
    optimizer, closure, calls = swarm(backend="torch")  # sequential, the default
    assert optimizer.step(closure) == 10_000.0 and len(calls) == 8


@NATIVE
def test_the_native_step_needs_no_temporaries(monkeypatch):
    monkeypatch.setenv(LIMIT, "2M")
    optimizer, closure, calls = swarm(backend="native", update_order="synchronous")
    assert optimizer.step(closure) == 10_000.0 and len(calls) == 8
