#pragma once
// Included first by the emulation's unity sources: the schemas and the CUDA launchers of
// csrc register under the library sb_native_emulated and the CPU dispatch key, so the
// emulated kernels take CPU tensors and sit beside sb_native's own ops in one process.

#include <torch/library.h>

#undef TORCH_LIBRARY_FRAGMENT
#define TORCH_LIBRARY_FRAGMENT(ns, m) _TORCH_LIBRARY_FRAGMENT(sb_native_emulated, m, C10_UID)
#undef TORCH_LIBRARY_IMPL
#define TORCH_LIBRARY_IMPL(ns, k, m) _TORCH_LIBRARY_IMPL(sb_native_emulated, CPU, m, C10_UID)
