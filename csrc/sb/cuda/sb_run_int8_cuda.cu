// sb_run_int8 on the GPU: dSB on an integer coupling J = scale * K (K int8). Problems with
// at most kSmallMaxN variables run the whole call in one persistent launch (sb_small.cuh:
// int8 signs in shared memory, __dp4a products, incremental int32 field). Larger ones run
// it in one launch too (sb_incremental.cuh: one block per agent, the int32 field corrected
// by one int8 column per flip), starting from the exact field F = K @ sign(x) of an int8 x
// int8 -> int32 GEMM (ATen's _int_mm, cuBLASLt IMMA). Integer sums are exact in any order,
// so either way the state matches the CPU kernel's bit for bit.
//
// SB_NATIVE_CUDA_DSB_FIELD=recompute takes the tensor-core path instead, for benchmarks: the
// same GEMM at every step and one fused elementwise kernel, m += (q * scale) * F, walls,
// heating, save m0, kick-drift, sign(x) as int8.
//
// _int_mm wants M > 16, K and N multiples of 8, and runs its fast IMMA kernels with the
// right operand column-major. So K is zero-padded to n_pad x n_pad, the signs live
// transposed in an (agents_pad, n_pad) buffer passed as its column-major transpose, and the
// field is (n_pad, agents_pad) row-major; padding entries stay zero and are never read.
// The elementwise kernel transposes the signs through shared memory so both the state
// reads and the sign writes are coalesced.

#include <torch/library.h>

#include <cstdint>
#include <utility>

#include "../checks.h"
#include "sb_incremental.cuh"
#include "sb_loop.cuh"
#include "sb_small.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

constexpr int kTile = 32;    // a block covers kTile rows x kTile agents
constexpr int kTileRows = 8;  // threadIdx.y; each thread handles kTile / kTileRows rows

template <typename scalar_t>
struct Int8State {
  scalar_t* x;
  scalar_t* m;
  scalar_t* m0;            // nullptr when not heated
  int8_t* signs_t;         // sign(x), transposed: (agents_pad, n_pad)
  const int32_t* field;    // F = K @ sign(x): (n_pad, agents_pad)
  int64_t n, agents, n_pad, agents_pad;
};

// finish: the rest of the previous step (m += q F, walls, heating); start: the first half
// of the next one (save m0, kick-drift, signs). Same operation order as the CPU's
// agent pass (update_block in csrc/sb/cpu/sb_discrete.h).
template <typename scalar_t, bool kHeated>
__global__ void int8_pass_kernel(Int8State<scalar_t> s, bool finish, bool start, scalar_t q,
                                 scalar_t heat, scalar_t momentum_coef, scalar_t position_coef) {
  SBN_SHARED(int8_t, tile, [kTile][kTile + 1]);  // [agent][row]; +1 avoids bank conflicts
  const int64_t a0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t a = a0 + threadIdx.x;
  for (int r = threadIdx.y; r < kTile; r += kTileRows) {
    const int64_t i = i0 + r;
    if (i >= s.n || a >= s.agents) continue;
    const int64_t e = i * s.agents + a;
    scalar_t x = s.x[e];
    scalar_t m = s.m[e];
    if (finish) {
      m = m + q * static_cast<scalar_t>(s.field[i * s.agents_pad + a]);
      inelastic_walls(x, m);
      if (kHeated) m = m + heat * s.m0[e];
    }
    if (start) {
      if (kHeated) s.m0[e] = m;
      kick_drift(x, m, momentum_coef, position_coef);
      tile[threadIdx.x][r] = static_cast<int8_t>(sign_of(x));
    }
    s.x[e] = x;
    s.m[e] = m;
  }
  if (!start) return;  // uniform over the grid, so no thread skips the barrier alone
  __syncthreads();
  // Write the tile transposed: consecutive threads now cover consecutive rows.
  const int64_t i = i0 + threadIdx.x;
  for (int c = threadIdx.y; c < kTile; c += kTileRows) {
    const int64_t ac = a0 + c;
    if (i < s.n && ac < s.agents) s.signs_t[ac * s.n_pad + i] = tile[c][threadIdx.x];
  }
}

inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// The operands of F = K @ sign(x) padded for _int_mm (see the top of the file).
struct PaddedProduct {
  at::Tensor K_pad;    // (n_pad, n_pad) int8
  at::Tensor signs_t;  // (agents_pad, n_pad) int8, sign(x) transposed
  at::Tensor signs;    // signs_t.t(): (n_pad, agents_pad), column-major
  at::Tensor field;    // (n_pad, agents_pad) int32

  PaddedProduct(const at::Tensor& K, int64_t n, int64_t agents) {
    const int64_t n_pad = round_up(std::max<int64_t>(n, 17), 8);
    const int64_t agents_pad = round_up(agents, 8);
    const auto options = K.options();
    K_pad = at::zeros({n_pad, n_pad}, options);
    K_pad.narrow(0, 0, n).narrow(1, 0, n).copy_(K);
    signs_t = at::zeros({agents_pad, n_pad}, options);
    signs = signs_t.t();
    field = at::empty({n_pad, agents_pad}, options.dtype(at::kInt));
  }

  void multiply() { at::_int_mm_out(field, K_pad, signs); }
};

// The incremental path: the exact field of the initial signs, then the whole call in one
// launch with the int8 columns of K.
template <typename scalar_t>
void run_int8_incremental(const at::Tensor& K, double scale, at::Tensor& position,
                          at::Tensor& momentum, int64_t start_step, int64_t num_steps,
                          double time_step, double pressure_slope, double quadratic_coef,
                          double heat_coef) {
  const int64_t n = position.size(0), agents = position.size(1);
  PaddedProduct product(K, n, agents);
  auto initial = [&](const at::Tensor& signs) {
    product.signs_t.narrow(0, 0, agents).narrow(1, 0, n).copy_(signs.t());
    product.multiply();
    return product.field.narrow(0, 0, n).narrow(1, 0, agents);
  };
  const at::Tensor columns = K.t().contiguous();  // columns[j * n + i] = K[i, j]
  // The coupling's scale is folded into q, as on the CPU.
  cuda::run_incremental<scalar_t, int8_t, int32_t>(columns, initial, position, momentum,
                                                   start_step, num_steps, time_step,
                                                   pressure_slope, quadratic_coef * scale,
                                                   heat_coef);
}

void sb_run_int8_cuda(const at::Tensor& K, double scale, at::Tensor& position,
                      at::Tensor& momentum, int64_t start_step, int64_t num_steps,
                      double time_step, double pressure_slope, double quadratic_coef,
                      double heat_coef) {
  check_state(position, momentum);
  check_int8_coupling(K, scale, position, momentum);
  check_steps(start_step, num_steps);
  const at::cuda::CUDAGuard guard(position.device());
  if (position.numel() == 0 || num_steps == 0) return;
  bool ran_small = false;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_int8_cuda_small", [&] {
    ran_small = cuda::small_run_int8<scalar_t>(K, scale, position, momentum, start_step,
                                               num_steps, time_step, pressure_slope,
                                               quadratic_coef, heat_coef);
  });
  if (ran_small) return;
  if (cuda::incremental_dsb_field()) {
    AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_int8_cuda_incremental", [&] {
      run_int8_incremental<scalar_t>(K, scale, position, momentum, start_step, num_steps,
                                     time_step, pressure_slope, quadratic_coef, heat_coef);
    });
    return;
  }
  const int64_t n = position.size(0);
  const int64_t agents = position.size(1);
  TORCH_CHECK_VALUE((n + kTile - 1) / kTile <= 65535, "position has ", n,
                    " variables, more than the CUDA kernel's grid supports");
  PaddedProduct product(K, n, agents);
  const bool heated = heat_coef != 0.0;
  at::Tensor m0 = heated ? at::empty_like(momentum) : at::Tensor();
  const dim3 grid(static_cast<unsigned int>((agents + kTile - 1) / kTile),
                  static_cast<unsigned int>((n + kTile - 1) / kTile));
  const dim3 block(kTile, kTileRows);
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_run_int8_cuda", [&] {
    const Int8State<scalar_t> s{position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(),
                                heated ? m0.data_ptr<scalar_t>() : nullptr,
                                product.signs_t.data_ptr<int8_t>(),
                                product.field.data_ptr<int32_t>(), n, agents,
                                product.K_pad.size(0), product.field.size(1)};
    // The coupling's scale is folded into q, as on the CPU.
    const scalar_t q = static_cast<scalar_t>(quadratic_coef * scale);
    const scalar_t h = static_cast<scalar_t>(heat_coef);
    const scalar_t dt = static_cast<scalar_t>(time_step);
    auto kernel = heated ? int8_pass_kernel<scalar_t, true> : int8_pass_kernel<scalar_t, false>;
    for (int64_t k = 0; k <= num_steps; ++k) {
      const bool start = k < num_steps;
      const scalar_t mc = start ? static_cast<scalar_t>(momentum_coefficient(
                                      time_step, start_step + k, pressure_slope))
                                : scalar_t(0);
      cuda::launch(kernel, grid, block, 0, stream, s, k > 0, start, q, h, mc, dt);
      if (start) product.multiply();
    }
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_run_int8", &sb_run_int8_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
