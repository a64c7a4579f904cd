#pragma once
// Argument checks shared by the ops of every algorithm, run by each kernel entry before any
// pointer is touched. Each message names the argument; TORCH_CHECK_VALUE / TORCH_CHECK_TYPE
// surface as ValueError / TypeError. Each algorithm's own checks live in its folder.

#include <ATen/ATen.h>

namespace sb_native {
namespace common {

inline void check_float_tensor(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
                   name, " must be float32 or float64, got ", t.scalar_type());
}

}  // namespace common
}  // namespace sb_native
