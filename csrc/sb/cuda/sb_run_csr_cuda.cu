// sb_run_csr on the GPU: the SB schedule with the coupling matrix in CSR form. Each step
// is ONE kernel: a row-parallel SpMM (one block per row, threads over agents, so the f(x)
// rows of the non-zeros are read coalesced) whose epilogue finishes the step on that row
// (m += q * acc, walls, heating) and starts the next one (save m0, kick-drift, f(x)), the
// same fusion as the CPU's two passes. Blocks read f(x) of every row while writing their
// own, so f(x) is double-buffered: for dSB the sign buffer alternates, for bSB (f(x) = x)
// the position itself alternates with a scratch copy.

#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "../checks.h"
#include "sb_loop.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

template <typename scalar_t>
struct CsrStep {
  const int64_t* crow;
  const int64_t* col;
  const scalar_t* values;
  const scalar_t* f_in;   // f(x) of the drift of this step, every row
  scalar_t* f_out;        // f(x) of the next step's drift (dSB only)
  const scalar_t* x_in;   // position after this step's drift
  scalar_t* x_out;        // position at the end of this step / after the next drift
  scalar_t* m;
  scalar_t* m0;           // nullptr when not heated
  int64_t agents;
};

template <typename scalar_t, bool kDiscrete, bool kHeated>
__global__ void csr_step_kernel(CsrStep<scalar_t> p, scalar_t q, scalar_t heat, bool has_next,
                                scalar_t momentum_coef, scalar_t position_coef) {
  const int64_t i = blockIdx.x;
  const int64_t begin = p.crow[i];
  const int64_t end = p.crow[i + 1];
  const int64_t stride = static_cast<int64_t>(gridDim.y) * blockDim.x;
  for (int64_t a = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; a < p.agents;
       a += stride) {
    // Same summation order as the CPU kernel (non-zeros in CSR order), so the product
    // matches it bit for bit.
    scalar_t acc = 0;
    for (int64_t k = begin; k < end; ++k) acc += p.values[k] * p.f_in[p.col[k] * p.agents + a];
    const int64_t e = i * p.agents + a;
    scalar_t x = p.x_in[e];
    scalar_t m = p.m[e] + q * acc;
    inelastic_walls(x, m);
    if (kHeated) m = m + heat * p.m0[e];
    if (has_next) {
      if (kHeated) p.m0[e] = m;
      kick_drift(x, m, momentum_coef, position_coef);
      if (kDiscrete) p.f_out[e] = sign_of(x);
    }
    p.x_out[e] = x;
    p.m[e] = m;
  }
}

template <typename scalar_t>
void run_csr(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
             at::Tensor& position, at::Tensor& momentum, int64_t start_step, int64_t num_steps,
             double time_step, double pressure_slope, double quadratic_coef, double heat_coef,
             bool discrete) {
  const int64_t rows = position.size(0);
  const int64_t agents = position.size(1);
  const bool heated = heat_coef != 0.0;
  const scalar_t h = static_cast<scalar_t>(heat_coef);
  const scalar_t q = static_cast<scalar_t>(quadratic_coef);
  at::Tensor m0 = heated ? at::empty_like(momentum) : at::Tensor();
  scalar_t* m0_p = heated ? m0.data_ptr<scalar_t>() : nullptr;
  // Ping-pong buffers: step k reads index k % 2 and writes index (k + 1) % 2.
  at::Tensor scratch = at::empty_like(position);
  at::Tensor signs = discrete ? at::empty_like(position) : at::Tensor();
  scalar_t* xs[2] = {position.data_ptr<scalar_t>(), position.data_ptr<scalar_t>()};
  scalar_t* fs[2] = {nullptr, nullptr};
  if (discrete) {
    fs[0] = signs.data_ptr<scalar_t>();
    fs[1] = scratch.data_ptr<scalar_t>();
  } else {
    xs[1] = scratch.data_ptr<scalar_t>();
    fs[0] = xs[0];
    fs[1] = xs[1];
  }
  auto coef = [&](int64_t k) {
    return static_cast<scalar_t>(momentum_coefficient(time_step, start_step + k, pressure_slope));
  };
  const scalar_t dt = static_cast<scalar_t>(time_step);
  // First pass of step 0 (nothing to finish yet); every later first pass is fused.
  const cuda::SBState<scalar_t> s{xs[0], momentum.data_ptr<scalar_t>(),
                                  discrete ? fs[0] : nullptr, m0_p, nullptr, position.numel()};
  cuda::launch_pre_coupling<scalar_t>(s, discrete, heated, false, q, h, coef(0), dt);

  const int threads = static_cast<int>(std::min<int64_t>(cuda::kThreads, (agents + 31) / 32 * 32));
  const int64_t tiles = std::min<int64_t>((agents + threads - 1) / threads, 65535);
  const dim3 grid(static_cast<unsigned int>(rows), static_cast<unsigned int>(tiles));
  const auto stream = at::cuda::getCurrentCUDAStream();
  auto kernel = discrete ? (heated ? csr_step_kernel<scalar_t, true, true>
                                   : csr_step_kernel<scalar_t, true, false>)
                         : (heated ? csr_step_kernel<scalar_t, false, true>
                                   : csr_step_kernel<scalar_t, false, false>);
  for (int64_t k = 0; k < num_steps; ++k) {
    const bool has_next = k + 1 < num_steps;
    const CsrStep<scalar_t> p{crow.data_ptr<int64_t>(), col.data_ptr<int64_t>(),
                              values.data_ptr<scalar_t>(), fs[k % 2], fs[(k + 1) % 2],
                              xs[k % 2], xs[(k + 1) % 2], momentum.data_ptr<scalar_t>(),
                              m0_p, agents};
    cuda::launch(kernel, grid, threads, 0, stream, p, q, h, has_next,
                 has_next ? coef(k + 1) : scalar_t(0), dt);
  }
  // bSB after an odd number of steps ends in the scratch buffer.
  if (xs[num_steps % 2] != xs[0]) position.copy_(scratch);
}

void sb_run_csr_cuda(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                     at::Tensor& position, at::Tensor& momentum, int64_t start_step,
                     int64_t num_steps, double time_step, double pressure_slope,
                     double quadratic_coef, double heat_coef, bool discrete) {
  check_state(position, momentum);
  check_csr_coupling(crow, col, values, position);
  check_csr_apart(crow, col, values, position, "position");
  check_csr_apart(crow, col, values, momentum, "momentum");
  check_steps(start_step, num_steps);
  const at::cuda::CUDAGuard guard(position.device());
  if (position.numel() == 0 || num_steps == 0) return;
  TORCH_CHECK_VALUE(position.size(0) <= INT32_MAX, "position has ", position.size(0),
                    " variables, more than the CUDA kernel's grid supports (", INT32_MAX, ")");
  // One reduction and one read-back per call, amortised over the call's steps.
  check_csr_structure(crow, col, position.size(0), c10::str(position.size(0), " variables"));
  if (discrete) check_finite_for_dsb(values, "values");
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_csr_cuda", [&] {
    run_csr<scalar_t>(crow, col, values, position, momentum, start_step, num_steps, time_step,
                      pressure_slope, quadratic_coef, heat_coef, discrete);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_run_csr", &sb_run_csr_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
