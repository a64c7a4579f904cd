// qimad_fidelity and qimad_angles on the CPU.
// qimad_fidelity: the row-normalised fidelity matrix W of the swarm, so the communication term of
// every agent is one GEMM (W @ theta) instead of the reference's O(N^2) scalar Python loop.
// qimad_angles: all of a step's work on the swarm's angles in one call (the fidelity matrices
// in the swarm's dtype, the attraction coefficients, the angles' random walk). As separate torch
// ops it is ~9 calls on N-element tensors, and right after a step's N closures, which have
// evicted the caches, each such call costs far more than its arithmetic (bench/RESULTS.md).
// Devices without a kernel of their own run it as the composite of ATen ops of ../angles.h
// (composite.cpp), the same ops as the pure-torch mirror (sb_native/optim/_reference.py:
// qimad_angles).

#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../checks.h"
#include "qimad_angles_cpu.h"

namespace sb_native {
namespace qimad {
namespace cpu {
namespace {

at::Tensor qimad_fidelity_cpu(const at::Tensor& alpha, const at::Tensor& beta,
                              const at::Tensor& mask, double k, double eps) {
  check_fidelity_args(alpha, beta, mask);
  const int64_t n = alpha.size(0);
  at::Tensor W = at::empty({n, n}, alpha.options());
  if (n == 0) return W;
  AT_DISPATCH_FLOATING_TYPES(alpha.scalar_type(), "qimad_fidelity_cpu", [&] {
    std::vector<scalar_t> sin_h, cos_h;
    cpu::half_angles(alpha.data_ptr<scalar_t>(), n, sin_h, cos_h);
    cpu::fidelity_matrix(sin_h, cos_h, beta.data_ptr<scalar_t>(), mask.data_ptr<bool>(), n,
                         static_cast<scalar_t>(k), static_cast<scalar_t>(eps),
                         W.data_ptr<scalar_t>());
  });
  return W;
}

std::tuple<at::Tensor, at::Tensor> qimad_angles_cpu(
    at::Tensor& alpha, at::Tensor& beta, const at::Tensor& mask, at::ArrayRef<double> k,
    const at::Tensor& normal, const at::Tensor& uniform, const at::Tensor& attract_on,
    double alpha_step, double beta_step, double eps, at::ScalarType dtype) {
  check_angles_args(alpha, beta, mask, k, normal, uniform, attract_on, dtype);
  const int64_t n = alpha.size(0), m = static_cast<int64_t>(k.size());
  const auto out = alpha.options().dtype(dtype);
  at::Tensor W = at::empty({m, n, n}, out);
  at::Tensor attract = at::empty({n}, out);
  cpu::angles_into(alpha, beta, mask, k, normal, uniform, attract_on, alpha_step, beta_step,
                   eps, W, attract);
  return {W, attract};
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) {
  m.impl("qimad_fidelity", &qimad_fidelity_cpu);
  m.impl("qimad_angles", &qimad_angles_cpu);
}

}  // namespace cpu
}  // namespace qimad
}  // namespace sb_native
