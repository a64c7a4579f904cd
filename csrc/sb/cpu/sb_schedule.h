#pragma once
// The schedule's coefficients of one call, computed once in the scalar type and shared by
// every thread of the kernels that run all steps of a call per agent (block).

#include <cstdint>
#include <utility>
#include <vector>

namespace sb_native {
namespace sb {
namespace cpu {

// coefs(k) gives {momentum_coef, position_coef} of the k-th step of this call, in double.
template <typename scalar_t, typename Coefs>
std::vector<std::pair<scalar_t, scalar_t>> step_coefficients(int64_t num_steps, Coefs coefs) {
  std::vector<std::pair<scalar_t, scalar_t>> out(num_steps);
  for (int64_t k = 0; k < num_steps; ++k) {
    const auto c = coefs(k);
    out[k] = {static_cast<scalar_t>(c.first), static_cast<scalar_t>(c.second)};
  }
  return out;
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
