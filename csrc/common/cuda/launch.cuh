#pragma once
// Launch helpers shared by the CUDA kernels of every algorithm: the block size of the
// elementwise grid-stride kernels, the grid that covers a tensor with them, and the one
// place kernels are launched from. Built with SBN_CUDA_EMULATION (tests only), the same
// launchers run every grid on the CPU under emulation/emulator.h.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(SBN_CUDA_EMULATION)
#include "emulation/emulator.h"
#endif

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

// Launches kernel(args...) on grid x block with shared_bytes of dynamic shared memory on
// stream and checks the launch. Every kernel goes through here, so the emulation runs the
// launchers' own grid, block and shared-memory arithmetic.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
            cudaStream_t stream, const Args&... args) {
#if defined(SBN_CUDA_EMULATION)
  (void)stream;
  emulation::launch(grid, block, shared_bytes, [&] { kernel(args...); });
#else
  kernel<<<grid, block, shared_bytes, stream>>>(args...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
}

// A static shared array or variable: SBN_SHARED(int, counts, [32]) declares
// `__shared__ int counts[32]`, SBN_SHARED(float, total, ) `__shared__ float total`; under the
// emulation, storage the emulator allocates per launch and checks.
#if defined(SBN_CUDA_EMULATION)
#define SBN_SHARED(type, name, dims)                 \
  using name##_shared_type = type dims;              \
  static ::emulation::SharedSlot name##_shared_slot; \
  name##_shared_type& name =                         \
      ::emulation::static_shared<name##_shared_type>(name##_shared_slot, #name)
#else
#define SBN_SHARED(type, name, dims) __shared__ type name dims
#endif

// The block's dynamic shared memory (the launch's shared_bytes), 16-byte aligned.
template <typename T>
__device__ __forceinline__ T* dynamic_shared() {
#if defined(SBN_CUDA_EMULATION)
  return reinterpret_cast<T*>(emulation::dynamic_shared_memory());
#else
  extern __shared__ __align__(16) unsigned char dynamic_shared_bytes[];
  return reinterpret_cast<T*>(dynamic_shared_bytes);
#endif
}

// values as an int64 tensor on device, copied from pinned memory without blocking the
// host; the caching host allocator keeps the buffer alive until the copy has run.
inline at::Tensor upload(const std::vector<int64_t>& values, const at::Device& device) {
  const auto n = static_cast<int64_t>(values.size());
#if defined(SBN_CUDA_EMULATION)
  at::Tensor host = at::empty({n}, at::TensorOptions().dtype(at::kLong));
#else
  at::Tensor host = at::empty({n}, at::TensorOptions().dtype(at::kLong).pinned_memory(true));
#endif
  std::copy(values.begin(), values.end(), host.data_ptr<int64_t>());
  return host.to(device, at::kLong, true);
}

}  // namespace cuda
}  // namespace common
}  // namespace sb_native
