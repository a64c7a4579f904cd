#pragma once
// The CUDA symplectic-Euler loop with a dense coupling. A step is the product
// F = J @ f(x) (ATen's mm, i.e. cuBLAS) and one fused elementwise kernel:
//   pre_coupling : [m += q * F, walls, heating: the rest of the previous step], save m0,
//                  kick-drift, f(x)
//   finish_step  : m += q * F, walls, heating; launched only after the last step of a call
// so each step sweeps the state once outside the product, as on the CPU (sb_loop.h,
// sb_discrete.h). The per-element arithmetic is the shared SBN_HD code of csrc/sb/math.h
// composed in the CPU's order; with --fmad=false (setup.py) each element's update equals
// the CPU's bit for bit given the same F, and F is exact for dSB on integer weights.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <utility>

#include "../../common/cuda/launch.cuh"
#include "../math.h"

namespace sb_native {
namespace sb {
namespace cuda {

// The launch helpers every algorithm shares (common/cuda/launch.cuh), for the SB kernels.
using common::cuda::grid_for;
using common::cuda::launch;
using common::cuda::kThreads;

template <typename scalar_t>
struct SBState {
  scalar_t* x;
  scalar_t* m;
  scalar_t* fx;           // sign(x) for dSB; unused (nullptr) for bSB, where f(x) = x
  scalar_t* m0;           // momentum at the start of the step, for heating; nullptr when not heated
  const scalar_t* field;  // F = J @ f(x) of the step being finished
  int64_t numel;
};

template <typename scalar_t, bool kDiscrete, bool kHeated>
__global__ void pre_coupling_kernel(SBState<scalar_t> s, bool finish_previous, scalar_t q,
                                    scalar_t heat, scalar_t momentum_coef,
                                    scalar_t position_coef) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < s.numel;
       i += stride) {
    scalar_t x = s.x[i];
    scalar_t m = s.m[i];
    if (finish_previous) {
      m = m + q * s.field[i];
      inelastic_walls(x, m);
      if (kHeated) m = m + heat * s.m0[i];
    }
    if (kHeated) s.m0[i] = m;
    kick_drift(x, m, momentum_coef, position_coef);
    s.x[i] = x;
    s.m[i] = m;
    if (kDiscrete) s.fx[i] = sign_of(x);
  }
}

template <typename scalar_t, bool kHeated>
__global__ void finish_step_kernel(SBState<scalar_t> s, scalar_t q, scalar_t heat) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < s.numel;
       i += stride) {
    scalar_t x = s.x[i];
    scalar_t m = s.m[i] + q * s.field[i];
    inelastic_walls(x, m);
    if (kHeated) m = m + heat * s.m0[i];
    s.x[i] = x;
    s.m[i] = m;
  }
}

// Launch helpers dispatching the runtime flags to the kernels' template flags. Both run
// on the current stream, like the ATen GEMM between them, so no synchronisation is needed.
// s.field is only read when finishing a step, so a first pass may leave it null.
template <typename scalar_t>
void launch_pre_coupling(const SBState<scalar_t>& s, bool discrete, bool heated,
                         bool finish_previous, scalar_t q, scalar_t heat,
                         scalar_t momentum_coef, scalar_t position_coef) {
  const auto stream = at::cuda::getCurrentCUDAStream();
  const unsigned int grid = grid_for(s.numel);
  auto kernel = discrete ? (heated ? pre_coupling_kernel<scalar_t, true, true>
                                   : pre_coupling_kernel<scalar_t, true, false>)
                         : (heated ? pre_coupling_kernel<scalar_t, false, true>
                                   : pre_coupling_kernel<scalar_t, false, false>);
  launch(kernel, grid, kThreads, 0, stream, s, finish_previous, q, heat, momentum_coef,
         position_coef);
}

template <typename scalar_t>
void launch_finish_step(const SBState<scalar_t>& s, bool heated, scalar_t q, scalar_t heat) {
  const auto stream = at::cuda::getCurrentCUDAStream();
  const unsigned int grid = grid_for(s.numel);
  auto kernel = heated ? finish_step_kernel<scalar_t, true> : finish_step_kernel<scalar_t, false>;
  launch(kernel, grid, kThreads, 0, stream, s, q, heat);
}

// Runs num_steps steps with the dense coupling J; coefs(k) gives {momentum_coef,
// position_coef} of the k-th step of this call. fx is position itself for bSB.
template <typename scalar_t, typename Coefs>
void run_dense(const at::Tensor& J, at::Tensor& position, at::Tensor& momentum,
               int64_t num_steps, double quadratic_coef, double heat, bool discrete,
               Coefs coefs) {
  const bool heated = heat != 0.0;
  at::Tensor fx = discrete ? at::empty_like(position) : position;
  at::Tensor field = at::empty_like(position);
  at::Tensor m0 = heated ? at::empty_like(momentum) : at::Tensor();
  const SBState<scalar_t> s{position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(),
                            discrete ? fx.data_ptr<scalar_t>() : nullptr,
                            heated ? m0.data_ptr<scalar_t>() : nullptr,
                            field.data_ptr<scalar_t>(), position.numel()};
  const scalar_t q = static_cast<scalar_t>(quadratic_coef);
  const scalar_t h = static_cast<scalar_t>(heat);
  for (int64_t k = 0; k < num_steps; ++k) {
    const std::pair<double, double> c = coefs(k);
    launch_pre_coupling<scalar_t>(s, discrete, heated, k > 0, q, h,
                                  static_cast<scalar_t>(c.first),
                                  static_cast<scalar_t>(c.second));
    at::mm_out(field, J, fx);
  }
  if (num_steps > 0) launch_finish_step<scalar_t>(s, heated, q, h);
}

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
