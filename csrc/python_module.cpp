// Python module entry for `sb_native._C`: importing it runs the static TORCH_LIBRARY
// registrations, and it holds the one Python-facing class, QimadSession
// (csrc/python/qimad_session.cpp). Kept apart from ops.cpp so the CMake (libtorch, no Python)
// build reuses every other source unchanged.

#include <torch/extension.h>

namespace sb_native {
void register_qimad_session(pybind11::module_& m);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { sb_native::register_qimad_session(m); }
