#!/usr/bin/env bash
# The CUDA emulation tests under AddressSanitizer (`make emulation-asan`): the asan variant
# of tests/emulation, whose kernels' global and shared-memory accesses ASan bounds-checks, in
# a Python that preloads libasan and libstdc++ (ASan must resolve libstdc++'s exception
# functions when it starts; Python itself does not link libstdc++). pytest leaves stderr
# alone (--capture=sys), so a report ASan prints before it aborts is seen. Extra arguments
# go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX:-c++}
export SBN_EMULATION=asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
ASAN_LIB=$("$CXX" -print-file-name=libasan.so)
if [[ ! -f $ASAN_LIB ]]; then  # a compiler without the ASan runtime: say so, fail nothing
  echo "emulation-asan: skipped ($CXX has no libasan.so)"
  exit 0
fi
LD_PRELOAD="$ASAN_LIB $("$CXX" -print-file-name=libstdc++.so)"
export LD_PRELOAD
exec .venv/bin/python -m pytest -q --capture=sys tests/sb/test_cuda_emulation.py \
  tests/sb/test_cuda_emulation_rows.py tests/qimad/test_cuda_emulation.py "$@"
