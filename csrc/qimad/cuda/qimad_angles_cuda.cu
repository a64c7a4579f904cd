// qimad_angles on the GPU: the composite of ../angles.h (ATen's CUDA kernels and
// qimad_fidelity's, on the current stream) behind the CUDA entry routine. The op is a
// handful of launches on N-element tensors (N = agents); a fused kernel would save launches,
// not arithmetic, and QIMADTorch's step synchronises once per step anyway.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "../angles.h"

namespace sb_native {
namespace qimad {
namespace cuda {
namespace {

std::tuple<at::Tensor, at::Tensor> qimad_angles_cuda(
    at::Tensor& alpha, at::Tensor& beta, const at::Tensor& mask, at::ArrayRef<double> k,
    const at::Tensor& normal, const at::Tensor& uniform, const at::Tensor& attract_on,
    double alpha_step, double beta_step, double eps, at::ScalarType dtype) {
  const at::cuda::CUDAGuard guard(alpha.device());
  return qimad_angles_composite(alpha, beta, mask, k, normal, uniform, attract_on, alpha_step,
                                beta_step, eps, dtype);
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("qimad_angles", &qimad_angles_cuda); }

}  // namespace cuda
}  // namespace qimad
}  // namespace sb_native
