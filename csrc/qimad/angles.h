#pragma once
// qimad_angles as a composite of ATen ops and the qimad_fidelity op: the pure-torch mirror's
// operations (sb_native/optim/_reference.py: qimad_angles). It is the op's kernel on every
// device without a fused kernel of its own: registered for CUDA
// (csrc/qimad/cuda/qimad_angles_cuda.cu, where each ATen op and qimad_fidelity run their CUDA
// kernels on the current stream) and as the CompositeExplicitAutograd fallback
// (csrc/qimad/composite.cpp).

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/MathConstants.h>

#include <tuple>
#include <vector>

#include "checks.h"

namespace sb_native {
namespace qimad {

// The mirror's ATen ops, with qimad_fidelity's own kernels for the fidelity matrices.
inline std::tuple<at::Tensor, at::Tensor> qimad_angles_composite(
    at::Tensor& alpha, at::Tensor& beta, const at::Tensor& mask, at::ArrayRef<double> k,
    const at::Tensor& normal, const at::Tensor& uniform, const at::Tensor& attract_on,
    double alpha_step, double beta_step, double eps, at::ScalarType dtype) {
  check_angles_args(alpha, beta, mask, k, normal, uniform, attract_on, dtype);
  static const auto fidelity =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("sb_native::qimad_fidelity", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
                            double)>();
  std::vector<at::Tensor> mats;
  for (const double exponent : k) mats.push_back(fidelity.call(alpha, beta, mask, exponent, eps));
  at::Tensor W = at::stack(mats).to(dtype);
  at::Tensor attract = (uniform[1] * attract_on).to(dtype);
  alpha.copy_((alpha + normal[0] * alpha_step).clamp(0.0, c10::pi<double>));
  beta.copy_(at::remainder(beta + normal[1] * beta_step, 2 * c10::pi<double>));
  return {W, attract};
}

}  // namespace qimad
}  // namespace sb_native
