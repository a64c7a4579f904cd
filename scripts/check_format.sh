#!/usr/bin/env bash
# Checks that the C++/CUDA sources under csrc/ follow .clang-format, without changing them:
# clang-format --dry-run --Werror on every .h, .cpp, .cuh and .cu file. Exits 0 with a
# note when clang-format is not installed (it is not a build dependency).
# To apply the style to a file: clang-format -i FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "check-format: skipped (clang-format not installed)"
  exit 0
fi
mapfile -t files < <(find csrc -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.cuh' \
  -o -name '*.cu' \) | sort)
clang-format --style=file --dry-run --Werror "${files[@]}"
echo "check-format: ${#files[@]} files follow .clang-format ($(clang-format --version))"
