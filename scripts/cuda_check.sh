#!/usr/bin/env bash
# Compile-and-link check of the CUDA kernels on a machine without a GPU (`make cuda-check`).
# Builds the whole extension with CUDA (FORCE_CUDA=1) in its own venv against torch 2.14.1
# (scripts/cuda_env.sh), out of place so the CPU build's sb_native/_C*.so is never touched,
# then imports the result and asserts that every op (SB and QIMADTorch) has a CUDA kernel
# registered and backend_info()["cuda"] is true. Then the same for the libtorch (CMake) library built with
# -DSB_NATIVE_CUDA=ON against the same torch (build/cuda/cmake): configured, built, loaded.
# SKIP_CMAKE=1 leaves that part out; CMAKE_CONFIGURE_ONLY=1 only configures the library (CI:
# building it compiles every source with nvcc a second time, about 6 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${CUDA_BUILD_DIR:-$ROOT/build/cuda}
start=$SECONDS
source scripts/cuda_env.sh
echo "cuda-check: venv ready ($((SECONDS - start)) s)"

mkdir -p "$OUT"
"$PY" setup.py -q build_ext --build-lib "$OUT/lib" --build-temp "$OUT/tmp" > "$OUT/build.log" 2>&1 \
  || { tail -n 80 "$OUT/build.log"; exit 1; }
grep -m1 "sb_native build:" "$OUT/build.log" || true
echo "cuda-check: built ($((SECONDS - start)) s)"

# Import from a copy of the package holding the CUDA build, never from the source tree.
rm -rf "$OUT/pkg"
mkdir -p "$OUT/pkg"
cp -r sb_native "$OUT/pkg/"
rm -f "$OUT"/pkg/sb_native/_C*.so
find "$OUT/pkg" -name __pycache__ -prune -exec rm -rf {} +
cp "$OUT"/lib/sb_native/_C*.so "$OUT/pkg/sb_native/"
cd "$OUT/pkg"
"$PY" - "$OUT/op_names.txt" <<'EOF'
import sys

import torch
import sb_native
from sb_native import _ops

info = sb_native.backend_info()
assert info["native"], f"extension failed to load: {info['reason']}"
# Every op, the SB ones and QIMADTorch's (op_names() in newer Python layers).
names = _ops.op_names() if hasattr(_ops, "op_names") else _ops.OP_NAMES + _ops.QIMAD_OP_NAMES
missing = [name for name in names
           if not torch._C._dispatch_has_kernel_for_dispatch_key(f"sb_native::{name}", "CUDA")]
assert not missing, f"ops without a CUDA kernel: {missing}"
assert info["cuda"], info
print(f"cuda-check: torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"CUDA kernels registered for {', '.join(names)}; GPU present: {info['cuda_device']}")
with open(sys.argv[1], "w") as out:  # for the CMake library's check below
    out.write("\n".join(names))
EOF
echo "cuda-check: extension checked ($((SECONDS - start)) s)"

if [[ ${SKIP_CMAKE:-0} != 1 ]]; then
  cd "$ROOT"
  # CMake spells the architectures without the dot: 8.0;9.0 -> 80;90.
  ARCHS=${TORCH_CUDA_ARCH_LIST//+PTX/}
  ARCHS=${ARCHS// /;}
  TORCH_CMAKE=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  CMAKE_ARGS=(-DSB_NATIVE_CUDA=ON -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc"
              -DCMAKE_CUDA_ARCHITECTURES="${ARCHS//./}" -DCMAKE_PREFIX_PATH="$TORCH_CMAKE")
  # torch's CMake config links nvrtc, which this toolkit leaves to the nvidia wheels, where
  # its FindCUDA does not look.
  if [[ ! -e $CUDA_HOME/lib64/libnvrtc.so ]]; then
    NVRTC=$(find "$NV_ROOT/lib" -name 'libnvrtc.so.*' ! -name '*builtins*' ! -name '*alt*' \
            | head -1)
    CMAKE_ARGS+=(-DCUDA_nvrtc_LIBRARY="$NVRTC")
  fi
  cmake -S . -B "$OUT/cmake" "${CMAKE_ARGS[@]}" > "$OUT/cmake.log" 2>&1 \
    || { tail -n 80 "$OUT/cmake.log"; exit 1; }
  grep -m1 "sb_native: " "$OUT/cmake.log" || true
  if [[ ${CMAKE_CONFIGURE_ONLY:-0} == 1 ]]; then
    echo "cuda-check: passed in $((SECONDS - start)) s (CMake library configured, not built)"
    exit 0
  fi
  cmake --build "$OUT/cmake" -j "$MAX_JOBS" >> "$OUT/cmake.log" 2>&1 \
    || { tail -n 80 "$OUT/cmake.log"; exit 1; }
  echo "cuda-check: CMake library built ($((SECONDS - start)) s)"
  # A process of its own: the extension above registers the same ops.
  "$PY" - "$OUT/cmake/libsb_native_ops.so" "$OUT/op_names.txt" <<'EOF'
import sys

import torch

torch.ops.load_library(sys.argv[1])
names = open(sys.argv[2]).read().split()
missing = [name for name in names
           if not torch._C._dispatch_has_kernel_for_dispatch_key(f"sb_native::{name}", "CUDA")]
assert not missing, f"ops without a CUDA kernel in {sys.argv[1]}: {missing}"
print(f"cuda-check: {sys.argv[1]} registers CUDA kernels for the same {len(names)} ops")
EOF
fi
echo "cuda-check: passed in $((SECONDS - start)) s"
