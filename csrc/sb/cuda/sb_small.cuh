#pragma once
// The persistent small-problem kernel of sb_run and sb_run_int8: a whole call (num_steps
// steps) in ONE launch, for problems with at most kSmallMaxN variables.
//
// Why a persistent kernel and not a CUDA graph: agents never interact, so a block that owns
// a tile of agents (all n variables of each) can run every step of the call on its own,
// with __syncthreads() between the product and the update and no grid-wide
// synchronisation. A graph would still replay one or two launches per step, and since the
// schedule's coefficients change every step it would need device-side step indices.
//
// Layout of a block:
//   * one thread per variable: thread i owns row i of the block's TA agents, keeping x, m,
//     m0 (heated) and the local field F of those TA elements in registers for the whole
//     call; the state is read from global memory once at the start and written back once
//     at the end.
//   * shared memory holds f(x) of the tile (all n rows x TA agents): the operand of the
//     product, written by its row's thread, read by every thread. It is single-buffered:
//     two barriers per step (after the writes, after the reads) instead of one with a
//     double buffer; a barrier costs far less than the n x n product between them and the
//     halved footprint keeps every variant in the default 48 KB (no opt-in needed).
//   * the coupling is read from global memory (L2, and L1 where it fits) transposed, so the
//     threads of a warp (consecutive rows i) read consecutive addresses of column j.
//
// A step, in the order of the GEMM path (sb_loop.cuh) and the CPU (sb_loop.h,
// sb_discrete.h), with the shared SBN_HD math of csrc/sb/math.h:
//   [k > 0: m += q F; walls; m += heat m0]  m0 = m; kick-drift; f(x) -> shared
//   __syncthreads()
//   F = J @ f(x)  (full product, or dSB's incremental corrections)
//   __syncthreads()
// and after the last step m += q F; walls; m += heat m0. The momentum coefficient of step
// start_step + k is computed on the device with the same double-precision
// momentum_coefficient() as the host, then cast to scalar_t as the host does, so the
// per-element arithmetic is the GEMM path's bit for bit (setup.py's --fmad=false).
//
// dSB keeps an INCREMENTAL local field, like the CPU's sb_discrete.h: step 0 of every call
// computes F exactly with the full product; afterwards each step compares the new signs
// with the ones F corresponds to (in shared memory), stores delta = new sign - old sign
// (+-1, +-2) per element, and marks each row with a flip in a per-warp bit mask (a warp
// ballot: bit b of word w is row 32 w + b). If the tile's flips exceed a fraction of its
// elements, F is recomputed with the full product; otherwise every thread walks the marked
// rows j in ascending order and adds J[i, j] * delta[j, a] to F[i, a] for the agents a whose
// sign flipped. Ascending j is the CPU's order of corrections, the walk is deterministic
// (no atomics), and with integer weights the field is exact whatever the order.
//
// Coupling policies (sb_small_coupling.cuh): DenseCoupling (float J, f(x) = x for bSB,
// sign(x) for dSB, field in scalar_t) and Int8Coupling (J = scale * K, K int8, int8 signs,
// int32 field, products by __dp4a on four packed columns, exact).
//
// A batch of problems of one size (sb_run_batched, dense couplings) runs in the same single
// launch: the flat grid holds every problem's agent tiles, a block finds its problem from
// blockIdx.x, offsets the state and the coupling to that problem's, takes its coefficient
// q from a per-problem array and leaves at once if the problem is inactive. A block's work
// is exactly that of the same tile of sb_run on the problem alone, so each problem's states
// are sb_run's bit for bit; a batch of many small problems fills the GPU where one alone
// has a handful of tiles.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "../../common/cuda/launch.cuh"
#include "../math.h"
#include "sb_small_coupling.cuh"
#include "sb_small_kernel.cuh"

namespace sb_native {
namespace sb {
namespace cuda {

// Agent tiles: 8 agents reuse each coupling load 8 times (about the balance of L2 bandwidth
// and FMA throughput in float32), 2 agents give 4x as many blocks. The small tile is used
// only when 8-agent tiles would leave most SMs idle AND the coupling fits in L1, where more
// blocks do not multiply the L2 traffic (each block reads the whole coupling every step).
constexpr int kWideTile = 8;
constexpr int kNarrowTile = 2;
constexpr int64_t kL1CouplingBytes = 96 * 1024;

// Default flip fraction (of the tile's elements) above which a dSB step recomputes F. A
// correction costs one coupling load per flipped row, the product one per row plus TA
// FMAs, so the break-even is near 1 / TA of the elements; half of it leaves margin for the
// walk over the masks. An estimate to be measured; SB_NATIVE_FLIP_CROSSOVER overrides it
// as it does on the CPU.
inline double small_flip_fraction(int tile) {
  const char* value = std::getenv("SB_NATIVE_FLIP_CROSSOVER");
  return value != nullptr ? std::atof(value) : 0.5 / tile;
}

// The largest n that takes the persistent kernel: kSmallMaxN, or less with
// SB_NATIVE_CUDA_PERSISTENT_MAX_N (0 = always the GEMM path; for benchmarks and tests).
inline int64_t small_max_n() {
  const char* value = std::getenv("SB_NATIVE_CUDA_PERSISTENT_MAX_N");
  if (value == nullptr || *value == '\0') return kSmallMaxN;
  return std::max<int64_t>(0, std::min<int64_t>(kSmallMaxN, std::atoll(value)));
}

// The problems a launch covers: one for sb_run and sb_run_int8 (the defaults), the batch of
// sb_run_batched (device arrays of problems entries, contiguous).
struct SmallProblems {
  int64_t count = 1;
  const bool* active = nullptr;  // nullptr: every problem runs
  const double* q = nullptr;     // nullptr: the launch's q for every problem
};

// Picks the tile, checks the shared memory, launches the template variant on the current
// stream. position and momentum are (n, agents), or (problems, n, agents) for a batch.
// Returns false (nothing launched) when the block or the grid would not fit, so the caller
// falls back to the large-problem paths.
template <typename scalar_t, typename Coupling>
bool launch_small(const Coupling& coupling, int64_t coupling_bytes, at::Tensor& position,
                  at::Tensor& momentum, int64_t start_step, int64_t num_steps, double time_step,
                  double pressure_slope, double q, double heat, bool discrete,
                  const SmallProblems& problems = {}) {
  const int64_t n = position.size(-2);
  const int64_t agents = position.size(-1);
  const cudaDeviceProp* props = at::cuda::getCurrentDeviceProperties();
  const int64_t sms = props->multiProcessorCount;
  // Every problem's tiles share the GPU, so the narrow tile is for few tiles in all.
  const bool few_wide_tiles = problems.count * ((agents + kWideTile - 1) / kWideTile) < sms;
  const int tile =
      few_wide_tiles && coupling_bytes <= kL1CouplingBytes ? kNarrowTile : kWideTile;
  const SmallLayout layout =
      small_layout(Coupling::operand_bytes(n, tile), n, tile, discrete);
  if (layout.total > static_cast<int64_t>(props->sharedMemPerBlock)) return false;
  const int threads = static_cast<int>(round_up_to(std::max<int64_t>(n, 1), 32));
  const int64_t tiles = (agents + tile - 1) / tile;
  // The flat grid's x dimension holds up to 2^31 - 1 blocks.
  if (threads > kSmallMaxThreads || tiles > 0x7fffffff / problems.count) return false;
  const int64_t blocks = problems.count * tiles;

  const bool heated = heat != 0.0;
  SmallArgs<scalar_t> args{position.data_ptr<scalar_t>(),
                           momentum.data_ptr<scalar_t>(),
                           agents,
                           start_step,
                           num_steps,
                           time_step,
                           pressure_slope,
                           small_flip_fraction(tile),
                           static_cast<scalar_t>(q),
                           static_cast<scalar_t>(heat),
                           static_cast<scalar_t>(time_step),
                           layout,
                           n * agents,
                           problems.active,
                           problems.q};
  const auto stream = at::cuda::getCurrentCUDAStream();
  const size_t shared = static_cast<size_t>(layout.total);
  auto launch = [&](auto kernel) {
    common::cuda::launch(kernel, static_cast<unsigned int>(blocks), threads, shared, stream, args,
                         coupling);
  };
  // The template flags: tile x dSB x heated.
  auto by_flags = [&](auto tile_constant) {
    constexpr int TA = decltype(tile_constant)::value;
    if (discrete || Coupling::kDiscreteOnly) {
      if (heated) launch(small_run_kernel<scalar_t, Coupling, TA, true, true>);
      else launch(small_run_kernel<scalar_t, Coupling, TA, true, false>);
    } else if constexpr (!Coupling::kDiscreteOnly) {
      if (heated) launch(small_run_kernel<scalar_t, Coupling, TA, false, true>);
      else launch(small_run_kernel<scalar_t, Coupling, TA, false, false>);
    }
  };
  if (tile == kWideTile) by_flags(std::integral_constant<int, kWideTile>{});
  else by_flags(std::integral_constant<int, kNarrowTile>{});
  return true;
}

// sb_run with a dense float coupling: true when the persistent kernel ran the call.
template <typename scalar_t>
bool small_run_dense(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                     int64_t start_step, int64_t num_steps, double time_step,
                     double pressure_slope, double quadratic_coef, double heat, bool discrete) {
  const int64_t n = position.size(0);
  if (n > small_max_n()) return false;
  const at::Tensor jt = J.t().contiguous();  // jt[j, i] = J[i, j]
  const DenseCoupling<scalar_t> coupling{jt.data_ptr<scalar_t>(), static_cast<int>(n), n * n};
  return launch_small<scalar_t>(coupling, n * n * static_cast<int64_t>(sizeof(scalar_t)),
                                position, momentum, start_step, num_steps, time_step,
                                pressure_slope, quadratic_coef, heat, discrete);
}

// sb_run_batched's problems in one launch, J (B, n, n) and states (B, n, agents), all
// contiguous but J; active (B,) bool and quadratic_coef (B,) float64, contiguous, on the
// device. True when the persistent kernel ran the call.
template <typename scalar_t>
bool small_run_dense_batched(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
                             const at::Tensor& active, const at::Tensor& quadratic_coef,
                             int64_t start_step, int64_t num_steps, double time_step,
                             double pressure_slope, double heat, bool discrete) {
  const int64_t n = position.size(1);
  if (n > small_max_n()) return false;
  const at::Tensor jt = J.transpose(1, 2).contiguous();  // jt[b, j, i] = J[b, i, j]
  const DenseCoupling<scalar_t> coupling{jt.data_ptr<scalar_t>(), static_cast<int>(n), n * n};
  const SmallProblems problems{position.size(0), active.data_ptr<bool>(),
                               quadratic_coef.data_ptr<double>()};
  // q is unused: every problem takes its own from problems.q.
  return launch_small<scalar_t>(coupling, n * n * static_cast<int64_t>(sizeof(scalar_t)), position,
                                momentum, start_step, num_steps, time_step, pressure_slope, 0.0,
                                heat, discrete, problems);
}

// sb_run_int8 (always dSB): true when the persistent kernel ran the call.
template <typename scalar_t>
bool small_run_int8(const at::Tensor& K, double scale, at::Tensor& position,
                    at::Tensor& momentum, int64_t start_step, int64_t num_steps,
                    double time_step, double pressure_slope, double quadratic_coef,
                    double heat) {
  const int64_t n = position.size(0);
  if (n > small_max_n()) return false;
  const int64_t n4 = round_up_to(n, 4);
  // k4 bytes [j / 4][i][j % 4] = K[i, j], i.e. int32 words [j / 4][i]; zero past column n.
  at::Tensor padded = at::zeros({n, n4}, K.options().dtype(at::kChar));
  padded.narrow(1, 0, n).copy_(K);
  const at::Tensor k4 =
      padded.view({n, n4 / 4, 4}).permute({1, 0, 2}).contiguous().view(at::kInt);
  const Int8Coupling coupling{k4.data_ptr<int32_t>(), static_cast<int>(n)};
  // The coupling's scale is folded into q, as on the GEMM path and the CPU.
  return launch_small<scalar_t>(coupling, n4 * n, position, momentum, start_step, num_steps,
                                time_step, pressure_slope, quadratic_coef * scale, heat, true);
}

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
