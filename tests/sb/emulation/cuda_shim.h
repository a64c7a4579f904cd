#pragma once
// Just enough of CUDA's built-ins to run a block of a kernel on the CPU: one std::thread
// per CUDA thread, std::barrier for __syncthreads() and for the warp-synchronous ballot and
// shuffle, the arithmetic intrinsics as plain C++. For tests only: it checks a kernel's
// indexing, barriers and compaction, not its speed.
//
// __shared__ is left to the including file, since one block runs at a time: `static` for a
// kernel's static shared arrays, or empty for an `extern __shared__` array, which the
// including file then defines at namespace scope (the dynamic shared memory).

#include <barrier>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(threads)
#define __align__(bytes) __attribute__((aligned(bytes)))

struct alignas(16) uint4 {
  unsigned int x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned int x, y;
};

struct EmulatedDim {
  unsigned int x = 0;
};
inline thread_local EmulatedDim threadIdx;
inline EmulatedDim blockIdx, blockDim;

namespace emulation {
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<unsigned char> ballot_votes;  // not vector<bool>: lanes write concurrently
inline std::vector<int64_t> shuffle_values;

// Runs body() once per thread of block `block` with `threads` threads (a multiple of 32).
template <typename Body>
void run_block(unsigned int block, unsigned int threads, Body body) {
  blockIdx.x = block;
  blockDim.x = threads;
  block_barrier = std::make_unique<std::barrier<>>(threads);
  warp_barriers.clear();
  for (unsigned int w = 0; w < threads / 32; ++w) {
    warp_barriers.push_back(std::make_unique<std::barrier<>>(32));
  }
  ballot_votes.assign(threads, 0);
  shuffle_values.assign(threads, 0);
  std::vector<std::thread> pool;
  for (unsigned int t = 0; t < threads; ++t) {
    pool.emplace_back([t, &body] {
      threadIdx.x = t;
      body();
    });
  }
  for (auto& thread : pool) thread.join();
}
}  // namespace emulation

inline void __syncthreads() { emulation::block_barrier->arrive_and_wait(); }

inline unsigned int __ballot_sync(unsigned int, bool vote) {
  const unsigned int warp = threadIdx.x / 32;
  emulation::ballot_votes[threadIdx.x] = vote;
  emulation::warp_barriers[warp]->arrive_and_wait();
  unsigned int mask = 0;
  for (unsigned int lane = 0; lane < 32; ++lane) {
    mask |= static_cast<unsigned int>(emulation::ballot_votes[warp * 32 + lane]) << lane;
  }
  emulation::warp_barriers[warp]->arrive_and_wait();  // every lane read before the next vote
  return mask;
}

template <typename T>
inline T __shfl_xor_sync(unsigned int, T value, int lane_mask) {
  const unsigned int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  emulation::shuffle_values[threadIdx.x] = static_cast<int64_t>(value);
  emulation::warp_barriers[warp]->arrive_and_wait();
  const T other = static_cast<T>(emulation::shuffle_values[warp * 32 + (lane ^ lane_mask)]);
  emulation::warp_barriers[warp]->arrive_and_wait();  // every lane read before the next write
  return other;
}

inline int __popc(unsigned int v) { return __builtin_popcount(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
template <typename T>
inline T __ldg(const T* p) { return *p; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

// Four signed byte products of a and b, summed, plus c.
inline int __dp4a(int a, int b, int c) {
  for (int k = 0; k < 4; ++k) {
    c += static_cast<int>(static_cast<int8_t>(a >> (8 * k))) *
         static_cast<int>(static_cast<int8_t>(b >> (8 * k)));
  }
  return c;
}
