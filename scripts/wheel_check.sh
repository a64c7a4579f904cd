#!/usr/bin/env bash
# `make wheel-check`: builds the sdist, then the wheel from the sdist (python -m build's
# default, so a source the sdist forgot fails the build), checks the wheel (extension size,
# py.typed, the version), installs it into a fresh venv with the pinned run-time
# requirements and runs `sb-native --version`, `sb-native info` and a small solve from
# outside the source tree. The wheel is portable (SB_NATIVE_PORTABLE=1: generic x86-64, no
# -march=native), carries no debug information and is repaired into a manylinux wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
OUT=${WHEEL_DIR:-$ROOT/dist}
start=$SECONDS

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
# A manylinux wheel (auditwheel, pinned in requirements-test.txt): the OpenMP runtime is
# bundled; torch's libraries are not (the wheel requires the torch it was built with, which
# loads them first). The tag is the oldest glibc the extension's symbols allow on the build
# machine; a manylinux container would give an older one (README, "Install").
PATH="$(dirname "$PY"):$PATH" "$PY" -m auditwheel repair --plat "${MANYLINUX:-manylinux_2_34_x86_64}" \
  --exclude libtorch.so --exclude libtorch_cpu.so --exclude libtorch_python.so \
  --exclude libc10.so -w "$OUT" "$built" > "$OUT/repair.log" 2>&1 \
  || { tail -n 20 "$OUT/repair.log"; exit 1; }
rm "$built"
wheel=$(ls "$OUT"/sb_native-"$version"-*manylinux*.whl)
echo "wheel-check: repaired as $(basename "$wheel")"

# The release extension stays small: no debug information (setup.py; SB_NATIVE_DEBUG=1
# keeps it for a debug build).
"$PY" - "$wheel" <<'PYEOF'
import sys
import zipfile

names = {info.filename: info.file_size for info in zipfile.ZipFile(sys.argv[1]).infolist()}
extension = [name for name in names if name.startswith("sb_native/_C") and name.endswith(".so")]
assert len(extension) == 1, f"expected one extension in the wheel, found {extension}"
size = names[extension[0]]
assert size < 3 * 2**20, f"{extension[0]} is {size / 2**20:.1f} MiB (limit 3 MiB)"
assert "sb_native/py.typed" in names, "the wheel lacks sb_native/py.typed"
print(f"wheel-check: {extension[0]} {size / 2**20:.2f} MiB, py.typed present")
PYEOF

VENV=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$VENV")"' EXIT
python3 -m venv "$VENV"
# pip's own notices go to a log, shown if an install fails.
{ "$VENV/bin/python" -m pip install -q -r requirements.txt \
  && "$VENV/bin/python" -m pip install -q "$wheel"; } > "$OUT/install.log" 2>&1 \
  || { tail -n 40 "$OUT/install.log"; exit 1; }  # the wheel's dependencies: pinned just above
echo "wheel-check: installed into a fresh venv ($((SECONDS - start)) s)"

cd "$(dirname "$VENV")"
test "$("$VENV/bin/sb-native" --version)" = "sb-native $version"
"$VENV/bin/sb-native" info
"$VENV/bin/python" - <<'PYEOF'
import sb_native

assert sb_native.backend_info()["native"], sb_native.backend_info()["reason"]
assert "site-packages" in sb_native.__file__, f"imported from the source tree: {sb_native.__file__}"
PYEOF
# A 4-cycle with one chord: the maximum cut is 4.
printf '4 5\n1 2 1\n2 3 1\n3 4 1\n4 1 1\n1 3 1\n' > square.txt
"$VENV/bin/sb-native" solve square.txt --seed 0 --quiet --json > result.json
"$VENV/bin/python" -c 'import json; r = json.load(open("result.json")); assert r["cut"] == 4, r; print("wheel-check: solve", r["cut"], r["backend"])'
echo "wheel-check: passed in $((SECONDS - start)) s"
