// qimad_fidelity on the GPU: the row-normalised fidelity matrix W of the swarm in one launch,
// one block per row i. The block's threads evaluate F_ij (csrc/qimad/math.h, the CPU kernel's
// arithmetic) for strided j straight into W's row; then one thread sums the row in j order,
// the CPU kernel's summation order, so the normaliser is the CPU's up to the ulps of the
// transcendentals (CUDA's sin/cos/pow are not glibc's); then the block divides the row.
// The sequential sum is O(agents) per row, like the row's sin/cos/pow evaluations shared by
// the block's threads, so keeping the CPU's order at most about doubles the time of a launch
// that is small anyway: swarms have tens to thousands of agents.

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../../common/cuda/launch.cuh"
#include "../checks.h"
#include "../math.h"

namespace sb_native {
namespace qimad {
namespace cuda {
namespace {

constexpr int kRowThreads = 128;

template <typename scalar_t>
__global__ void fidelity_rows_kernel(const scalar_t* alpha, const scalar_t* beta,
                                     const bool* mask, scalar_t* W, int64_t n, scalar_t k,
                                     scalar_t eps) {
  SBN_SHARED(scalar_t, denom, );
  const int64_t i = blockIdx.x;
  const scalar_t ai = alpha[i], bi = beta[i];
  scalar_t* row = W + i * n;
  const bool* edge = mask + i * n;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    row[j] = edge[j] ? qimad::fidelity(ai, bi, alpha[j], beta[j], k) : scalar_t(0);
  }
  __syncthreads();  // also makes the block's global writes to row visible to thread 0
  if (threadIdx.x == 0) {
    // eps keeps an isolated agent's row at 0, as on the CPU.
    scalar_t sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += row[j];
    denom = sum + eps;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) row[j] = row[j] / denom;
}

at::Tensor qimad_fidelity_cuda(const at::Tensor& alpha, const at::Tensor& beta,
                               const at::Tensor& mask, double k, double eps) {
  check_fidelity_args(alpha, beta, mask);
  const at::cuda::CUDAGuard guard(alpha.device());
  const int64_t n = alpha.size(0);
  at::Tensor W = at::empty({n, n}, alpha.options());
  if (n == 0) return W;
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(alpha.scalar_type(), "qimad_fidelity_cuda", [&] {
    common::cuda::launch(fidelity_rows_kernel<scalar_t>, static_cast<unsigned int>(n),
                         kRowThreads, 0, stream, alpha.data_ptr<scalar_t>(),
                         beta.data_ptr<scalar_t>(), mask.data_ptr<bool>(),
                         W.data_ptr<scalar_t>(), n, static_cast<scalar_t>(k),
                         static_cast<scalar_t>(eps));
  });
  return W;
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("qimad_fidelity", &qimad_fidelity_cuda); }

}  // namespace cuda
}  // namespace qimad
}  // namespace sb_native
