#pragma once
// The CUDA execution model on the CPU, for tests. The sources of csrc/*/cuda are compiled as
// C++ with SBN_CUDA_EMULATION defined, this directory's include/ ahead of torch's (streams,
// guards, device properties) and this header for the built-ins; common::cuda::launch then
// runs each grid here, block after block, on the calling thread.
//
// A block's threads are fibers (ucontext), run one at a time in thread order: each runs
// until it reaches a barrier (__syncthreads, or a warp's ballot or shuffle), then the next
// one runs; a barrier opens when every thread it waits for has arrived. The schedule is
// deterministic, so a failure reproduces. What a launch reports, after its grid has run, as
// a std::runtime_error (RuntimeError in Python):
//   * a barrier some thread of the block never reaches (a divergent __syncthreads, an early
//     return before a ballot), which hangs or corrupts a real block;
//   * with SBN_EMULATION_SHARED_CHECKS (shadow.cpp: the sources compiled with GCC's
//     -fsanitize=thread instrumentation, whose hooks are ours, not the TSan runtime), a
//     shared-memory byte read before the block wrote it, written by one thread and read or
//     written by another between the same two barriers, or read by one and then written by
//     another between the same two barriers; a shared-memory access past the end of its
//     array or of the launch's dynamic size. Shared memory is poisoned (0xff) at the start
//     of every block.
// Shared memory is heap memory here: the launch's dynamic bytes, and one allocation per
// SBN_SHARED array (launch.cuh) made the first time a thread of the launch declares it, so
// AddressSanitizer (the asan variant of tests/emulation) sees their bounds as it sees the
// tensors'.

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(bytes) __attribute__((aligned(bytes)))

struct uint3 {
  unsigned int x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};
struct alignas(16) uint4 {
  unsigned int x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned int x, y;
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct cudaDeviceProp {
  int multiProcessorCount;
  size_t sharedMemPerBlock;
};

inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace emulation {

struct Barrier {
  unsigned int expected = 0, arrived = 0;
  uint64_t generation = 0;
};

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  Barrier* waiting = nullptr;  // the barrier this fiber waits at, if any
  uint64_t generation = 0;     // that barrier's generation when it arrived
  bool done = false;
};

// A block of shared memory: bytes in use, then (with the checks) a guard to catch overruns.
struct SharedArray {
  std::unique_ptr<unsigned char[]> memory;
  size_t bytes = 0, capacity = 0;
  std::string name;
};

// Shared-memory checks, implemented in shadow.cpp (no-ops without the checks).
void shadow_block_start(const std::vector<SharedArray*>& arrays, uint64_t epoch);
void shadow_add(const SharedArray& array);
void shadow_set_thread(unsigned int thread, uint64_t epoch);
std::vector<std::string> shadow_take_errors();

constexpr size_t kStackBytes = 256 * 1024;
#if defined(SBN_EMULATION_SHARED_CHECKS)
constexpr size_t kGuardBytes = 4096;
#else
constexpr size_t kGuardBytes = 0;  // AddressSanitizer's redzones see overruns
#endif
constexpr unsigned int kWarp = 32;
constexpr size_t kMaxErrors = 8;

struct Device {
  std::mutex mutex;  // one launch at a time
  ucontext_t scheduler;
  std::vector<Fiber> fibers;
  const std::function<void()>* body = nullptr;
  unsigned int current = 0;
  Barrier block;
  std::vector<Barrier> warps;
  std::vector<int64_t> lanes;  // the values a warp's ballot or shuffle exchanges
  SharedArray dynamic;
  std::vector<std::unique_ptr<SharedArray>> statics;  // the SBN_SHARED arrays of the launch
  uint64_t launch_id = 0;
  const void* scheduler_stack = nullptr;  // for AddressSanitizer's fiber switches
  size_t scheduler_stack_bytes = 0;
  uint64_t epoch = 1;  // advanced at every block start and every opened __syncthreads
  std::vector<std::string> errors;
};

inline Device& device() {
  static Device d;
  return d;
}

inline void allocate(SharedArray& array, size_t bytes, std::string name) {
  array.bytes = bytes;
  array.capacity = bytes + kGuardBytes;
  array.memory = std::make_unique<unsigned char[]>(std::max<size_t>(array.capacity, 1));
  std::memset(array.memory.get(), 0xff, array.capacity);
  array.name = std::move(name);
}

inline unsigned char* dynamic_shared_memory() { return device().dynamic.memory.get(); }

// The storage of one SBN_SHARED declaration (a static local of its kernel instantiation).
struct SharedSlot {
  uint64_t launch = 0;
  unsigned char* memory = nullptr;
};

template <typename T>
T& static_shared(SharedSlot& slot, const char* name) {
  Device& d = device();
  if (slot.launch != d.launch_id) {
    d.statics.push_back(std::make_unique<SharedArray>());
    allocate(*d.statics.back(), sizeof(T), name);
    shadow_add(*d.statics.back());
    slot.launch = d.launch_id;
    slot.memory = d.statics.back()->memory.get();
  }
  return *reinterpret_cast<T*>(slot.memory);
}

inline void enter(unsigned int t) {
  Device& d = device();
  d.current = t;
  const unsigned int bx = blockDim.x, by = blockDim.y;
  threadIdx = {t % bx, (t / bx) % by, t / (bx * by)};
  shadow_set_thread(t, d.epoch);
}

// AddressSanitizer is told of every switch of stacks, so it never mistakes a fiber's
// frames for overflows (sanitizer/common_interface_defs.h).
inline void switch_started(void** fake_stack, const void* bottom, size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(fake_stack, bottom, bytes);
#else
  (void)fake_stack, (void)bottom, (void)bytes;
#endif
}

inline void switch_finished(void* fake_stack, const void** bottom, size_t* bytes) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(fake_stack, bottom, bytes);
#else
  (void)fake_stack, (void)bottom, (void)bytes;
#endif
}

// From the scheduler into fiber t, until it waits at a barrier or returns.
inline void resume(unsigned int t) {
  Device& d = device();
  void* fake_stack = nullptr;
  switch_started(&fake_stack, d.fibers[t].stack.get(), kStackBytes);
  swapcontext(&d.scheduler, &d.fibers[t].context);
  switch_finished(fake_stack, nullptr, nullptr);
}

// From the running fiber back to the scheduler, until the scheduler resumes it.
inline void yield() {
  Device& d = device();
  void* fake_stack = nullptr;
  switch_started(&fake_stack, d.scheduler_stack, d.scheduler_stack_bytes);
  swapcontext(&d.fibers[d.current].context, &d.scheduler);
  switch_finished(fake_stack, &d.scheduler_stack, &d.scheduler_stack_bytes);
}

inline void fiber_main() {
  Device& d = device();
  switch_finished(nullptr, &d.scheduler_stack, &d.scheduler_stack_bytes);
  (*d.body)();
  d.fibers[d.current].done = true;
  switch_started(nullptr, d.scheduler_stack, d.scheduler_stack_bytes);  // this stack ends
}  // returns to the scheduler through uc_link

// Arrives at b and waits until every thread b expects has arrived.
inline void wait_at(Barrier& b, bool block_barrier) {
  Device& d = device();
  const uint64_t generation = b.generation;
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;
    if (block_barrier) ++d.epoch;
  } else {
    Fiber& self = d.fibers[d.current];
    self.waiting = &b;
    self.generation = generation;
    yield();
  }
  shadow_set_thread(d.current, d.epoch);
}

inline void report(std::string message) {
  Device& d = device();
  if (d.errors.size() < kMaxErrors) d.errors.push_back(std::move(message));
}

inline std::string block_name() {
  return "block (" + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ", " +
         std::to_string(blockIdx.z) + ")";
}

// Runs the current block's threads until all have returned; false on a stuck barrier.
inline bool run_block(unsigned int threads) {
  Device& d = device();
  for (unsigned int t = 0; t < threads; ++t) {
    Fiber& f = d.fibers[t];
    f.done = false;
    f.waiting = nullptr;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &d.scheduler;
    makecontext(&f.context, fiber_main, 0);
  }
  unsigned int finished = 0;
  while (finished < threads) {
    bool ran = false;
    finished = 0;
    for (unsigned int t = 0; t < threads; ++t) {
      Fiber& f = d.fibers[t];
      if (f.done) {
        ++finished;
        continue;
      }
      if (f.waiting != nullptr && f.waiting->generation == f.generation) continue;
      f.waiting = nullptr;
      enter(t);
      resume(t);
      ran = true;
      finished += f.done;
    }
    if (!ran && finished < threads) {
      std::string who;
      for (unsigned int t = 0; t < threads; ++t) {
        if (d.fibers[t].done) who += who.empty() ? std::to_string(t) : ", " + std::to_string(t);
      }
      report(block_name() + ": a barrier is never reached by every thread it waits for" +
             (who.empty() ? std::string() : " (threads " + who + " returned)"));
      return false;
    }
  }
  return true;
}

// Runs body (the kernel call) as every thread of every block of grid x block.
inline void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mutex);
  const unsigned int threads = block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535 || shared_bytes > 48 * 1024) {
    throw std::runtime_error("emulated launch: invalid configuration: grid (" +
                             std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " +
                             std::to_string(grid.z) + "), block (" + std::to_string(block.x) +
                             ", " + std::to_string(block.y) + ", " + std::to_string(block.z) +
                             "), " + std::to_string(shared_bytes) + " shared bytes");
  }
  while (d.fibers.size() < threads) {
    d.fibers.emplace_back();
    d.fibers.back().stack = std::make_unique<char[]>(kStackBytes);
  }
  const unsigned int warps = (threads + kWarp - 1) / kWarp;
  d.warps.assign(warps, Barrier{});
  for (unsigned int w = 0; w < warps; ++w) {
    d.warps[w].expected = std::min(kWarp, threads - w * kWarp);
  }
  d.lanes.assign(threads, 0);
  d.statics.clear();
  ++d.launch_id;
  allocate(d.dynamic, shared_bytes, "dynamic");
  d.body = &body;
  d.errors.clear();
  gridDim = grid;
  blockDim = block;
  for (unsigned int z = 0; z < grid.z; ++z) {
    for (unsigned int y = 0; y < grid.y; ++y) {
      for (unsigned int x = 0; x < grid.x; ++x) {
        blockIdx = {x, y, z};
        d.block = Barrier{threads, 0, 0};
        for (Barrier& w : d.warps) w.arrived = 0;
        ++d.epoch;
        std::vector<SharedArray*> arrays{&d.dynamic};
        for (auto& a : d.statics) {
          std::memset(a->memory.get(), 0xff, a->capacity);
          arrays.push_back(a.get());
        }
        std::memset(d.dynamic.memory.get(), 0xff, d.dynamic.capacity);
        shadow_block_start(arrays, d.epoch);
        const bool finished = run_block(threads);
        for (std::string& e : shadow_take_errors()) report(block_name() + ": " + e);
        if (!finished || !d.errors.empty()) goto done;
      }
    }
  }
done:
  if (!d.errors.empty()) {
    std::string message = "emulated kernel failed:";
    for (const std::string& e : d.errors) message += "\n  " + e;
    throw std::runtime_error(message);
  }
}

inline void sync_warp_lanes() {
  Device& d = device();
  wait_at(d.warps[d.current / kWarp], false);
}

}  // namespace emulation

inline void __syncthreads() { emulation::wait_at(emulation::device().block, true); }

inline unsigned int __ballot_sync(unsigned int, bool vote) {
  emulation::Device& d = emulation::device();
  const unsigned int t = d.current, first = t / emulation::kWarp * emulation::kWarp;
  d.lanes[t] = vote;
  emulation::sync_warp_lanes();
  unsigned int mask = 0;
  for (unsigned int lane = 0; lane < d.warps[t / emulation::kWarp].expected; ++lane) {
    mask |= static_cast<unsigned int>(d.lanes[first + lane] != 0) << lane;
  }
  emulation::sync_warp_lanes();  // every lane has read before the next exchange
  return mask;
}

template <typename T>
inline T __shfl_xor_sync(unsigned int, T value, int lane_mask) {
  emulation::Device& d = emulation::device();
  const unsigned int t = d.current, first = t / emulation::kWarp * emulation::kWarp;
  d.lanes[t] = static_cast<int64_t>(value);
  emulation::sync_warp_lanes();
  const unsigned int source = first + ((t - first) ^ static_cast<unsigned int>(lane_mask));
  const T other = static_cast<T>(d.lanes[source < d.lanes.size() ? source : t]);
  emulation::sync_warp_lanes();  // every lane has read before the next exchange
  return other;
}

inline int __popc(unsigned int v) { return __builtin_popcount(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
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
