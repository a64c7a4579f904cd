"""The emulator itself (csrc/common/cuda/emulation): the built-ins give CUDA's values, and each
check fires on a kernel with that fault and stays quiet on the fixed kernel
(tests/emulation/probes.cpp)."""

import pytest
import torch

FAILED = "emulated kernel failed"


def probe(emulated, name, threads=64):
    out = torch.zeros(12 * max(threads, 8), dtype=torch.int32)
    emulated.emulator_probe(out, name, threads)
    return out


def test_barrier_makes_neighbour_reads_correct(emulated):
    out = probe(emulated, "barrier")[:128].view(2, 64)
    expected = (torch.arange(64, dtype=torch.int32).roll(1) * 10).expand(2, 64)
    assert torch.equal(out, expected)


def test_missing_barrier_is_a_race(emulated):
    with pytest.raises(RuntimeError, match=FAILED) as error:
        probe(emulated, "race")
    message = str(error.value)
    # Threads run in order between barriers: thread 0 reads slot 63 before thread 63 writes
    # it, and thread 1 reads what thread 0 wrote.
    assert "block (0, 0, 0): read before any write at byte 252 of shared slots (256 bytes) " \
           "by thread 0" in message
    assert "read of another thread's write, no barrier between at byte 0 of shared slots " \
           "(256 bytes) by thread 1, thread 0" in message


def test_read_of_unwritten_shared_memory(emulated):
    with pytest.raises(RuntimeError, match="read before any write at byte 0 of shared slots"):
        probe(emulated, "unwritten")


def test_static_array_overrun(emulated):
    with pytest.raises(RuntimeError, match=r"write past the end at byte 128 of shared slots "
                                           r"\(128 bytes\) by thread 32"):
        probe(emulated, "overrun")


def test_dynamic_shared_memory(emulated):
    out = probe(emulated, "dynamic", 40)[:40]
    assert torch.equal(out, torch.arange(39, -1, -1, dtype=torch.int32))
    with pytest.raises(RuntimeError, match="write past the end at byte 160 of shared dynamic"):
        probe(emulated, "dynamic_overrun", 40)


def test_divergent_barrier(emulated):
    with pytest.raises(RuntimeError, match=r"a barrier is never reached .*\(threads 0 returned\)"):
        probe(emulated, "divergent")


@pytest.mark.parametrize("threads", [32, 96, 40])  # one warp, three, a partial last warp
def test_warp_ballot_and_shuffle(emulated, threads):
    out = probe(emulated, "warp", threads)[:2 * threads].view(threads, 2).tolist()
    for t, (mask, total) in enumerate(out):
        first = t // 32 * 32
        lanes = range(first, min(first + 32, threads))
        assert mask & 0xffffffff == sum(1 << (u - first) for u in lanes if u % 3 == 0)
        if threads % 32 == 0:  # a full warp: the butterfly sums the warp
            assert total == sum(lanes)


def test_thread_and_block_indices(emulated):
    out = probe(emulated, "indices")[:6 * 8 * 4].view(6, 2, 4, 4)  # block, y, x, fields
    for block in range(6):
        for y in range(2):
            for x in range(4):
                assert out[block, y, x].tolist() == [x, y, block % 2, block // 2]


def test_invalid_launch_configuration(emulated):
    with pytest.raises(RuntimeError, match=r"invalid configuration: grid \(1, 1, 1\), block "
                                           r"\(2048, 1, 1\)"):
        probe(emulated, "too_many_threads")
