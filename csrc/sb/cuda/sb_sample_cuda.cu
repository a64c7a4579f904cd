// sb_sample on the GPU: the early-stopping sampling of simulated-bifurcation 2.0.0's stop
// window, entirely on the device (nothing is read back; the caller synchronises only when
// it inspects the window). Three launches:
//   1. energy partials: each block sums spin * field over a chunk of rows for 32
//      consecutive agents (coalesced), reduced in shared memory in a fixed order;
//   2. stop window: one thread per agent sums its partials in chunk order and updates
//      energies / stability / bifurcated, flagging the agents whose frozen flag changed
//      (those frozen by this call, in the states a run reaches);
//   3. final spins: an elementwise copy of spin(x) for the flagged agents.
// Every reduction order is fixed, so the same spins always give the same energy (which
// is what the stability streak compares); for integer couplings the energies equal the
// CPU kernel's exactly, otherwise they may differ from them in the last bits.

#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "../checks.h"
#include "../math.h"
#include "sb_loop.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

constexpr int kAgentsPerBlock = 32;  // threadIdx.x: consecutive agents, coalesced loads
constexpr int kSlices = 8;           // threadIdx.y: interleaved rows of a chunk
constexpr int64_t kMinChunkRows = 256;
constexpr int64_t kMaxGridY = 65535;

template <typename scalar_t>
__global__ void energy_partials_kernel(const scalar_t* x, const scalar_t* field, scalar_t* partials,
                                       int64_t n, int64_t agents, int64_t chunk_rows) {
  SBN_SHARED(scalar_t, slice_sums, [kSlices][kAgentsPerBlock]);
  const int64_t a = static_cast<int64_t>(blockIdx.x) * kAgentsPerBlock + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  scalar_t sum = 0;
  if (a < agents) {
    const int64_t end = (chunk + 1) * chunk_rows < n ? (chunk + 1) * chunk_rows : n;
    for (int64_t i = chunk * chunk_rows + threadIdx.y; i < end; i += kSlices) {
      sum += spin_of(x[i * agents + a]) * field[i * agents + a];
    }
  }
  slice_sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && a < agents) {
    scalar_t total = 0;
    for (int s = 0; s < kSlices; ++s) total += slice_sums[s][threadIdx.x];
    partials[chunk * agents + a] = total;
  }
}

template <typename scalar_t>
__global__ void stop_window_kernel(const scalar_t* partials, int64_t chunks, scalar_t* energies,
                                   int16_t* stability, bool* bifurcated, bool* flag_changed,
                                   int64_t agents, int64_t threshold) {
  const int64_t a = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= agents) return;
  scalar_t energy = 0;
  for (int64_t c = 0; c < chunks; ++c) energy += partials[c * agents + a];
  // Same bookkeeping as the CPU kernel (../math.h): the spins are saved when the flag changes.
  const bool stable = energy == energies[a];
  energies[a] = energy;
  const bool was = bifurcated[a];
  const bool now = stop_window_update(stable, was, stability[a], threshold);
  bifurcated[a] = now;
  flag_changed[a] = now != was;
}

template <typename scalar_t>
__global__ void final_spins_kernel(const scalar_t* x, const bool* flag_changed, scalar_t* out,
                                   int64_t numel, int64_t agents) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < numel;
       e += stride) {
    if (flag_changed[e % agents]) out[e] = spin_of(x[e]);
  }
}

void sb_sample_cuda(const at::Tensor& position, const at::Tensor& field, at::Tensor& energies,
                    at::Tensor& stability, at::Tensor& bifurcated, at::Tensor& final_spins,
                    int64_t threshold) {
  check_sample_args(position, field, energies, stability, bifurcated, final_spins, threshold);
  const at::cuda::CUDAGuard guard(position.device());
  const int64_t n = position.size(0);
  const int64_t agents = position.size(1);
  if (agents == 0) return;
  // Chunks of at least kMinChunkRows rows, more when needed to keep grid.y in range; at
  // least one chunk so that n = 0 still writes zero energies.
  const int64_t chunk_rows = std::max(kMinChunkRows, (n + kMaxGridY - 1) / kMaxGridY);
  const int64_t chunks = std::max<int64_t>(1, (n + chunk_rows - 1) / chunk_rows);
  const int64_t agent_blocks = (agents + kAgentsPerBlock - 1) / kAgentsPerBlock;
  TORCH_CHECK_VALUE(agent_blocks <= INT32_MAX, "too many agents for the CUDA kernel: ", agents);
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_sample_cuda", [&] {
    at::Tensor partials = at::empty({chunks, agents}, position.options());
    at::Tensor flag_changed = at::empty({agents}, position.options().dtype(at::kBool));
    const scalar_t* x = position.data_ptr<scalar_t>();
    cuda::launch(energy_partials_kernel<scalar_t>,
                 dim3(static_cast<unsigned int>(agent_blocks), static_cast<unsigned int>(chunks)),
                 dim3(kAgentsPerBlock, kSlices), 0, stream, x, field.data_ptr<scalar_t>(),
                 partials.data_ptr<scalar_t>(), n, agents, chunk_rows);
    cuda::launch(stop_window_kernel<scalar_t>,
                 static_cast<unsigned int>((agents + cuda::kThreads - 1) / cuda::kThreads),
                 cuda::kThreads, 0, stream, partials.data_ptr<scalar_t>(), chunks,
                 energies.data_ptr<scalar_t>(), stability.data_ptr<int16_t>(),
                 bifurcated.data_ptr<bool>(), flag_changed.data_ptr<bool>(), agents, threshold);
    if (n == 0) return;
    cuda::launch(final_spins_kernel<scalar_t>, cuda::grid_for(position.numel()), cuda::kThreads,
                 0, stream, x, flag_changed.data_ptr<bool>(), final_spins.data_ptr<scalar_t>(),
                 position.numel(), agents);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_sample", &sb_sample_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
