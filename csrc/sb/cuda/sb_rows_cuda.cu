// The row-block ops on the GPU (variables across ranks, engine/rows.py): a rank's rows of J
// in CSR form times f(x) of every variable gathered from the ranks, fused with the step's
// per-element update (rows_math.h). Every result equals the CPU kernel's
// (cpu/sb_rows_cpu.cpp) bit for bit, so ranks on either device evolve alike:
//   sb_rows_step  : one block per row and agent tile (threads over agents: the gathered rows
//                   of the non-zeros are read coalesced); each thread sums its element's
//                   product in CSR order with the CPU's rounding (or adds the changed terms
//                   to its field), then finishes / begins it;
//   sb_rows_pack  : one warp per packed word (two ballots), the zero signs counted per
//                   block and then summed by one block into the header row;
//   sb_rows_energy: one thread per (chunk of the CPU's kEnergyRows rows, agent) sums its
//                   chunk in row order, then one thread per agent sums the chunks in order.

#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../rows_checks.h"
#include "../rows_math.h"
#include "sb_loop.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

// Rows of one partial energy sum: the CPU kernel's kEnergyRows, so the sums are its sums.
constexpr int64_t kEnergyChunkRows = 64;
constexpr int64_t kMaxAgentTiles = 65535;  // grid.y
constexpr int kLanes = 32;

// A block of rows of J and the gathered f(x) its columns index: gathered_t is scalar_t
// (positions), int8_t (signs) or int64_t (packed bits, stride words per row).
template <typename scalar_t, typename gathered_t>
struct RowBlock {
  const int64_t* crow;
  const int64_t* col;
  const scalar_t* values;
  const gathered_t* gathered;
  int64_t stride;      // elements of gathered per variable
  int64_t zero_plane;  // packed rows with a zero plane: the words before it; else 0
  int64_t agents;
};

// One term of a product, rounded as the CPU rounds it: a floating f(x) fused into the sum
// (fused_product.h; __fma_rn is the exactly rounded std::fma under the emulation, and
// --fmad=false never fuses anything else), a sign or a bit as the exact +-v (or 0).
__device__ __forceinline__ float add_term(float acc, float v, const float* f, int64_t a) {
  return __fmaf_rn(v, f[a], acc);
}
__device__ __forceinline__ double add_term(double acc, double v, const double* f, int64_t a) {
  return __fma_rn(v, f[a], acc);
}
template <typename scalar_t>
__device__ __forceinline__ scalar_t add_term(scalar_t acc, scalar_t v, const int8_t* s, int64_t a) {
  return acc + v * static_cast<scalar_t>(s[a]);
}
template <typename scalar_t>
__device__ __forceinline__ scalar_t add_term(scalar_t acc, scalar_t v, const int64_t* bits,
                                             int64_t a) {
  return acc + (((bits[a >> 6] >> (a & 63)) & 1) ? v : -v);
}

// A packed row with a zero plane `words` words on (a step where some sign is 0): the CPU's
// v * masked_value, the same +-v or v * 0.
template <typename scalar_t>
__device__ __forceinline__ scalar_t add_masked_term(scalar_t acc, scalar_t v, const int64_t* row,
                                                    int64_t words, int64_t a) {
  return acc + v * masked_value<scalar_t>(row, words, a);
}

// (J @ f)[i, a], the non-zeros of row i in CSR order as the CPU kernel adds them.
template <typename scalar_t, typename gathered_t>
__device__ __forceinline__ scalar_t row_product(const RowBlock<scalar_t, gathered_t>& J, int64_t i,
                                                int64_t a) {
  scalar_t acc = 0;
  for (int64_t k = J.crow[i]; k < J.crow[i + 1]; ++k) {
    const gathered_t* row = J.gathered + J.col[k] * J.stride;
    if constexpr (std::is_same_v<gathered_t, int64_t>) {
      acc = J.zero_plane != 0 ? add_masked_term(acc, J.values[k], row, J.zero_plane, a)
                              : add_term(acc, J.values[k], row, a);
    } else {
      acc = add_term(acc, J.values[k], row, a);
    }
  }
  return acc;
}

// field[i, a] plus 2 v s for each term of row i whose sign changed since previous, in CSR
// order as the CPU's flipped_row_update adds them (packed signs without a zero plane).
template <typename scalar_t>
__device__ __forceinline__ scalar_t flipped_update(const RowBlock<scalar_t, int64_t>& J,
                                                   const int64_t* previous, scalar_t acc,
                                                   int64_t i, int64_t a) {
  const int64_t w = a >> 6;
  const int64_t b = a & 63;
  for (int64_t k = J.crow[i]; k < J.crow[i + 1]; ++k) {
    const int64_t at = J.col[k] * J.stride + w;
    const int64_t now = J.gathered[at];
    if (((now ^ previous[at]) >> b) & 1) {
      const scalar_t twice = scalar_t(2) * J.values[k];
      acc = acc + (((now >> b) & 1) ? twice : -twice);
    }
  }
  return acc;
}

template <typename scalar_t>
struct RowsCoefs {
  scalar_t momentum, position, quadratic, heat;
};

// m0 is nullptr when not heated (start_momentum is then never touched); field nullptr
// without a field, previous nullptr without previous (packed rows only).
template <typename scalar_t, typename gathered_t>
__global__ void rows_step_kernel(RowBlock<scalar_t, gathered_t> J, scalar_t* x, scalar_t* m,
                                 scalar_t* m0, scalar_t* field, const int64_t* previous,
                                 RowsCoefs<scalar_t> c, bool finish, bool begin) {
  const int64_t i = blockIdx.x;
  const bool heated = m0 != nullptr;
  const int64_t stride = static_cast<int64_t>(gridDim.y) * blockDim.x;
  for (int64_t a = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; a < J.agents;
       a += stride) {
    const int64_t e = i * J.agents + a;
    scalar_t xe = x[e], me = m[e];
    scalar_t m0e = heated ? m0[e] : scalar_t(0);
    if (finish) {
      scalar_t acc;
      if constexpr (std::is_same_v<gathered_t, int64_t>) {
        acc = previous != nullptr ? flipped_update(J, previous, field[e], i, a)
                                  : row_product(J, i, a);
      } else {
        acc = row_product(J, i, a);
      }
      if (field != nullptr) field[e] = acc;
      rows_finish(xe, me, m0e, acc, c.quadratic, c.heat, heated);
    }
    if (begin) rows_begin(xe, me, m0e, c.momentum, c.position, heated);
    x[e] = xe;
    m[e] = me;
    if (heated) m0[e] = m0e;
  }
}

// Partial energies of chunk blockIdx.x: partial[c, a] = sum over its rows i, in order, of
// spin(x_ia) * (J @ s)_ia, as the CPU adds them.
template <typename scalar_t>
__global__ void rows_energy_kernel(RowBlock<scalar_t, int64_t> J, const scalar_t* x,
                                   scalar_t* partial, int64_t rows) {
  const int64_t c = blockIdx.x;
  const int64_t end = (c + 1) * kEnergyChunkRows < rows ? (c + 1) * kEnergyChunkRows : rows;
  const int64_t stride = static_cast<int64_t>(gridDim.y) * blockDim.x;
  for (int64_t a = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; a < J.agents;
       a += stride) {
    scalar_t sum = 0;
    for (int64_t i = c * kEnergyChunkRows; i < end; ++i) {
      sum = sum + spin_of(x[i * J.agents + a]) * row_product(J, i, a);
    }
    partial[c * J.agents + a] = sum;
  }
}

// energies[a] = the chunks' partials summed in chunk order (zero without rows).
template <typename scalar_t>
__global__ void rows_energy_sum_kernel(const scalar_t* partial, int64_t chunks, scalar_t* energies,
                                       int64_t agents) {
  const int64_t a = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= agents) return;
  scalar_t total = 0;
  for (int64_t c = 0; c < chunks; ++c) total += partial[c * agents + a];
  energies[a] = total;
}

// The sum of the block's counts, into counts[0]; blockDim.x == kThreads, a power of two.
__device__ __forceinline__ void block_sum(int64_t* counts) {
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) counts[threadIdx.x] += counts[threadIdx.x + half];
    __syncthreads();
  }
}

// Word e = (i, w) of the packed rows per warp: lane l holds agents 64 w + l and 64 w + 32 + l,
// and each ballot gathers 32 bits. Each block writes how many signs one bit cannot carry
// it met (spins == false only) to block_zeros[blockIdx.x].
template <typename scalar_t>
__global__ void rows_pack_kernel(const scalar_t* x, int64_t* out, int64_t* block_zeros,
                                 int64_t rows, int64_t agents, bool spins) {
  SBN_SHARED(int64_t, zeros, [kThreads]);
  const int64_t width = packed_width(agents), words = rows * width;
  const int lane = static_cast<int>(threadIdx.x) % kLanes;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kLanes);
  int64_t found = 0;
  // Warp-uniform loop: every lane of a warp takes part in each ballot.
  for (int64_t e = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kLanes;
       e < words; e += warps) {
    const int64_t i = e / width, w = e % width;
    const int64_t len = agents - 64 * w < 64 ? agents - 64 * w : 64;
    const scalar_t* row = x + i * agents + 64 * w;
    const bool low = lane < len, high = lane + kLanes < len;
    const unsigned int low_bits = __ballot_sync(0xffffffffu, low && packed_bit(row[lane], spins));
    const unsigned int high_bits =
        __ballot_sync(0xffffffffu, high && packed_bit(row[lane + kLanes], spins));
    if (!spins) {
      found += (low && sign_needs_int8(row[lane])) + (high && sign_needs_int8(row[lane + kLanes]));
    }
    if (lane == 0)
      out[e] = static_cast<int64_t>(low_bits | (static_cast<uint64_t>(high_bits) << 32));
  }
  zeros[threadIdx.x] = found;
  __syncthreads();
  block_sum(zeros);
  if (threadIdx.x == 0) block_zeros[blockIdx.x] = zeros[0];
}

// The header row of packed (one block): word 0 the blocks' counts summed, the others 0.
__global__ void rows_pack_header_kernel(const int64_t* block_zeros, int64_t blocks, int64_t* header,
                                        int64_t width) {
  SBN_SHARED(int64_t, sums, [kThreads]);
  int64_t sum = 0;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) sum += block_zeros[b];
  sums[threadIdx.x] = sum;
  __syncthreads();
  block_sum(sums);
  for (int64_t w = threadIdx.x; w < width; w += blockDim.x) header[w] = w > 0 ? 0 : sums[0];
}

struct AgentGrid {
  dim3 grid;
  int threads;
};

// Threads over agents (whole warps, at most kThreads) and the grid (outer, agent tiles).
AgentGrid agent_grid(int64_t outer, int64_t agents) {
  TORCH_CHECK_VALUE(outer <= INT32_MAX, "too many rows for the CUDA kernel's grid (", outer,
                    " blocks of rows, at most ", INT32_MAX, ")");
  const int threads = static_cast<int>(std::min<int64_t>(kThreads, (agents + 31) / 32 * 32));
  const int64_t tiles = std::min<int64_t>((agents + threads - 1) / threads, kMaxAgentTiles);
  return {dim3(static_cast<unsigned int>(outer), static_cast<unsigned int>(tiles)), threads};
}

template <typename scalar_t, typename gathered_t>
RowBlock<scalar_t, gathered_t> row_block(const at::Tensor& crow, const at::Tensor& col,
                                         const at::Tensor& values, const at::Tensor& gathered,
                                         int64_t agents) {
  RowBlock<scalar_t, gathered_t> J;
  J.crow = crow.data_ptr<int64_t>();
  J.col = col.data_ptr<int64_t>();
  J.values = values.data_ptr<scalar_t>();
  J.gathered = gathered.data_ptr<gathered_t>();
  J.stride = gathered.size(1);
  const int64_t words = packed_width(agents);
  J.zero_plane = gathered.scalar_type() == at::kLong && J.stride == 2 * words ? words : 0;
  J.agents = agents;
  return J;
}

void sb_rows_step_cuda(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                       const at::Tensor& gathered, at::Tensor& position, at::Tensor& momentum,
                       at::Tensor& start_momentum, double momentum_coef, double position_coef,
                       double quadratic_coef, double heat_coef, bool finish, bool begin,
                       const c10::optional<at::Tensor>& field,
                       const c10::optional<at::Tensor>& previous) {
  const bool heated = heat_coef != 0.0;
  check_rows_step_args(crow, col, values, gathered, position, momentum, start_momentum, heated);
  check_rows_field_args(crow, col, values, gathered, position, momentum, start_momentum, heated,
                        field, previous);
  const at::cuda::CUDAGuard guard(position.device());
  if (finish) check_csr_structure(crow, col, gathered.size(0), gathered_range(gathered));
  if (position.numel() == 0 || (!finish && !begin)) return;
  const int64_t rows = position.size(0), agents = position.size(1);
  const AgentGrid shape = agent_grid(rows, agents);
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_rows_step_cuda", [&] {
    const RowsCoefs<scalar_t> c{
        static_cast<scalar_t>(momentum_coef), static_cast<scalar_t>(position_coef),
        static_cast<scalar_t>(quadratic_coef), static_cast<scalar_t>(heat_coef)};
    scalar_t* m0 = heated ? start_momentum.data_ptr<scalar_t>() : nullptr;
    scalar_t* kept = field.has_value() ? field->data_ptr<scalar_t>() : nullptr;
    const int64_t* before = previous.has_value() ? previous->data_ptr<int64_t>() : nullptr;
    auto run = [&](auto gathered_type) {
      using gathered_t = decltype(gathered_type);
      cuda::launch(rows_step_kernel<scalar_t, gathered_t>, shape.grid, shape.threads, 0, stream,
                   row_block<scalar_t, gathered_t>(crow, col, values, gathered, agents),
                   position.data_ptr<scalar_t>(), momentum.data_ptr<scalar_t>(), m0, kept, before,
                   c, finish, begin);
    };
    if (gathered.scalar_type() == at::kChar) {
      run(int8_t{});
    } else if (gathered.scalar_type() == at::kLong) {
      run(int64_t{});
    } else {
      run(scalar_t{});
    }
  });
}

void sb_rows_pack_cuda(const at::Tensor& position, at::Tensor& packed, bool spins) {
  check_rows_pack_args(position, packed);
  const at::cuda::CUDAGuard guard(position.device());
  const int64_t rows = position.size(0), agents = position.size(1);
  const int64_t width = packed_width(agents);
  const unsigned int blocks = grid_for(rows * width * kLanes);
  at::Tensor block_zeros = at::empty({blocks}, packed.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_rows_pack_cuda", [&] {
    cuda::launch(rows_pack_kernel<scalar_t>, blocks, kThreads, 0, stream,
                 position.data_ptr<scalar_t>(), packed.data_ptr<int64_t>(),
                 block_zeros.data_ptr<int64_t>(), rows, agents, spins);
  });
  cuda::launch(rows_pack_header_kernel, 1, kThreads, 0, stream, block_zeros.data_ptr<int64_t>(),
               static_cast<int64_t>(blocks), packed.data_ptr<int64_t>() + rows * width, width);
}

void sb_rows_energy_cuda(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                         const at::Tensor& gathered, const at::Tensor& position,
                         at::Tensor& energies) {
  check_rows_energy_args(crow, col, values, gathered, position, energies);
  const at::cuda::CUDAGuard guard(position.device());
  check_csr_structure(crow, col, gathered.size(0), gathered_range(gathered));
  const int64_t rows = position.size(0), agents = position.size(1);
  if (agents == 0) return;
  const int64_t chunks = (rows + kEnergyChunkRows - 1) / kEnergyChunkRows;
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_rows_energy_cuda", [&] {
    at::Tensor partial = at::empty({chunks, agents}, position.options());
    if (chunks > 0) {
      const AgentGrid shape = agent_grid(chunks, agents);
      cuda::launch(rows_energy_kernel<scalar_t>, shape.grid, shape.threads, 0, stream,
                   row_block<scalar_t, int64_t>(crow, col, values, gathered, agents),
                   position.data_ptr<scalar_t>(), partial.data_ptr<scalar_t>(), rows);
    }
    cuda::launch(rows_energy_sum_kernel<scalar_t>,
                 static_cast<unsigned int>((agents + kThreads - 1) / kThreads), kThreads, 0, stream,
                 partial.data_ptr<scalar_t>(), chunks, energies.data_ptr<scalar_t>(), agents);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) {
  m.impl("sb_rows_step", &sb_rows_step_cuda);
  m.impl("sb_rows_pack", &sb_rows_pack_cuda);
  m.impl("sb_rows_energy", &sb_rows_energy_cuda);
}

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
