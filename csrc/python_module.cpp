// Python module entry for `sb_native._C`: importing it runs the static registrations of the
// ops (TORCH_LIBRARY_FRAGMENT and TORCH_LIBRARY_IMPL in csrc/sb and csrc/qimad), and it holds
// the one Python-facing class, QimadSession (csrc/qimad/python/qimad_session.cpp). Kept apart
// from the op sources so the CMake (libtorch, no Python) build reuses every other source
// unchanged.

#include <torch/extension.h>

namespace sb_native {
namespace qimad {
namespace python {
void register_qimad_session(pybind11::module_& m);
}  // namespace python
}  // namespace qimad
}  // namespace sb_native

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { sb_native::qimad::python::register_qimad_session(m); }
