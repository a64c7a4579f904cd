// Python module entry for `sb_native._C`: importing it runs the static TORCH_LIBRARY
// registrations. Kept apart from ops.cpp so the CMake (libtorch, no Python) build reuses
// every other source unchanged.

#include <Python.h>

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
