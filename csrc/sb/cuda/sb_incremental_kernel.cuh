#pragma once
// The device code of the incremental dSB kernel (sb_incremental.cuh has the design and the
// launcher). Kept apart, with only csrc/sb/math.h and CUDA's built-ins as dependencies, so
// that tests/test_cuda_emulation.py can compile it for the CPU under an emulation of the CUDA
// built-ins and check it against the CPU op on a machine without a GPU.

#include <cstdint>

#include "../../common/cuda/launch.cuh"
#include "../math.h"

namespace sb_native {
namespace sb {
namespace cuda {

constexpr int kAgentThreads = 512;
constexpr int kAgentWarps = kAgentThreads / 32;

// A flip as one word: spin index and delta = new sign - old sign (+-1, +-2) as delta + 2.
__device__ __forceinline__ int32_t pack_flip(int64_t spin, int delta) {
  return static_cast<int32_t>((spin << 3) | (delta + 2));
}
__device__ __forceinline__ int64_t flip_spin(int32_t word) { return word >> 3; }
__device__ __forceinline__ int flip_delta(int32_t word) { return (word & 7) - 2; }

// Agent-major buffers (agents, n): element e = a * n + i is variable i of agent a.
template <typename scalar_t, typename column_t, typename field_t>
struct AgentArgs {
  scalar_t* x;
  scalar_t* m;
  scalar_t* m0;          // nullptr when not heated
  int8_t* s;             // the signs F corresponds to
  field_t* F;            // F = J @ s (in units of the coupling's scale for int8)
  int32_t* flips;        // per agent, up to n packed flips of the current step
  const column_t* columns;  // columns + j * n = J[:, j]
  int64_t n;
  int64_t start_step;
  int64_t num_steps;
  double time_step;
  double pressure_slope;
  scalar_t q;            // coefficient of F in the momentum update (int8 scale folded in)
  scalar_t heat;
  scalar_t position_coef;
};

// One sweep of the block's agent: finish applies the previous step's second half, start
// begins the next step and appends its flips to the list in ascending spin order (a warp
// ballot per chunk of blockDim.x variables, warp offsets through shared memory). Returns
// the number of flips (the same value in every thread).
template <typename scalar_t, typename column_t, typename field_t, bool kHeated>
__device__ int64_t agent_sweep(const AgentArgs<scalar_t, column_t, field_t>& p, int64_t base,
                               bool finish, bool start, scalar_t momentum_coef,
                               int* warp_count) {
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5, warps = blockDim.x >> 5;
  int64_t total = 0;
  for (int64_t i0 = 0; i0 < p.n; i0 += blockDim.x) {  // uniform bounds: every thread loops
    const int64_t i = i0 + t;
    int delta = 0;
    if (i < p.n) {
      const int64_t e = base + i;
      scalar_t x = p.x[e];
      scalar_t m = p.m[e];
      if (finish) {
        m = m + p.q * static_cast<scalar_t>(p.F[e]);
        inelastic_walls(x, m);
        if (kHeated) m = m + p.heat * p.m0[e];
      }
      if (start) {
        if (kHeated) p.m0[e] = m;
        kick_drift(x, m, momentum_coef, p.position_coef);
        const int8_t fresh = static_cast<int8_t>(sign_of(x));
        delta = static_cast<int>(fresh) - static_cast<int>(p.s[e]);
        p.s[e] = fresh;
      }
      p.x[e] = x;
      p.m[e] = m;
    }
    if (!start) continue;  // uniform: no thread skips the barriers below alone
    const unsigned int mask = __ballot_sync(0xffffffffu, delta != 0);
    if (lane == 0) warp_count[warp] = __popc(mask);
    __syncthreads();
    int64_t offset = total, chunk = 0;
    for (int w = 0; w < warps; ++w) {
      if (w < warp) offset += warp_count[w];
      chunk += warp_count[w];
    }
    if (delta != 0) {
      offset += __popc(mask & ((1u << lane) - 1u));
      p.flips[base + offset] = pack_flip(i, delta);
    }
    total += chunk;
    __syncthreads();  // warp_count is rewritten by the next chunk; the list is complete
  }
  return total;
}

// One block per agent, every step of the call; see the top of the file.
template <typename scalar_t, typename column_t, typename field_t, bool kHeated>
__global__ void __launch_bounds__(kAgentThreads)
    agent_run_kernel(AgentArgs<scalar_t, column_t, field_t> p) {
  SBN_SHARED(int, warp_count, [kAgentWarps]);
  const int64_t base = static_cast<int64_t>(blockIdx.x) * p.n;
  const int32_t* list = p.flips + base;
  for (int64_t k = 0; k < p.num_steps; ++k) {
    const scalar_t mc = static_cast<scalar_t>(
        momentum_coefficient(p.time_step, p.start_step + k, p.pressure_slope));
    const int64_t count =
        agent_sweep<scalar_t, column_t, field_t, kHeated>(p, base, k > 0, true, mc, warp_count);
    // Each thread corrects the rows it sweeps, so F needs no barrier of its own; the
    // list's barrier is the sweep's last one.
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) {
      field_t f = p.F[base + i];
      for (int64_t c = 0; c < count; ++c) {
        const int32_t word = list[c];
        f = f + static_cast<field_t>(p.columns[flip_spin(word) * p.n + i]) *
                    static_cast<field_t>(flip_delta(word));
      }
      p.F[base + i] = f;
    }
    __syncthreads();  // every read of the list done before the next sweep rewrites it
  }
  if (p.num_steps > 0) {
    agent_sweep<scalar_t, column_t, field_t, kHeated>(p, base, true, false, scalar_t(0),
                                                      warp_count);
  }
}

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
