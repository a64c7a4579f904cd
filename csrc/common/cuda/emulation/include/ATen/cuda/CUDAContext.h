#pragma once
// Stand-in for ATen's CUDA context under the emulation (../../../emulator.h): the current
// stream is a null handle, the device properties those of a small emulated GPU whose SM
// count SBN_EMULATED_SMS sets (default 2: grid-stride loops then take several turns).

#include <c10/cuda/CUDAGuard.h>

#include <cstdlib>

#include "../../../emulator.h"

namespace at {
namespace cuda {

struct CUDAStream {
  operator cudaStream_t() const { return nullptr; }
};

inline CUDAStream getCurrentCUDAStream() { return {}; }

inline const cudaDeviceProp* getCurrentDeviceProperties() {
  static cudaDeviceProp props = [] {
    const char* sms = std::getenv("SBN_EMULATED_SMS");
    return cudaDeviceProp{sms != nullptr ? std::atoi(sms) : 2, 48 * 1024};
  }();
  return &props;
}

}  // namespace cuda
}  // namespace at
