// Small kernels that show what the emulator reports: each probe is a kernel with one
// deliberate fault (or none), launched through common::cuda::launch; emulator_probe fills out
// (int32, at least 2 x 6 x threads elements) with what the threads wrote, or raises the
// emulator's report (test_emulator.py).
#include "rename.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "common/cuda/launch.cuh"

namespace sb_native {
namespace emulation_probes {
namespace {

using common::cuda::launch;

// Each thread writes its slot, then reads its left neighbour's: correct only with the barrier.
template <bool kBarrier>
__global__ void neighbour_kernel(int* out) {
  SBN_SHARED(int, slots, [64]);
  const unsigned int t = threadIdx.x;
  slots[t] = static_cast<int>(t) * 10;
  if (kBarrier) __syncthreads();
  out[blockIdx.x * blockDim.x + t] = slots[(t + blockDim.x - 1) % blockDim.x];
}

// Threads read a slot no thread wrote.
__global__ void unwritten_kernel(int* out) {
  SBN_SHARED(int, slots, [64]);
  if (threadIdx.x > 0) slots[threadIdx.x] = 1;
  __syncthreads();
  out[threadIdx.x] = slots[0];
}

// A static array one element too small for the block.
__global__ void overrun_kernel(int* out) {
  SBN_SHARED(int, slots, [32]);
  slots[threadIdx.x] = 1;
  out[threadIdx.x] = 0;
}

// Dynamic shared memory of the launch's size (threads ints), indexed one past it.
__global__ void dynamic_kernel(int* out, int shift) {
  int* slots = common::cuda::dynamic_shared<int>();
  slots[threadIdx.x + shift] = static_cast<int>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = shift == 0 ? slots[blockDim.x - 1 - threadIdx.x] : 0;
}

// Thread 0 returns before the barrier the others wait at.
__global__ void divergent_kernel(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Warp exchanges: the ballot of t % 3 == 0, then the warp's sum of t by a xor butterfly.
__global__ void warp_kernel(int* out) {
  const unsigned int mask = __ballot_sync(0xffffffffu, threadIdx.x % 3 == 0);
  int sum = static_cast<int>(threadIdx.x);
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  out[2 * threadIdx.x] = static_cast<int>(mask);
  out[2 * threadIdx.x + 1] = sum;
}

// threadIdx, blockIdx, blockDim and gridDim of a 2 x 3 grid of 4 x 2 blocks.
__global__ void indices_kernel(int* out) {
  const unsigned int block = blockIdx.y * gridDim.x + blockIdx.x;
  const unsigned int t = block * blockDim.x * blockDim.y + threadIdx.y * blockDim.x + threadIdx.x;
  out[4 * t] = static_cast<int>(threadIdx.x);
  out[4 * t + 1] = static_cast<int>(threadIdx.y);
  out[4 * t + 2] = static_cast<int>(blockIdx.x);
  out[4 * t + 3] = static_cast<int>(blockIdx.y);
}

void emulator_probe(at::Tensor& out, const std::string& probe, int64_t threads) {
  TORCH_CHECK_VALUE(out.scalar_type() == at::kInt && out.is_contiguous() &&
                        out.numel() >= 12 * std::max<int64_t>(threads, 8),
                    "out must be a contiguous int32 tensor of at least 12 x threads elements");
  const auto t = static_cast<unsigned int>(threads);
  int* o = out.data_ptr<int>();
  if (probe == "race") {
    launch(neighbour_kernel<false>, 2u, t, 0, nullptr, o);
  } else if (probe == "barrier") {
    launch(neighbour_kernel<true>, 2u, t, 0, nullptr, o);
  } else if (probe == "unwritten") {
    launch(unwritten_kernel, 1u, t, 0, nullptr, o);
  } else if (probe == "overrun") {
    launch(overrun_kernel, 1u, t, 0, nullptr, o);
  } else if (probe == "dynamic") {
    launch(dynamic_kernel, 1u, t, threads * sizeof(int), nullptr, o, 0);
  } else if (probe == "dynamic_overrun") {
    launch(dynamic_kernel, 1u, t, threads * sizeof(int), nullptr, o, 1);
  } else if (probe == "divergent") {
    launch(divergent_kernel, 1u, t, 0, nullptr, o);
  } else if (probe == "warp") {
    launch(warp_kernel, 1u, t, 0, nullptr, o);
  } else if (probe == "indices") {
    launch(indices_kernel, dim3(2, 3), dim3(4, 2), 0, nullptr, o);
  } else if (probe == "too_many_threads") {
    launch(warp_kernel, 1u, 2048u, 0, nullptr, o);
  } else {
    TORCH_CHECK_VALUE(false, "unknown probe ", probe);
  }
}

}  // namespace
}  // namespace emulation_probes
}  // namespace sb_native

TORCH_LIBRARY_FRAGMENT(sb_native_emulated, m) {
  m.def("emulator_probe(Tensor(a!) out, str probe, int threads) -> ()");
}

TORCH_LIBRARY_IMPL(sb_native_emulated, CPU, m) {
  m.impl("emulator_probe", &sb_native::emulation_probes::emulator_probe);
}
