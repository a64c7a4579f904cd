#!/usr/bin/env bash
# Compile-and-link check of the CUDA kernels on a machine without a GPU (`make cuda-check`).
# Builds the whole extension with CUDA (FORCE_CUDA=1) in its own venv against torch 2.14.1
# (a cu130 build matching nvcc 13.0, with the CUDA headers the CPU torch lacks), out of
# place so the CPU build's sb_native/_C*.so is never touched, then imports the result and
# asserts that every op (SB and QIMADTorch) has a CUDA kernel registered and
# backend_info()["cuda"] is true.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${CUDA_VENV:-$ROOT/.venv-cuda}
OUT=${CUDA_BUILD_DIR:-$ROOT/build/cuda}
PY=$VENV/bin/python
PINS=(torch==2.14.1 numpy==2.4.6 setuptools==84.0.0 wheel==0.48.0 ninja==1.13.2 sympy==1.14.0
      tqdm==4.70.1)

command -v nvcc >/dev/null || { echo "cuda-check: nvcc not found" >&2; exit 1; }
start=$SECONDS

if [[ ! -f $VENV/.deps || "$(cat "$VENV/.deps")" != "${PINS[*]}" ]]; then
  test -x "$PY" || python3 -m venv "$VENV"
  "$PY" -m pip install -q "${PINS[@]}"
  echo "${PINS[*]}" > "$VENV/.deps"
fi
echo "cuda-check: venv ready ($((SECONDS - start)) s)"

# The nvcc on the PATH may be a wrapper script, so ask nvcc for its own toolkit root
# rather than letting torch guess it from the script's location.
if [[ -z ${CUDA_HOME:-} ]]; then
  CUDA_HOME=$(realpath "$(nvcc --dryrun -c -x cu /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)")
fi
export CUDA_HOME
# cuBLAS / cuSPARSE headers included by ATen's CUDA headers ship in the nvidia wheels.
NV_INCLUDE=$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "include"))')
export CPATH=$NV_INCLUDE${CPATH:+:$CPATH}
export FORCE_CUDA=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
# Two compile jobs: this machine has two cores and each nvcc job needs ~1-2 GiB.
export MAX_JOBS=${MAX_JOBS:-2}

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
"$PY" - <<'EOF'
import torch
import sb_native
from sb_native import _ops

info = sb_native.backend_info()
assert info["native"], f"extension failed to load: {info['reason']}"
names = _ops.OP_NAMES + _ops.QIMAD_OP_NAMES  # the SB ops and QIMADTorch's
missing = [name for name in names
           if not torch._C._dispatch_has_kernel_for_dispatch_key(f"sb_native::{name}", "CUDA")]
assert not missing, f"ops without a CUDA kernel: {missing}"
assert info["cuda"], info
print(f"cuda-check: torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"CUDA kernels registered for {', '.join(names)}; GPU present: {info['cuda_device']}")
EOF
echo "cuda-check: passed in $((SECONDS - start)) s"
