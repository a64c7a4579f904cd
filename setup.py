"""Builds the sb_native._C extension: CPU kernels always, CUDA kernels when the installed
torch has CUDA and nvcc is found, or when FORCE_CUDA=1."""

import glob
import os
import shutil

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def with_cuda() -> bool:
    if os.environ.get("FORCE_CUDA", "0") == "1":
        return True
    return (torch.version.cuda is not None and CUDA_HOME is not None
            and shutil.which("nvcc") is not None)


def extension():
    # Every source under csrc/, whatever its folder (csrc/common, csrc/sb, csrc/qimad, ...):
    # the schemas (TORCH_LIBRARY_FRAGMENT) and the kernels (TORCH_LIBRARY_IMPL) register
    # themselves, so a new file needs no entry here. The CUDA emulation (an emulation/ folder)
    # is built by the tests only (tests/emulation).
    def sources(pattern):
        found = glob.glob(os.path.join("csrc", "**", pattern), recursive=True)
        return sorted(f for f in found if "emulation" not in f.split(os.sep))

    cpu_sources = sources("*.cpp")
    cuda_sources = sources("*.cu")
    # No -std here: BuildExtension adds the standard the installed torch's headers need
    # (C++20; torch 2.14's headers no longer compile as C++17).
    # -ffp-contract=off: no FMA contraction, so the per-element math rounds exactly as the
    # pure-torch reference and the CUDA build (the parity tests compare them bitwise).
    # -fno-trapping-math (as torch's own build): lets the int-to-float field conversion and
    # the wall selects vectorise; rounding is unchanged.
    cxx = ["-O3", "-ffp-contract=off", "-fno-trapping-math"]
    # Release builds carry no debug information: Python's own flags add -g, which made the
    # extension 36 MB (1.1 MB of code) and doubled each file's compile time (bench/RESULTS.md,
    # "Build"). SB_NATIVE_DEBUG=1 keeps it.
    debug = os.environ.get("SB_NATIVE_DEBUG", "0") == "1"
    cxx.append("-g" if debug else "-g0")
    # The extension is always compiled on the machine that runs it, so it may use that
    # CPU's vector width (AVX2/AVX-512); SB_NATIVE_PORTABLE=1 builds for generic x86-64.
    if os.environ.get("SB_NATIVE_PORTABLE", "0") != "1":
        cxx.append("-march=native")
    link = []
    if torch.backends.openmp.is_available():
        cxx.append("-fopenmp")
        link.append("-fopenmp")
    cuda = with_cuda() and bool(cuda_sources)
    if cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
        ext = CUDAExtension(
            "sb_native._C",
            cpu_sources + cuda_sources,
            # No fast math and no FMA contraction: the kernels are memory-bound, and plain
            # IEEE multiply-then-add keeps the shared per-element math (csrc/sb/math.h,
            # csrc/qimad/math.h) bit-identical to the CPU build, which the parity tests rely on.
            extra_compile_args={"cxx": cxx,
                                "nvcc": ["-O3", "--fmad=false"] + (["-g"] if debug else [])},
            extra_link_args=link,
        )
    else:
        ext = CppExtension("sb_native._C", cpu_sources, extra_compile_args={"cxx": cxx},
                           extra_link_args=link)
    print(
        f"sb_native build: torch {torch.__version__}, CUDA kernels: {cuda}"
        f" (torch CUDA {torch.version.cuda}, CUDA_HOME {CUDA_HOME},"
        f" arch {os.environ.get('TORCH_CUDA_ARCH_LIST', '-') if cuda else '-'}),"
        f" OpenMP: {torch.backends.openmp.is_available()}, flags: {' '.join(cxx)}",
        flush=True,
    )
    return ext


def requirements():
    # The extension is built against this torch's C++ ABI, which changes between releases
    # (another torch cannot load it: the package would fall back to the pure-torch ops), so
    # an installed build asks for the same torch release, as torchvision's wheels do.
    return [f"torch=={torch.__version__.split('+')[0]}", "numpy", "sympy", "tqdm"]


setup(
    install_requires=requirements(),
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
