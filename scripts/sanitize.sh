#!/usr/bin/env bash
# The native ops under AddressSanitizer and UndefinedBehaviorSanitizer (`make sanitize`):
# the extension's CPU build with SB_NATIVE_SANITIZE=1 (setup.py) goes to its own folder,
# build/sanitize/lib, beside a copy of the Python package, so the working tree's own build
# is untouched; the native-op tests and the fuzzing tests then run against it, in a Python
# that preloads the sanitizers' runtimes (Python itself is not instrumented; libstdc++ first
# for ASan's exception interceptors, as scripts/emulation_asan.sh). A report aborts the run
# (halt_on_error), so any finding fails CI. Leaks are not checked: CPython and torch keep
# allocations to exit by design. Extra arguments go to pytest (default: SANITIZE_TESTS below).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX:-c++}
PY=${PY:-.venv/bin/python}
ASAN_LIB=$("$CXX" -print-file-name=libasan.so)
UBSAN_LIB=$("$CXX" -print-file-name=libubsan.so)
if [[ ! -f $ASAN_LIB || ! -f $UBSAN_LIB ]]; then  # no sanitizer runtimes: say so, fail nothing
  echo "sanitize: skipped ($CXX has no libasan.so or libubsan.so)"
  exit 0
fi
OUT=build/sanitize
start=$(date +%s)
SB_NATIVE_SANITIZE=1 "$PY" setup.py -q build_ext --build-lib "$OUT/lib" \
  --build-temp "$OUT/temp" > "$OUT.log" 2>&1 || { cat "$OUT.log"; exit 1; }
# The package's Python files beside the sanitized _C (rsync -a keeps only what changed).
mkdir -p "$OUT/lib/sb_native"
(cd sb_native && find . -name '*.py' -o -name 'py.typed') | while read -r f; do
  mkdir -p "$OUT/lib/sb_native/$(dirname "$f")"
  cp -p "sb_native/$f" "$OUT/lib/sb_native/$f"
done
echo "sanitize: built in $(( $(date +%s) - start )) s"
SANITIZE_TESTS=(tests/sb/test_ops.py tests/sb/test_polish.py tests/qimad/test_qimad_ops.py
  tests/qimad/test_qimad_step.py tests/qimad/test_qimad_options.py
  tests/interfaces/test_op_table.py tests/sb/test_properties.py tests/sb/test_sparse.py
  tests/sb/test_batched.py tests/sb/test_threads.py tests/sb/test_op_fuzz.py
  tests/sb/test_op_layout.py tests/qimad/test_qimad_op_fuzz.py tests/qimad/test_qimad_shard.py
  tests/sb/test_sanitized.py
  # The rows field's op cases (its spawned-ranks case runs in the suite).
  tests/sb/test_rows_field.py::test_incremental_field_equals_the_whole_product
  tests/sb/test_rows_field.py::test_a_finish_without_previous_takes_the_whole_product_into_field
  tests/sb/test_rows_field.py::test_field_opcheck_and_errors)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export SBN_SANITIZED="$OUT/lib"
LD_PRELOAD="$ASAN_LIB $UBSAN_LIB $("$CXX" -print-file-name=libstdc++.so)" \
  PYTHONPATH="$OUT/lib${PYTHONPATH:+:$PYTHONPATH}" \
  "$PY" -m pytest -q -p no:cacheprovider --capture=sys "${@:-${SANITIZE_TESTS[@]}}"
