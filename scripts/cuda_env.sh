# Sourced by scripts/cuda_check.sh and scripts/wheel_check.sh (WHEEL_CUDA=1): the CUDA
# build's venv (torch 2.14.1, a cu130 build matching nvcc 13.0, with the CUDA headers the
# CPU torch lacks) and the environment nvcc and torch's build need. Sets VENV, PY, PINS,
# NV_ROOT and CUDA_RUN_PINS (what a venv running the CUDA build needs at run time).
VENV=${CUDA_VENV:-$ROOT/.venv-cuda}
PY=$VENV/bin/python
CUDA_RUN_PINS=(torch==2.14.1 numpy==2.4.6 sympy==1.14.0 tqdm==4.70.1)
PINS=("${CUDA_RUN_PINS[@]}" setuptools==84.0.0 wheel==0.48.0 ninja==1.13.2 build==1.6.1)

command -v nvcc >/dev/null || { echo "nvcc not found" >&2; exit 1; }
if [[ ! -f $VENV/.deps || "$(cat "$VENV/.deps")" != "${PINS[*]}" ]]; then
  test -x "$PY" || python3 -m venv "$VENV"
  "$PY" -m pip install -q "${PINS[@]}"
  echo "${PINS[*]}" > "$VENV/.deps"
fi

# The nvcc on the PATH may be a wrapper script, so ask nvcc for its own toolkit root
# rather than letting torch guess it from the script's location.
if [[ -z ${CUDA_HOME:-} ]]; then
  CUDA_HOME=$(realpath "$(nvcc --dryrun -c -x cu /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)")
fi
export CUDA_HOME
# cuBLAS / cuSPARSE headers included by ATen's CUDA headers ship in the nvidia wheels.
NV_ROOT=$("$PY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
export CPATH=$NV_ROOT/include${CPATH:+:$CPATH}
export FORCE_CUDA=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
# Two compile jobs: this machine has two cores and each nvcc job needs ~1-2 GiB.
export MAX_JOBS=${MAX_JOBS:-2}
