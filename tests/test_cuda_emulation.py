"""The incremental dSB CUDA kernel (csrc/cuda/sb_incremental_kernel.cuh) run on the CPU.

The kernel compiles here but no GPU runs it in CI, so its device code is compiled as C++
under an emulation of the CUDA built-ins it uses (tests/emulation/cuda_shim.h: a thread
per CUDA thread, barriers for __syncthreads and the warp ballot) and checked against the
CPU op: on integer weights the states must be identical, as on a GPU (tests/test_cuda.py).
This checks the kernel's indexing, barriers and flip compaction, not the launcher.
"""

import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import torch

from conftest import NATIVE_ONLY

pytestmark = NATIVE_ONLY

SOURCE = pathlib.Path(__file__).parent / "emulation" / "incremental_dsb.cpp"
Q, TIME_STEP, SLOPE, HEAT = 0.01, 0.1, 0.01, 0.006


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    binary = tmp_path_factory.mktemp("emulation") / "incremental_dsb"
    subprocess.run([compiler, "-std=c++20", "-O1", "-pthread", str(SOURCE), "-o", str(binary)],
                   check=True, capture_output=True)
    return binary


def emulate(binary, directory, J, x, m, start, steps, threads, heated, int8):
    n, agents = x.shape
    agent_major = {"x": x, "m": m, "F": J @ torch.sign(x)}
    for name, tensor in agent_major.items():
        tensor.t().contiguous().numpy().tofile(directory / f"{name}.bin")
    J.t().contiguous().numpy().tofile(directory / "columns.bin")
    subprocess.run([str(binary), str(directory), str(n), str(agents), str(start), str(steps),
                    str(threads), str(int(heated)), str(int(int8)),
                    str(int(x.dtype == torch.float64)), repr(Q), repr(HEAT if heated else 0.0),
                    repr(TIME_STEP), repr(SLOPE)], check=True)
    dtype = np.float64 if x.dtype == torch.float64 else np.float32

    def load(name):
        flat = np.fromfile(directory / f"{name}_out.bin", dtype)
        return torch.from_numpy(flat).view(agents, n).t()
    return load("x"), load("m")


# n x agents with the block's thread count: one partial chunk, several chunks with a partial
# last one, exactly two chunks, the launcher's 512 threads; a single variable.
CASES = [(45, 3, 64), (700, 3, 64), (128, 2, 64), (600, 2, 512), (1, 2, 32)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heated", [False, True])
@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("n,agents,threads", CASES)
def test_incremental_kernel_equals_cpu_op(emulator, tmp_path, dtype, heated, int8, n, agents,
                                          threads):
    g = torch.Generator().manual_seed(n + agents)
    J = torch.randint(-3, 4, (n, n), generator=g).to(dtype).triu(1)
    J = J + J.t()
    x = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
    m = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
    start, steps = 3, 60
    got_x, got_m = emulate(emulator, tmp_path, J, x, m, start, steps, threads, heated, int8)
    heat = HEAT if heated else 0.0
    if int8:
        torch.ops.sb_native.sb_run_int8(J.to(torch.int8), 1.0, x, m, start, steps, TIME_STEP,
                                        SLOPE, Q, heat)
    else:
        torch.ops.sb_native.sb_run(J, x, m, start, steps, TIME_STEP, SLOPE, Q, heat, True)
    assert torch.equal(got_x, x)
    assert torch.equal(got_m, m)
