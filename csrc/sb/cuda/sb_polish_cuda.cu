// sb_polish on the GPU: one thread per agent runs polish.h's descent on its column of the
// (variables, agents) arrays. Consecutive threads hold consecutive agents, so their spin and
// field accesses of one variable are coalesced, and the CSR row they read is the same for
// the whole warp (a broadcast). The descent is sequential within an agent; it is short next
// to the SB run it follows (bench/RESULTS.md, "Local-search polish").

#include <torch/library.h>

#include <cstdint>

#include "../checks.h"
#include "../polish.h"
#include "sb_loop.cuh"

namespace sb_native {
namespace sb {
namespace cuda {
namespace {

constexpr int kPolishThreads = 128;

template <typename scalar_t>
__global__ void polish_kernel(const int64_t* crow, const int64_t* col, const scalar_t* values,
                              scalar_t* spins, scalar_t* field, int64_t n, int64_t agents,
                              int64_t max_sweeps) {
  const int64_t a = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= agents) return;
  polish_agent(crow, col, values, spins + a, field + a, n, agents, max_sweeps);
}

void sb_polish_cuda(const at::Tensor& crow_indices, const at::Tensor& col_indices,
                    const at::Tensor& values, at::Tensor& spins, at::Tensor& field,
                    int64_t max_sweeps) {
  check_polish_args(crow_indices, col_indices, values, spins, field, max_sweeps);
  const int64_t n = spins.size(0);
  const int64_t agents = spins.size(1);
  if (agents == 0 || n == 0 || max_sweeps == 0) return;
  const at::cuda::CUDAGuard guard(spins.device());
  const int64_t blocks = (agents + kPolishThreads - 1) / kPolishThreads;
  TORCH_CHECK_VALUE(blocks <= INT32_MAX, "too many agents for the CUDA kernel: ", agents);
  const dim3 grid(static_cast<unsigned int>(blocks));
  AT_DISPATCH_FLOATING_TYPES(spins.scalar_type(), "sb_polish_cuda", [&] {
    cuda::launch(polish_kernel<scalar_t>, grid, dim3(kPolishThreads), 0,
                 at::cuda::getCurrentCUDAStream(), crow_indices.data_ptr<int64_t>(),
                 col_indices.data_ptr<int64_t>(), values.data_ptr<scalar_t>(),
                 spins.data_ptr<scalar_t>(), field.data_ptr<scalar_t>(), n, agents, max_sweeps);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("sb_polish", &sb_polish_cuda); }

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
