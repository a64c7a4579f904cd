#pragma once
// Launch helpers shared by the CUDA kernels of every algorithm: the block size of the
// elementwise grid-stride kernels and the grid that covers a tensor with them.

#include <ATen/cuda/CUDAContext.h>

#include <algorithm>
#include <cstdint>

namespace sb_native {
namespace common {
namespace cuda {

constexpr int kThreads = 256;

// Grid for a grid-stride loop over numel elements: enough blocks to fill every SM
// several times over, no more, so huge states reuse threads instead of launching
// millions of blocks.
inline unsigned int grid_for(int64_t numel) {
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t wanted = (numel + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(wanted, sms * 16)));
}

}  // namespace cuda
}  // namespace common
}  // namespace sb_native
