"""The CUDA kernels that run whole calls in one launch, run on the CPU.

The CUDA build compiles here but no GPU runs it in CI, so the device code of the two
persistent SB kernels, the small-problem kernel (csrc/sb/cuda/sb_small_kernel.cuh, n <= 512)
and the incremental dSB kernel (csrc/sb/cuda/sb_incremental_kernel.cuh, larger n), is compiled
as C++ under an emulation of the CUDA built-ins it uses (tests/emulation/cuda_shim.h: a
thread per CUDA thread, barriers for __syncthreads and the warp ballot and shuffle) and
checked against the CPU ops: dSB on integer weights must give identical states, as on a GPU
(tests/test_cuda.py), bSB the CPU's within the product's rounding. This checks the kernels'
indexing, barriers, shared-memory layout and flip compaction, not the launchers.
"""

import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import torch

from tests.helpers import NATIVE_ONLY

pytestmark = NATIVE_ONLY

SOURCES = pathlib.Path(__file__).parent / "emulation"
Q, TIME_STEP, SLOPE, HEAT = 0.01, 0.1, 0.01, 0.006
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    out = tmp_path_factory.mktemp("emulation")
    binaries = {}
    for name in ("incremental_dsb", "small_run"):
        binaries[name] = out / name
        subprocess.run([compiler, "-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas",
                        str(SOURCES / f"{name}.cpp"), "-o", str(binaries[name])],
                       check=True, capture_output=True)
    return binaries


def problem(n, agents, dtype):
    g = torch.Generator().manual_seed(n + agents)
    J = torch.randint(-3, 4, (n, n), generator=g).to(dtype).triu(1)
    J = J + J.t()
    x = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
    m = 2 * torch.rand(n, agents, generator=g, dtype=dtype) - 1
    return J, x, m


def save(directory, **tensors):
    for name, tensor in tensors.items():
        tensor.contiguous().numpy().tofile(directory / f"{name}.bin")


def load(directory, shape, dtype, agent_major):
    flat = {name: np.fromfile(directory / f"{name}_out.bin",
                              np.float64 if dtype == torch.float64 else np.float32)
            for name in ("x", "m")}
    if agent_major:
        return tuple(torch.from_numpy(flat[k]).view(shape[1], shape[0]).t() for k in ("x", "m"))
    return tuple(torch.from_numpy(flat[k]).view(*shape) for k in ("x", "m"))


def run_cpu_op(J, x, m, start, steps, heated, discrete, int8):
    heat = HEAT if heated else 0.0
    if int8:
        torch.ops.sb_native.sb_run_int8(J.to(torch.int8), 1.0, x, m, start, steps, TIME_STEP,
                                        SLOPE, Q, heat)
    else:
        torch.ops.sb_native.sb_run(J, x, m, start, steps, TIME_STEP, SLOPE, Q, heat, discrete)


def sizes_and_coefficients(x, start, steps, heated):
    """The emulators' N AGENTS START STEPS and Q HEAT TIME_STEP SLOPE arguments."""
    sizes = [str(x.shape[0]), str(x.shape[1]), str(start), str(steps)]
    return sizes, [repr(Q), repr(HEAT if heated else 0.0), repr(TIME_STEP), repr(SLOPE)]


# ── incremental dSB kernel (n > 512 on a GPU; any n here) ────────────────────
# n x agents with the block's thread count: one partial chunk, several chunks with a partial
# last one, exactly two chunks, the launcher's 512 threads; a single variable.
INCREMENTAL_CASES = [(45, 3, 64), (700, 3, 64), (128, 2, 64), (600, 2, 512), (1, 2, 32)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heated", [False, True])
@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("n,agents,threads", INCREMENTAL_CASES)
def test_incremental_kernel_equals_cpu_op(emulators, tmp_path, dtype, heated, int8, n, agents,
                                          threads):
    J, x, m = problem(n, agents, dtype)
    start, steps = 3, 60
    # The kernel's inputs: the agent-major state, the exact initial field, J's columns.
    save(tmp_path, x=x.t(), m=m.t(), F=(J @ torch.sign(x)).t(), columns=J.t())
    sizes, coefs = sizes_and_coefficients(x, start, steps, heated)
    subprocess.run([str(emulators["incremental_dsb"]), str(tmp_path), *sizes, str(threads),
                    str(int(heated)), str(int(int8)), str(int(dtype == torch.float64)), *coefs],
                   check=True)
    got_x, got_m = load(tmp_path, x.shape, dtype, agent_major=True)
    run_cpu_op(J, x, m, start, steps, heated, True, int8)
    assert torch.equal(got_x, x)
    assert torch.equal(got_m, m)


# ── persistent small-problem kernel (n <= 512) ───────────────────────────────
# n x agents: one variable, fewer than a warp, not a multiple of 32, the limit; agents one and
# counts that are multiples of neither tile.
SMALL_CASES = [(1, 5), (45, 1), (100, 37), (512, 3)]


def run_small(binary, directory, J, x, m, start, steps, tile, heated, discrete, int8,
              flip_fraction):
    save(directory, x=x, m=m, J=J)
    sizes, coefs = sizes_and_coefficients(x, start, steps, heated)
    subprocess.run([str(binary), str(directory), *sizes, str(tile), str(int(heated)),
                    str(int(discrete)), str(int(int8)), str(int(x.dtype == torch.float64)),
                    *coefs, repr(flip_fraction)], check=True)
    return load(directory, x.shape, x.dtype, agent_major=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heated", [False, True])
@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("tile", [2, 8])
@pytest.mark.parametrize("n,agents", SMALL_CASES)
def test_small_kernel_dsb_equals_cpu_op(emulators, tmp_path, dtype, heated, int8, tile, n,
                                        agents):
    J, x, m = problem(n, agents, dtype)
    start, steps = 5, 60
    # The launcher's default flip threshold, 1 / (2 * tile): corrections and recomputes.
    got = run_small(emulators["small_run"], tmp_path, J, x, m, start, steps, tile, heated, True,
                    int8, 0.5 / tile)
    run_cpu_op(J, x, m, start, steps, heated, True, int8)
    assert torch.equal(got[0], x)
    assert torch.equal(got[1], m)


@pytest.mark.parametrize("fraction", [0.0, 1.0])  # always recompute, never
def test_small_kernel_flip_threshold_changes_nothing(emulators, tmp_path, fraction):
    J, x, m = problem(100, 9, torch.float32)
    got = run_small(emulators["small_run"], tmp_path, J, x.clone(), m.clone(), 0, 80, 8, False,
                    True, False, fraction)
    run_cpu_op(J, x, m, 0, 80, False, True, False)
    assert torch.equal(got[0], x)
    assert torch.equal(got[1], m)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heated", [False, True])
@pytest.mark.parametrize("tile", [2, 8])
@pytest.mark.parametrize("n,agents", SMALL_CASES)
def test_small_kernel_bsb_close_to_cpu_op(emulators, tmp_path, dtype, heated, tile, n, agents):
    J, x, m = problem(n, agents, dtype)
    J = J / n ** 0.5
    start, steps = 5, 150 if dtype == torch.float64 else 30  # float32 drifts apart
    got = run_small(emulators["small_run"], tmp_path, J, x, m, start, steps, tile, heated, False,
                    False, 0.0)
    run_cpu_op(J, x, m, start, steps, heated, False, False)
    torch.testing.assert_close(got[0], x, **TOL[dtype])
    torch.testing.assert_close(got[1], m, **TOL[dtype])
