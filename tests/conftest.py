"""Fixtures shared by every test area; plain helpers live in tests/helpers.py."""

import os
import sys
import warnings

# make sanitize (scripts/sanitize.sh): its build of the package goes ahead of the repository
# root, which pytest puts first on the path, before anything imports sb_native.
if os.environ.get("SBN_SANITIZED"):
    sys.path.insert(0, os.path.abspath(os.environ["SBN_SANITIZED"]))

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.helpers import DEVICES, load_peer  # noqa: E402

# torch's own notices on building sparse tensors in tests; the library silences its own.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


@pytest.fixture
def one_thread():
    """For modules of tiny models: a second OpenMP/BLAS thread only adds wake-up latency
    on a loaded 2-core machine (bench/RESULTS.md)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture
def peer():
    """The simulated-bifurcation 2.0.0 package, the oracle for the compatibility promise
    (absent: the test fails under CI, skips elsewhere)."""
    return load_peer()


@pytest.fixture(scope="session")
def emulated():
    """``torch.ops.sb_native_emulated``: the CUDA launchers and kernels run on the CPU
    (tests/emulation), built once per session; skips where it cannot be built."""
    import sb_native
    from tests import emulation
    if not sb_native.backend_info()["native"]:
        pytest.skip("native extension not built (the emulated ops are checked against it)")
    missing = emulation.available()
    if missing:
        pytest.skip(missing)
    return emulation.load()
