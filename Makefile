# Two commands do all the set-up on a fresh machine (Python 3.11, a C++ compiler, pip):
#   make run    create .venv, install pinned dependencies, build the extension, run the demo
#   make test   the same set-up plus test dependencies, then the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SOURCES := $(shell find csrc -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh') setup.py pyproject.toml

.PHONY: run test lint build bench cmake-check cuda-check emulation-asan sanitize wheel-check cuda-wheel-check mutations clean

$(VENV)/.deps: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements.txt
	touch $@

$(VENV)/.test-deps: $(VENV)/.deps requirements-test.txt
	$(PIP) install -q -r requirements-test.txt
	touch $@

# Rebuilds the extension only when a C++/CUDA source or the build files changed.
$(VENV)/.built: $(VENV)/.deps $(SOURCES)
	$(PIP) install -q --no-build-isolation --no-deps -e .
	touch $@

build: $(VENV)/.built

run: build
	$(PY) -m sb_native demo

# The docstrings' examples run too (--doctest-modules over the package).
test: build $(VENV)/.test-deps
	$(PY) -m pytest -q --durations=15 --doctest-modules sb_native tests

# Lint: ruff, then mypy on the package, each with its configuration in pyproject.toml
# (both pinned in requirements-test.txt).
lint: $(VENV)/.test-deps
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: build $(VENV)/.test-deps
	$(PY) bench/sb/bench_sb.py

# Configures and builds the libtorch (CMake) target so it cannot rot.
cmake-check: $(VENV)/.deps
	mkdir -p build
	cmake -S . -B build/cmake -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" > build/cmake.log 2>&1 || (cat build/cmake.log; exit 1)
	cmake --build build/cmake -j 2 >> build/cmake.log 2>&1 || (cat build/cmake.log; exit 1)
	@echo "cmake-check: built $$(ls build/cmake/libsb_native_ops.so)"

# Builds the extension with its CUDA kernels in .venv-cuda (torch cu130, out of place in
# build/cuda) and checks every op registers a CUDA kernel; needs nvcc, not a GPU.
cuda-check:
	bash scripts/cuda_check.sh

# The CUDA emulation tests again under AddressSanitizer (tests/emulation, the asan variant).
emulation-asan: build $(VENV)/.test-deps
	bash scripts/emulation_asan.sh

# The release sdist and wheel in dist/ (portable, no debug information), installed into a
# fresh venv and run from outside the source tree.
wheel-check: $(VENV)/.test-deps
	bash scripts/wheel_check.sh

# The same for the CUDA wheel (nvcc, torch 2.14.1 cu130 in its own venv; no GPU needed).
cuda-wheel-check: $(VENV)/.test-deps
	WHEEL_CUDA=1 bash scripts/wheel_check.sh

# The native ops under AddressSanitizer and UndefinedBehaviorSanitizer: their own build in
# build/sanitize, then the native-op and fuzzing tests against it (scripts/sanitize.sh).
sanitize: $(VENV)/.test-deps
	bash scripts/sanitize.sh

# On demand (about 20 minutes): does every deliberate kernel bug fail the emulation tests?
mutations: build $(VENV)/.test-deps
	$(PY) scripts/emulation_mutations.py --record tests/emulation/MUTATIONS.md

clean:
	rm -rf build dist $(VENV) .venv-cuda sb_native/_C*.so *.egg-info
