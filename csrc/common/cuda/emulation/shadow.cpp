// The shared-memory checks of the emulation (see emulator.h). With
// SBN_EMULATION_SHARED_CHECKS the sources are compiled with GCC's -fsanitize=thread instrumentation
// and linked without the TSan runtime: every load and store calls the __tsan_* hooks below, which
// check the accesses that fall in shared memory against a shadow record per byte (last writer and
// its barrier epoch, last reader and its epoch) and let every other access through. These functions
// are not instrumented themselves (no_sanitize), and the atomics hooks perform the atomic operation
// they stand for.

#include <algorithm>
#include <cstdio>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "emulator.h"

#define SBN_UNCHECKED __attribute__((no_sanitize_thread))
#define SBN_HOOK extern "C" __attribute__((no_sanitize_thread, visibility("hidden")))

namespace emulation {
namespace {

constexpr uint32_t kNobody = 0xffffffffu, kMany = 0xfffffffeu;

struct Shadow {
  uint32_t writer = kNobody, reader = kNobody;
  uint64_t write_epoch = 0, read_epoch = 0;
};

struct Region {
  const SharedArray* array;
  std::vector<Shadow> shadow;
};

struct State {
  std::vector<Region> regions;
  uint32_t thread = 0;
  uint64_t epoch = 0, block_epoch = 0;
  bool inside = false;  // in a check: what it calls is instrumented too, and not checked
  std::vector<std::string> errors;
  size_t error_count = 0;
};

State& state() {
  static State s;
  return s;
}

// The span of every shared array (begin, end; empty when none): most accesses fall outside
// and return after two comparisons.
uintptr_t shared_begin = 0, shared_end = 0;

void update_span(const State& s) {
  shared_begin = UINTPTR_MAX;
  shared_end = 0;
  for (const Region& r : s.regions) {
    const auto begin = reinterpret_cast<uintptr_t>(r.array->memory.get());
    shared_begin = std::min(shared_begin, begin);
    shared_end = std::max(shared_end, begin + r.array->capacity);
  }
}

#if defined(SBN_EMULATION_SHARED_CHECKS)
SBN_UNCHECKED void record(const Region& r, size_t offset, const char* what, uint32_t other) {
  State& s = state();
  if (s.errors.size() < kMaxErrors) {
    std::string m = std::string(what) + " at byte " + std::to_string(offset) + " of shared " +
                    r.array->name + " (" + std::to_string(r.array->bytes) + " bytes) by thread " +
                    std::to_string(s.thread);
    if (other == kMany) m += ", other threads";
    else if (other != kNobody) m += ", thread " + std::to_string(other);
    // Also at once on stderr: a kernel gone wrong may crash the process before the launch
    // ends and reports.
    if (s.errors.empty()) std::fprintf(stderr, "emulated kernel: %s\n", m.c_str());
    s.errors.push_back(m);
  }
  ++s.error_count;
}

SBN_UNCHECKED void check_regions(State& s, const unsigned char* a, size_t size, bool write) {
  for (Region& r : s.regions) {
    const unsigned char* begin = r.array->memory.get();
    if (a + size <= begin || a >= begin + r.array->capacity) continue;
    for (size_t k = 0; k < size; ++k) {
      if (a + k < begin || a + k >= begin + r.array->capacity) continue;
      const auto offset = static_cast<size_t>(a + k - begin);
      if (offset >= r.array->bytes) {
        record(r, offset, write ? "write past the end" : "read past the end", kNobody);
        return;
      }
      Shadow& sh = r.shadow[offset];
      const bool written_now = sh.write_epoch == s.epoch && sh.writer != s.thread;
      if (write) {
        if (written_now) {
          record(r, offset, "write-write race", sh.writer);
        } else if (sh.read_epoch == s.epoch && sh.reader != s.thread) {
          record(r, offset, "write after another thread's read, no barrier between", sh.reader);
        }
        sh.writer = s.thread;
        sh.write_epoch = s.epoch;
      } else {
        if (sh.write_epoch < s.block_epoch) {
          record(r, offset, "read before any write", kNobody);
        } else if (written_now) {
          record(r, offset, "read of another thread's write, no barrier between", sh.writer);
        }
        if (sh.read_epoch == s.epoch && sh.reader != s.thread) {
          sh.reader = kMany;
        } else if (sh.read_epoch != s.epoch) {
          sh.reader = s.thread;
          sh.read_epoch = s.epoch;
        }
      }
    }
    return;
  }
}

SBN_UNCHECKED inline void check_access(const void* address, size_t size, bool write) {
  const auto a = reinterpret_cast<uintptr_t>(address);
  if (a + size <= shared_begin || a >= shared_end) return;
  State& s = state();
  if (s.inside) return;
  s.inside = true;
  check_regions(s, static_cast<const unsigned char*>(address), size, write);
  s.inside = false;
}
#endif

// Marks the state as being changed, so the checks skip the accesses that make the change.
struct Changing {
  State& s;
  explicit Changing(State& state) : s(state) { s.inside = true; }
  ~Changing() {
    update_span(s);
    s.inside = false;
  }
};

}  // namespace

void shadow_block_start(const std::vector<SharedArray*>& arrays, uint64_t epoch) {
  State& s = state();
  {
    const Changing changing(s);
    s.regions.clear();
    s.block_epoch = epoch;
  }
  for (const SharedArray* a : arrays) shadow_add(*a);
}

void shadow_add(const SharedArray& array) {
#if defined(SBN_EMULATION_SHARED_CHECKS)
  const Changing changing(state());
  state().regions.push_back(Region{&array, std::vector<Shadow>(array.capacity)});
#else
  (void)array;
#endif
}

void shadow_set_thread(unsigned int thread, uint64_t epoch) {
  State& s = state();
  s.thread = thread;
  s.epoch = epoch;
}

std::vector<std::string> shadow_take_errors() {
  State& s = state();
  const Changing changing(s);
  s.regions.clear();
  std::vector<std::string> errors;
  errors.swap(s.errors);
  if (s.error_count > errors.size()) {
    errors.push_back("and " + std::to_string(s.error_count - errors.size()) + " more");
  }
  s.error_count = 0;
  return errors;
}

}  // namespace emulation

#if defined(SBN_EMULATION_SHARED_CHECKS)
// The hooks GCC's instrumentation calls (the TSan runtime's interface).
#define SBN_ACCESS_HOOKS(n)                                                                 \
  SBN_HOOK void __tsan_read##n(void* p) { emulation::check_access(p, n, false); }           \
  SBN_HOOK void __tsan_write##n(void* p) { emulation::check_access(p, n, true); }           \
  SBN_HOOK void __tsan_unaligned_read##n(void* p) { emulation::check_access(p, n, false); } \
  SBN_HOOK void __tsan_unaligned_write##n(void* p) { emulation::check_access(p, n, true); } \
  SBN_HOOK void __tsan_volatile_read##n(void* p) { emulation::check_access(p, n, false); }  \
  SBN_HOOK void __tsan_volatile_write##n(void* p) { emulation::check_access(p, n, true); }
SBN_ACCESS_HOOKS(1)
SBN_ACCESS_HOOKS(2)
SBN_ACCESS_HOOKS(4)
SBN_ACCESS_HOOKS(8)
SBN_ACCESS_HOOKS(16)
SBN_HOOK void __tsan_read_range(void* p, size_t n) { emulation::check_access(p, n, false); }
SBN_HOOK void __tsan_write_range(void* p, size_t n) { emulation::check_access(p, n, true); }
SBN_HOOK void __tsan_init() {}
SBN_HOOK void __tsan_func_entry(void*) {}
SBN_HOOK void __tsan_func_exit() {}
SBN_HOOK void __tsan_vptr_update(void**, void*) {}
SBN_HOOK void __tsan_vptr_read(void**) {}
SBN_HOOK void __tsan_atomic_thread_fence(int order) { __atomic_thread_fence(order); }
SBN_HOOK void __tsan_atomic_signal_fence(int order) { __atomic_signal_fence(order); }

#define SBN_ATOMIC_HOOKS(bits, T)                                                                \
  SBN_HOOK T __tsan_atomic##bits##_load(const volatile T* a, int o) {                            \
    return __atomic_load_n(a, o);                                                                \
  }                                                                                              \
  SBN_HOOK void __tsan_atomic##bits##_store(volatile T* a, T v, int o) {                         \
    __atomic_store_n(a, v, o);                                                                   \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_exchange(volatile T* a, T v, int o) {                         \
    return __atomic_exchange_n(a, v, o);                                                         \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_fetch_add(volatile T* a, T v, int o) {                        \
    return __atomic_fetch_add(a, v, o);                                                          \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_fetch_sub(volatile T* a, T v, int o) {                        \
    return __atomic_fetch_sub(a, v, o);                                                          \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_fetch_and(volatile T* a, T v, int o) {                        \
    return __atomic_fetch_and(a, v, o);                                                          \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_fetch_or(volatile T* a, T v, int o) {                         \
    return __atomic_fetch_or(a, v, o);                                                           \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_fetch_xor(volatile T* a, T v, int o) {                        \
    return __atomic_fetch_xor(a, v, o);                                                          \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_fetch_nand(volatile T* a, T v, int o) {                       \
    return __atomic_fetch_nand(a, v, o);                                                         \
  }                                                                                              \
  SBN_HOOK int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* c, T v, int o,    \
                                                             int f) {                            \
    return __atomic_compare_exchange_n(a, c, v, false, o, f);                                    \
  }                                                                                              \
  SBN_HOOK int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* c, T v, int o,      \
                                                           int f) {                              \
    return __atomic_compare_exchange_n(a, c, v, true, o, f);                                     \
  }                                                                                              \
  SBN_HOOK T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T c, T v, int o, int f) { \
    __atomic_compare_exchange_n(a, &c, v, false, o, f);                                          \
    return c;                                                                                    \
  }
SBN_ATOMIC_HOOKS(8, uint8_t)
SBN_ATOMIC_HOOKS(16, uint16_t)
SBN_ATOMIC_HOOKS(32, uint32_t)
SBN_ATOMIC_HOOKS(64, uint64_t)
#endif
