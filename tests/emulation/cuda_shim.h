#pragma once
// Just enough of CUDA's built-ins to run a block of a kernel on the CPU: one std::thread
// per CUDA thread, std::barrier for __syncthreads() and for the warp-synchronous ballot,
// __shared__ as static storage (one block runs at a time). For tests only: it checks a
// kernel's indexing, barriers and compaction, not its speed.

#include <barrier>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(threads)
#define __shared__ static

struct EmulatedDim {
  unsigned int x = 0;
};
inline thread_local EmulatedDim threadIdx;
inline EmulatedDim blockIdx, blockDim;

namespace emulation {
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<unsigned char> ballot_votes;  // not vector<bool>: lanes write concurrently

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

inline int __popc(unsigned int v) { return __builtin_popcount(v); }
