#pragma once
// Stand-in for c10's device guard under the emulation: there is one (emulated) device.

#include <c10/core/Device.h>

namespace c10 {
namespace cuda {

struct CUDAGuard {
  explicit CUDAGuard(c10::Device) {}
};

}  // namespace cuda
}  // namespace c10

namespace at {
namespace cuda {
using c10::cuda::CUDAGuard;
}  // namespace cuda
}  // namespace at
