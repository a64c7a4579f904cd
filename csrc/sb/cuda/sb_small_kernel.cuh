#pragma once
// The device code of the persistent small-problem kernel (sb_small.cuh has the design and the
// launcher). Kept apart, with only csrc/sb/math.h, the coupling policies and CUDA's built-ins
// as dependencies, so that tests/test_cuda_emulation.py can compile it for the CPU under an
// emulation of the CUDA built-ins and check it against the CPU ops on a machine without a
// GPU.

#include <cstdint>

#include "../../common/cuda/launch.cuh"
#include "../math.h"
#include "sb_small_coupling.cuh"

namespace sb_native {
namespace sb {
namespace cuda {

// Most variables the persistent kernel takes: one thread per variable and one block per
// agent tile, so n <= 512 threads, which __launch_bounds__ lets use up to 128 registers
// each (64K per SM): enough for x, m, m0 and F of 8 agents in float64 without spilling.
// It is also about where the kernel stops paying: every block streams the whole n x n
// coupling from L2 at every step (about n^2 * 4 bytes at ~64 B/clock per SM: ~9 us a step
// at n = 500 in float32), which is what a step of the GEMM path costs in launches; beyond
// it the GEMM path, whose product is spread over all SMs, wins. (Estimate, to be measured
// on a GPU with bench/gpu_check.py; SB_NATIVE_CUDA_PERSISTENT_MAX_N lowers the limit, 0
// turns the kernel off.)
constexpr int64_t kSmallMaxN = 512;
constexpr int kSmallMaxThreads = 512;
constexpr int kSmallMaxWarps = kSmallMaxThreads / 32;
static_assert(kSmallMaxN <= kSmallMaxThreads, "one thread per variable");

// Offsets into the block's dynamic shared memory, 16-byte aligned:
//   operand  f(x) of the tile (Coupling::operand_bytes)
//   delta    dSB: new sign - old sign, int8 [n][TA]
//   rowmask  dSB: one bit per row with a flip, one word per warp
//   flips    dSB: flips counted per warp
struct SmallLayout {
  int64_t delta, rowmask, flips, total;
};

inline SmallLayout small_layout(int64_t operand_bytes, int64_t n, int tile, bool discrete) {
  SmallLayout l{};
  l.delta = round_up_to(operand_bytes, 16);
  if (!discrete) {
    l.rowmask = l.flips = l.total = l.delta;
    return l;
  }
  l.rowmask = l.delta + round_up_to(n * tile, 16);
  l.flips = l.rowmask + kSmallMaxWarps * 4;
  l.total = l.flips + kSmallMaxWarps * 4;
  return l;
}

template <typename scalar_t>
struct SmallArgs {
  scalar_t* x;
  scalar_t* m;
  int64_t agents;
  int64_t start_step;
  int64_t num_steps;
  double time_step;
  double pressure_slope;
  double flip_fraction;  // dSB: recompute F when flips > flip_fraction * (tile elements)
  scalar_t q;            // coefficient of F in the momentum update (an int8 scale folded in)
  scalar_t heat;
  scalar_t position_coef;
  SmallLayout layout;
  // A batch of problems of one size (sb_run_batched) in the same launch: problem b's state
  // starts state_stride elements after problem b - 1's (its coupling: Coupling::for_problem).
  // A single problem (sb_run, sb_run_int8) is problem 0 of a batch of one, with null arrays.
  int64_t state_stride;
  const bool* active;       // device, per problem; nullptr: every problem runs
  const double* problem_q;  // device, per problem, in place of q; nullptr: q
};

// One block = one tile of TA agents of one problem, blockDim.x = n rounded up to a warp; see
// the top of the file. The grid is flat, blockIdx.x = problem * tiles + tile (grid.y would cap
// a batch at 65,535 problems). Threads i >= n own no row but take part in every barrier and
// ballot.
template <typename scalar_t, typename Coupling, int TA, bool kDiscrete, bool kHeated>
__global__ void __launch_bounds__(kSmallMaxThreads)
    small_run_kernel(SmallArgs<scalar_t> p, Coupling coupling) {
  using field_t = typename Coupling::field_t;
  using operand_t = typename Coupling::operand_t;
  unsigned char* smem = common::cuda::dynamic_shared<unsigned char>();
  operand_t* op = reinterpret_cast<operand_t*>(smem);
  int8_t* delta = reinterpret_cast<int8_t*>(smem + p.layout.delta);
  unsigned int* rowmask = reinterpret_cast<unsigned int*>(smem + p.layout.rowmask);
  int* warp_flips = reinterpret_cast<int*>(smem + p.layout.flips);

  const int64_t tiles = (p.agents + TA - 1) / TA;
  const int64_t problem = static_cast<int64_t>(blockIdx.x) / tiles;
  // An inactive problem's blocks leave at once, before any barrier or ballot: the whole
  // block returns, so no thread waits for one that left.
  if (p.active != nullptr && !p.active[problem]) return;
  const Coupling c = coupling.for_problem(problem);
  scalar_t* const xs = p.x + problem * p.state_stride;
  scalar_t* const ms = p.m + problem * p.state_stride;
  // Cast from double as the host casts a single problem's coefficient.
  const scalar_t q = p.problem_q != nullptr ? static_cast<scalar_t>(p.problem_q[problem]) : p.q;

  const int n = c.n;
  const int i = threadIdx.x;
  const bool owns = i < n;
  const int lane = i & 31;
  const int warp = i >> 5;
  const int warps = blockDim.x >> 5;
  const int64_t a0 = (static_cast<int64_t>(blockIdx.x) - problem * tiles) * TA;
  const int valid = p.agents - a0 < TA ? static_cast<int>(p.agents - a0) : TA;
  const int64_t max_flips =
      static_cast<int64_t>(p.flip_fraction * static_cast<double>(n * valid));

  // Zero the operand (padding rows and the agents past the end of the last tile stay 0).
  for (int w = i; w < p.layout.total / 4; w += blockDim.x) reinterpret_cast<int*>(smem)[w] = 0;

  // The tile's state, in registers for the whole call. Agents past the end of the last tile
  // stay exactly 0 (kick-drift and walls keep 0, sign(0) = 0) and are never written back.
  scalar_t x[TA], m[TA], m0[TA];
  field_t F[TA];
#pragma unroll
  for (int a = 0; a < TA; ++a) {
    x[a] = m[a] = m0[a] = scalar_t(0);
    F[a] = field_t(0);
    if (owns && a < valid) {
      const int64_t e = static_cast<int64_t>(i) * p.agents + a0 + a;
      x[a] = xs[e];
      m[a] = ms[e];
    }
  }
  __syncthreads();  // the zeroing before any operand write

  for (int64_t k = 0; k < p.num_steps; ++k) {
    const scalar_t mc = static_cast<scalar_t>(
        momentum_coefficient(p.time_step, p.start_step + k, p.pressure_slope));
    const bool incremental_step = kDiscrete && k > 0;
    int flips = 0;
    if (owns) {
      int8_t d[TA] = {};
#pragma unroll
      for (int a = 0; a < TA; ++a) {
        if (k > 0) {  // the rest of the previous step
          m[a] = m[a] + q * static_cast<scalar_t>(F[a]);
          inelastic_walls(x[a], m[a]);
          if (kHeated) m[a] = m[a] + p.heat * m0[a];
        }
        if (kHeated) m0[a] = m[a];
        kick_drift(x[a], m[a], mc, p.position_coef);
        const int idx = Coupling::index(i, a, TA);
        const operand_t fresh = Coupling::operand(x[a], kDiscrete);
        if (incremental_step) {
          // Only this thread writes its own operand entries, so the old sign (the one F
          // corresponds to) is still there.
          d[a] = static_cast<int8_t>(fresh - op[idx]);
          flips += d[a] != 0;
        }
        op[idx] = fresh;
      }
      if (incremental_step) {
#pragma unroll
        for (int a = 0; a < TA; ++a) delta[i * TA + a] = d[a];
      }
    }
    if (incremental_step) {
      // Every thread of the block gets here (blockDim.x is a multiple of 32), as the full
      // mask requires.
      const unsigned int rows = __ballot_sync(0xffffffffu, flips != 0);
      int count = flips;
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1)
        count += __shfl_xor_sync(0xffffffffu, count, offset);
      if (lane == 0) {
        rowmask[warp] = rows;
        warp_flips[warp] = count;
      }
    }
    __syncthreads();  // operand, deltas and masks complete

    bool recompute = true;
    if (incremental_step) {
      int64_t total = 0;
      for (int w = 0; w < warps; ++w) total += warp_flips[w];
      recompute = total > max_flips;  // the same value in every thread: a uniform branch
    }
    if (owns) {
      if (recompute) {
        c.template product<TA>(i, op, F);
      } else {
        for (int w = 0; w < warps; ++w) {
          unsigned int bits = rowmask[w];
          while (bits != 0u) {
            const int j = w * 32 + __ffs(static_cast<int>(bits)) - 1;
            bits &= bits - 1u;
            const field_t jij = c.entry(i, j);
            int8_t dj[TA];
            load_vec(delta + j * TA, dj);
#pragma unroll
            for (int a = 0; a < TA; ++a) {
              // As the CPU: F += J[i, j] * delta, multiply then add (no FMA), only where
              // agent a's sign changed.
              if (dj[a] != 0) F[a] = F[a] + jij * static_cast<field_t>(dj[a]);
            }
          }
        }
      }
    }
    __syncthreads();  // every read of the operand and the masks done before the next writes
  }

  if (owns) {
#pragma unroll
    for (int a = 0; a < TA; ++a) {
      m[a] = m[a] + q * static_cast<scalar_t>(F[a]);
      inelastic_walls(x[a], m[a]);
      if (kHeated) m[a] = m[a] + p.heat * m0[a];
      if (a < valid) {
        const int64_t e = static_cast<int64_t>(i) * p.agents + a0 + a;
        xs[e] = x[a];
        ms[e] = m[a];
      }
    }
  }
}

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
