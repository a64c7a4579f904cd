#pragma once
// dSB with an incremental local field on the GPU for problems above the persistent
// small-problem kernel (sb_small.cuh), dense float or int8 couplings: the GPU form of the
// CPU's agent-by-agent engine (csrc/sb/cpu/sb_discrete.h), and like it one launch per call.
//
// dSB couples through F = J @ sign(x), and after the first steps only a few signs flip per
// step (see sb_discrete.h and bench/RESULTS.md), so F is kept and
// corrected by one column of J per flip instead of being recomputed by a GEMM at every
// step. Agents never interact, so one block owns one agent for the whole call: it sweeps
// the agent's variables (finish the previous step, begin the next one, compare the signs),
// compacts the flips in ascending spin order into the agent's flip list, and then every
// thread adds the flipped columns to its rows of F. No grid-wide synchronisation, no
// launch per step, no host synchronisation; the state is transposed to agent-major
// buffers once per call so every sweep and every column read is coalesced.
//
// A step's corrections of F[i] are added in ascending spin order, multiply then add (as the
// CPU and sb_small.cuh), and only flips change F, so the walk is deterministic (no
// atomics). The caller computes the exact field of the call's initial signs (a GEMM); with
// integer weights the incremental field stays exact and the state equals the CPU's bit for
// bit, as the GEMM-per-step path's does.
//
// A step, in the order of the CPU's agent pass (update_block in sb_discrete.h):
//   [k > 0: m += q F; walls; m += heat m0]  m0 = m; kick-drift; s' = sign(x);
//   flips of s' vs s -> list; F += J[:, j] * (s'_j - s_j) for the listed j; s = s'
// and after the last step m += q F; walls; m += heat m0.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../../common/cuda/launch.cuh"
#include "../math.h"
#include "sb_incremental_kernel.cuh"

namespace sb_native {
namespace sb {
namespace cuda {

// SB_NATIVE_CUDA_DSB_FIELD=recompute keeps the GEMM-per-step path for dSB above the
// persistent kernel's size (benchmarks compare the two; bench/gpu_check.py).
inline bool incremental_dsb_field() {
  const char* value = std::getenv("SB_NATIVE_CUDA_DSB_FIELD");
  return value == nullptr || std::strcmp(value, "recompute") != 0;
}

// Runs num_steps dSB steps of the (n, agents) state with the incremental field.
// columns: J's columns contiguous (columns[j * n + i] = J[i, j]), column_t scalar_t or
// int8; initial(signs): F = J @ signs for the initial signs sign(position), (n, agents) in
// scalar_t, as an (n, agents) tensor of field_t (scalar_t, or int32 in units of the int8
// coupling's scale), exact on integer weights; q: the coefficient of F in the momentum
// update. The kernel's signs are the ones the field was computed from, as on the CPU.
template <typename scalar_t, typename column_t, typename field_t, typename Initial>
void run_incremental(const at::Tensor& columns, Initial initial, at::Tensor& position,
                     at::Tensor& momentum, int64_t start_step, int64_t num_steps,
                     double time_step, double pressure_slope, double q, double heat) {
  const int64_t n = position.size(0), agents = position.size(1);
  TORCH_CHECK_VALUE(agents <= 0x7fffffff, "position has ", agents,
                    " agents, more than the CUDA kernel's grid supports");
  TORCH_CHECK_VALUE(n < (int64_t(1) << 28), "position has ", n,
                    " variables, more than the incremental CUDA kernel supports");
  const at::Tensor signs = at::sign(position);
  at::Tensor F = initial(signs).t().contiguous();
  at::Tensor s = signs.t().to(at::kChar).contiguous();
  const bool heated = heat != 0.0;
  at::Tensor x = position.t().contiguous();
  at::Tensor m = momentum.t().contiguous();
  at::Tensor m0 = heated ? at::empty_like(x) : at::Tensor();
  at::Tensor flips = at::empty({agents, n}, x.options().dtype(at::kInt));
  const AgentArgs<scalar_t, column_t, field_t> args{
      x.data_ptr<scalar_t>(),      m.data_ptr<scalar_t>(),
      heated ? m0.data_ptr<scalar_t>() : nullptr,
      s.data_ptr<int8_t>(),        F.data_ptr<field_t>(),
      flips.data_ptr<int32_t>(),   columns.data_ptr<column_t>(),
      n,                           start_step,
      num_steps,                   time_step,
      pressure_slope,              static_cast<scalar_t>(q),
      static_cast<scalar_t>(heat), static_cast<scalar_t>(time_step)};
  const int threads = static_cast<int>(
      std::min<int64_t>(kAgentThreads, std::max<int64_t>(32, (n + 31) / 32 * 32)));
  const auto stream = at::cuda::getCurrentCUDAStream();
  auto kernel = heated ? agent_run_kernel<scalar_t, column_t, field_t, true>
                       : agent_run_kernel<scalar_t, column_t, field_t, false>;
  common::cuda::launch(kernel, static_cast<unsigned int>(agents), threads, 0, stream, args);
  position.copy_(x.t());
  momentum.copy_(m.t());
}

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
