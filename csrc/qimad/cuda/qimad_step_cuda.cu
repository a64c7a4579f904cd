// qimad_step on the GPU: the composite of ../step.h behind the CUDA entry routine. Its
// device work is ATen's CUDA kernels and the qimad_angles and qimad_update CUDA kernels, on the
// current stream; the plan (records, resets, tunnelling choice) is made on the host, which
// costs the step's synchronisations (the finiteness flags and the coins come to the host),
// as the host-side losses already do once per closure.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <optional>

#include "../step.h"

namespace sb_native {
namespace qimad {
namespace cuda {
namespace {

at::Tensor qimad_step_cuda(
    at::TensorList theta, at::TensorList square_avg, at::TensorList grad, at::TensorList best,
    at::TensorList params, at::IntArrayRef bucket_params, at::TensorList segments,
    at::TensorList seg_eta, at::TensorList seg_gamma, at::TensorList seg_w, at::Tensor& alpha,
    at::Tensor& beta, const at::Tensor& mask, const at::Tensor& attract_on,
    at::IntArrayRef can_tunnel, at::ArrayRef<double> k, at::ScalarType dtype,
    at::Tensor& agent_loss, at::Tensor& agent_best, at::Tensor& stagnation, at::Tensor& best_loss,
    at::Tensor& normal, at::Tensor& uniform, int64_t step, at::IntArrayRef rows,
    at::ArrayRef<double> losses, std::optional<at::Generator> generator, double temperature,
    double alpha_step, double beta_step, double rms_decay, double eps, int64_t stagnation_limit,
    const c10::List<std::optional<at::Tensor>>& bounds, bool global_stagnation, bool sequential,
    int64_t first) {
  const at::cuda::CUDAGuard guard(alpha.device());
  return qimad_step_composite(theta, square_avg, grad, best, params, bucket_params, segments,
                              seg_eta, seg_gamma, seg_w, alpha, beta, mask, attract_on,
                              can_tunnel, k, dtype, agent_loss, agent_best, stagnation, best_loss,
                              normal, uniform, step, rows, losses, generator, temperature,
                              alpha_step, beta_step, rms_decay, eps, stagnation_limit,
                              bounds, global_stagnation, sequential, first);
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CUDA, m) { m.impl("qimad_step", &qimad_step_cuda); }

}  // namespace cuda
}  // namespace qimad
}  // namespace sb_native
