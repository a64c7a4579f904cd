import contextlib
import pathlib
import warnings

import pytest
import torch

import sb_native

# torch's own notices on building sparse tensors in tests; the library silences its own.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device")),
]
NATIVE_ONLY = pytest.mark.skipif(not sb_native.backend_info()["native"],
                                 reason="native extension not built")
SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def one_thread():
    """For modules of tiny models: a second OpenMP/BLAS thread only adds wake-up latency,
    which on a loaded 2-core machine reached 10 ms per step."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture
def peer():
    """The simulated-bifurcation 2.0.0 package, the oracle for the compatibility promise."""
    return pytest.importorskip("simulated_bifurcation")


@contextlib.contextmanager
def default_dtype(dtype):
    """simulated-bifurcation 2.0.0 samples spins in the *default* dtype, so in float64 it
    only runs correctly when float64 is the default (otherwise its early-stopping window
    fails on a dtype mismatch and its run silently stops at the first sampling). The
    oracle runs under this context so float64 comparisons compare against a working peer."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def run_seeded(fn, seed, *args, **kwargs):
    torch.manual_seed(seed)
    return fn(*args, **kwargs)
