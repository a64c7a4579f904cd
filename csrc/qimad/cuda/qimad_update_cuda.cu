// qimad_update on the GPU: one QIMADTorch step of the agents in rows over the flat
// (agents, parameters) swarm. Synchronous, everything that reads other agents' positions is
// computed before theta is written:
//   1. the index tensors come to the host in one copy, the op's only synchronisation: they
//      are validated with the CPU kernel's checks (same messages), and their segment bounds
//      decide the GEMMs of step 2;
//   2. wsum and the communication input mix = W[seg_w][rows] @ theta through ATen (cuBLAS),
//      as in the CPU kernel's large-swarm path;
//   3. the jump scales, one block per (tunnelling agent, segment): mean |theta| from the
//      pre-step positions, a fixed-order tree reduction accumulated in double like the CPU's;
//   4. one fused elementwise kernel over (rows, parameters): RMSProp state, swarm_delta, the
//      jump and the clip to the box (with bounds), the per-element math of csrc/qimad/math.h
//      in the CPU kernel's order.
// All launches and GEMMs run on the current stream, so each sees the previous one's results;
// the fused kernel reads and writes only its own element of theta, so updating in place
// keeps the step synchronous.
// Sequential (the reference's order), step 2 is skipped and step 4 is one thread per column
// walking the rows in order: a row's communication input reads the column as the same thread
// has left it, so it sees the rows moved before it; the jump scales still come from the
// pre-step positions, as each agent's own row is untouched before its turn.

#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "../../common/cuda/launch.cuh"
#include "../checks.h"
#include "../math.h"
#include "../mix.h"

namespace sb_native {
namespace qimad {
namespace cuda {
namespace {

using common::cuda::grid_for;
using common::cuda::launch;
using common::cuda::kThreads;

constexpr int kScaleThreads = 256;  // a power of two: the tree reduction halves it
constexpr int64_t kMaxScaleBlocks = 65535;

// The segment holding column c: the last s with seg[s] <= c, i.e. the CPU kernel's
// upper_bound(seg, seg + ns + 1, c) - 1, which skips empty segments.
__device__ __forceinline__ int64_t segment_of(const int64_t* seg, int64_t ns, int64_t c) {
  int64_t lo = 0, hi = ns;  // seg[lo] <= c < seg[hi], since seg[0] = 0 and seg[ns] = p
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (seg[mid] <= c) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// scale[t, s] = jump_scale(mean |theta[tunnel_rows[t], segment s]|), one block per (t, s).
template <typename scalar_t>
__global__ void jump_scales_kernel(const scalar_t* theta, const int64_t* tunnel_rows,
                                   const int64_t* seg, int64_t nt, int64_t ns, int64_t p,
                                   scalar_t temperature, scalar_t* scale) {
  // double for float too, as the CPU kernel: a segment may hold millions of parameters.
  using acc_t = at::acc_type<scalar_t, /*is_cuda=*/false>;
  SBN_SHARED(acc_t, partial, [kScaleThreads]);
  for (int64_t q = blockIdx.x; q < nt * ns; q += gridDim.x) {
    const int64_t t = q / ns, s = q % ns, width = seg[s + 1] - seg[s];
    const scalar_t* x = theta + tunnel_rows[t] * p + seg[s];
    acc_t sum = 0;
    for (int64_t c = threadIdx.x; c < width; c += kScaleThreads) {
      sum += fabs(static_cast<acc_t>(x[c]));
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = kScaleThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) {  // an empty segment has no column to jump: its scale stays 0
      scale[q] = width == 0 ? scalar_t(0)
                            : qimad::jump_scale(static_cast<scalar_t>(partial[0] / width),
                                                temperature);
    }
    __syncthreads();  // partial is reused by the block's next (t, s)
  }
}

template <typename scalar_t>
struct StepArgs {
  scalar_t* theta;           // (agents, P)
  scalar_t* square_avg;      // (shard rows, P): the agents from first on
  const scalar_t* grad;      // (shard rows, P)
  const scalar_t* best;      // (P)
  const scalar_t* mix;       // (rows, P): W[seg_w][rows] @ theta, pre-step; null if sequential
  const scalar_t* W;         // (matrices, agents, agents)
  const scalar_t* wsum;      // (matrices, rows): row sums of W[.][rows]
  const scalar_t* attract;   // (agents)
  const scalar_t* eta;       // (segments)
  const scalar_t* gamma;     // (segments)
  const scalar_t* noise;     // (tunnel rows, P): U(0, 1) draws
  const scalar_t* scale;     // (tunnel rows, segments)
  const scalar_t* lower;     // (P): the box's lower bounds, or null without bounds
  const scalar_t* upper;     // (P)
  const int64_t* rows;       // (rows)
  const int64_t* seg;        // (segments + 1)
  const int64_t* seg_w;      // (segments)
  const int64_t* tunnel_of;  // (rows): the tunnel_noise row of each updated row, or -1
  int64_t n, nr, p, ns, first;
  scalar_t decay, eps, temperature;
};

// Row k's (agent rows[k]'s) coordinate c in segment s, given its communication input mix.
template <typename scalar_t>
__device__ __forceinline__ void update_element(const StepArgs<scalar_t>& a, int64_t k,
                                               int64_t c, int64_t s, scalar_t mix) {
  const int64_t i = a.rows[k], ix = i * a.p + c, own = (i - a.first) * a.p + c;
  const scalar_t g = a.grad[own];
  const scalar_t v = qimad::square_avg(a.square_avg[own], g, a.decay);
  a.square_avg[own] = v;
  const scalar_t x = a.theta[ix];
  scalar_t next = x + qimad::swarm_delta(x, g, std::sqrt(v), a.best[c], mix,
                                         a.wsum[a.seg_w[s] * a.nr + k], a.eta[s], a.gamma[s],
                                         a.attract[i], a.eps);
  const int64_t t = a.tunnel_of[k];
  if (t >= 0) {
    const scalar_t scale = a.scale[t * a.ns + s];
    next = next + qimad::jump(a.noise[t * a.p + c],
                              a.lower == nullptr ? scale
                                                 : qimad::box_jump_scale(a.lower[c], a.upper[c],
                                                                         scale, a.temperature));
  }
  if (a.lower != nullptr) next = qimad::clip(next, a.lower[c], a.upper[c]);
  a.theta[ix] = next;
}

template <typename scalar_t>
__global__ void swarm_step_kernel(StepArgs<scalar_t> a) {
  const int64_t numel = a.nr * a.p;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < numel;
       e += stride) {
    const int64_t k = e / a.p, c = e - k * a.p;
    update_element(a, k, c, segment_of(a.seg, a.ns, c), a.mix[e]);
  }
}

// The sequential update: one thread per column; the input is summed with fused multiply-adds
// in agent order, as the CPU kernel's mix_run.
template <typename scalar_t>
__global__ void sequential_step_kernel(StepArgs<scalar_t> a) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < a.p;
       c += stride) {
    const int64_t s = segment_of(a.seg, a.ns, c);
    const scalar_t* W_s = a.W + a.seg_w[s] * a.n * a.n;
    for (int64_t k = 0; k < a.nr; ++k) {
      const scalar_t* w = W_s + a.rows[k] * a.n;
      scalar_t mix = 0;
      for (int64_t j = 0; j < a.n; ++j) mix = fma(w[j], a.theta[j * a.p + c], mix);
      update_element(a, k, c, s, mix);
    }
  }
}

void qimad_update_cuda(at::Tensor& theta, at::Tensor& square_avg, const at::Tensor& grad,
                       const at::Tensor& best, const at::Tensor& W, const at::Tensor& rows,
                       const at::Tensor& attract, const at::Tensor& segments,
                       const at::Tensor& seg_eta, const at::Tensor& seg_gamma,
                       const at::Tensor& seg_w, const at::Tensor& tunnel_rows,
                       const at::Tensor& tunnel_noise, double temperature, double rms_decay,
                       double eps, bool sequential, const std::optional<at::Tensor>& bounds,
                       int64_t first) {
  check_update_args(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta, seg_gamma,
                    seg_w, tunnel_rows, tunnel_noise, bounds, first);
  const at::cuda::CUDAGuard guard(theta.device());
  const int64_t n = theta.size(0), p = theta.size(1), nr = rows.numel();
  const int64_t ns = segments.numel() - 1, nt = tunnel_rows.numel();
  const at::Tensor host = at::cat({rows, segments, seg_w, tunnel_rows}).cpu();
  const at::Tensor host_rows = host.narrow(0, 0, nr);
  const at::Tensor host_seg = host.narrow(0, nr, ns + 1);
  const at::Tensor host_seg_w = host.narrow(0, nr + ns + 1, ns);
  const at::Tensor host_tunnel_rows = host.narrow(0, nr + 2 * ns + 1, nt);
  const std::vector<int64_t> tunnel_of =
      check_indices(host_rows, host_seg, host_seg_w, host_tunnel_rows, first,
                    first + square_avg.size(0), p, W.size(0));
  if (nr == 0 || p == 0) return;

  const at::Tensor W_rows = W.index_select(1, rows).contiguous();  // (matrices, rows, agents)
  const at::Tensor wsum = W_rows.sum(2);                          // (matrices, rows)
  const at::Tensor mix =
      sequential ? at::Tensor()
                 : communication_input(theta, W_rows, host_seg.data_ptr<int64_t>(),
                                       host_seg_w.data_ptr<int64_t>(), ns);
  const at::Tensor tunnel_of_dev = common::cuda::upload(tunnel_of, theta.device());
  const auto stream = at::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES(theta.scalar_type(), "qimad_update_cuda", [&] {
    at::Tensor scale = at::empty({nt, ns}, theta.options());
    if (nt > 0) {
      const auto blocks = static_cast<unsigned int>(std::min(nt * ns, kMaxScaleBlocks));
      launch(jump_scales_kernel<scalar_t>, blocks, kScaleThreads, 0, stream,
             theta.data_ptr<scalar_t>(), tunnel_rows.data_ptr<int64_t>(),
             segments.data_ptr<int64_t>(), nt, ns, p, static_cast<scalar_t>(temperature),
             scale.data_ptr<scalar_t>());
    }
    const StepArgs<scalar_t> args{
        theta.data_ptr<scalar_t>(),     square_avg.data_ptr<scalar_t>(),
        grad.data_ptr<scalar_t>(),      best.data_ptr<scalar_t>(),
        sequential ? nullptr : mix.data_ptr<scalar_t>(),
        W.data_ptr<scalar_t>(),         wsum.data_ptr<scalar_t>(),
        attract.data_ptr<scalar_t>(),   seg_eta.data_ptr<scalar_t>(),
        seg_gamma.data_ptr<scalar_t>(), tunnel_noise.data_ptr<scalar_t>(),
        scale.data_ptr<scalar_t>(),
        bounds.has_value() ? bounds->data_ptr<scalar_t>() : nullptr,
        bounds.has_value() ? bounds->data_ptr<scalar_t>() + p : nullptr,
        rows.data_ptr<int64_t>(),
        segments.data_ptr<int64_t>(),   seg_w.data_ptr<int64_t>(),
        tunnel_of_dev.data_ptr<int64_t>(),
        n, nr, p, ns, first, static_cast<scalar_t>(rms_decay), static_cast<scalar_t>(eps),
        static_cast<scalar_t>(temperature)};
    if (sequential) {
      launch(sequential_step_kernel<scalar_t>, grid_for(p), kThreads, 0, stream, args);
    } else {
      launch(swarm_step_kernel<scalar_t>, grid_for(nr * p), kThreads, 0, stream, args);
    }
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("qimad_update", &qimad_update_cuda); }

}  // namespace cuda
}  // namespace qimad
}  // namespace sb_native
