"""The CUDA sources of csrc run on the CPU: build and load the emulation library.

Every CUDA translation unit with a kernel is compiled as C++ with SBN_CUDA_EMULATION
(csrc/common/cuda/emulation/emulator.h: each CUDA thread a fiber, barriers and warp exchanges
scheduled deterministically) and its launchers register under ``torch.ops.sb_native_emulated``
for CPU tensors, so a test calls the CUDA op from its entry, launch arithmetic included, and
compares it with sb_native's CPU op.

Variants:
  ``shared`` (the default, run by ``make test``): GCC's -fsanitize=thread instrumentation
      with our own hooks (shadow.cpp), which check every shared-memory access for races,
      reads before writes and overruns.
  ``asan``: AddressSanitizer, for global-memory bounds; the process must preload libasan
      (``scripts/emulation_asan.sh`` runs the emulation tests so).
"""

import os
import pathlib
import shutil

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
EMULATION = ROOT / "csrc" / "common" / "cuda" / "emulation"
SOURCES = [HERE / name for name in (
    "sb_kernels.cpp", "qimad_kernels.cpp", "probes.cpp", "shadow.cpp")]
# The CPU ops' flags that decide rounding (setup.py), so dSB and int8 records can be
# bit-identical; -O1 keeps the build short.
FLAGS = ["-std=c++20", "-O1", "-ffp-contract=off", "-fno-trapping-math", "-DSBN_CUDA_EMULATION",
         "-Wno-unknown-pragmas"]
VARIANTS = {
    "shared": (["-DSBN_EMULATION_SHARED_CHECKS", "-fsanitize=thread",
                "--param=tsan-instrument-func-entry-exit=0"], []),
    "asan": (["-fsanitize=address", "-fno-omit-frame-pointer"], ["-fsanitize=address"]),
}


def variant():
    """The variant this process runs: SBN_EMULATION (default ``shared``)."""
    return os.environ.get("SBN_EMULATION", "shared")


def available():
    """Why the emulation cannot be built here, or None."""
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        return "no C++ compiler"
    if shutil.which("ninja") is None and not _venv_ninja().exists():
        return "ninja is needed to build the emulation"
    return None


def _venv_ninja():
    return pathlib.Path(os.sys.executable).parent / "ninja"


def load(name=None):
    """Builds (incrementally, under build/emulation/NAME) and loads the emulation library;
    returns ``torch.ops.sb_native_emulated``."""
    from torch.utils import cpp_extension

    name = name or variant()
    cflags, ldflags = VARIANTS[name]
    if _venv_ninja().exists():
        os.environ["PATH"] = f"{_venv_ninja().parent}{os.pathsep}{os.environ['PATH']}"
    directory = ROOT / "build" / "emulation" / name
    directory.mkdir(parents=True, exist_ok=True)
    cpp_extension.load(
        name=f"sb_native_emulated_{name}", sources=[str(s) for s in SOURCES],
        extra_cflags=FLAGS + cflags, extra_ldflags=ldflags,
        extra_include_paths=[str(EMULATION / "include"), str(ROOT / "csrc")],
        build_directory=str(directory), is_python_module=False, with_cuda=False,
        verbose=False)
    return torch.ops.sb_native_emulated
