#pragma once
// Argument checks shared by the ops of every algorithm, run by each kernel entry before any
// pointer is touched. Each message names the argument; TORCH_CHECK_VALUE / TORCH_CHECK_TYPE
// surface as ValueError / TypeError. Each algorithm's own checks live in its folder.

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

namespace sb_native {
namespace common {

inline void check_float_tensor(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble,
                   name, " must be float32 or float64, got ", t.scalar_type());
}

// Whether a and b may share memory: views of one storage whose byte spans (from the lowest
// to the highest element, whatever the strides) intersect. Exact for the dense tensors the
// kernels write; for interleaved strided views of one buffer it errs towards "may", which
// costs such a caller a copy, never a wrong answer. Tensors of other dtypes count too: an
// int64 view of a float buffer is still the same memory.
inline bool may_overlap(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0 || !a.has_storage() || !b.has_storage()) return false;
  if (!a.unsafeGetTensorImpl()->unsafe_storage().is_alias_of(
          b.unsafeGetTensorImpl()->unsafe_storage())) {
    return false;
  }
  auto span = [](const at::Tensor& t, const char*& begin, const char*& end) {
    int64_t low = 0, high = 0;  // element offsets of the lowest and highest elements
    for (int64_t d = 0; d < t.dim(); ++d) {
      const int64_t reach = t.stride(d) * (t.size(d) - 1);
      low += std::min<int64_t>(reach, 0);
      high += std::max<int64_t>(reach, 0);
    }
    const char* base = static_cast<const char*>(t.const_data_ptr());
    begin = base + low * static_cast<int64_t>(t.element_size());
    end = base + (high + 1) * static_cast<int64_t>(t.element_size());
  };
  const char *a_begin, *a_end, *b_begin, *b_end;
  span(a, a_begin, a_end);
  span(b, b_begin, b_end);
  return a_begin < b_end && b_begin < a_end;
}

// written, which the op writes, must share no memory with other (read or written): a kernel
// would read values it has already overwritten, in an order no reference reproduces.
inline void check_apart(const at::Tensor& written, const at::Tensor& other, const char* written_name,
                        const char* other_name) {
  TORCH_CHECK_VALUE(!may_overlap(written, other), written_name, " and ", other_name,
                    " must not overlap in memory");
}

}  // namespace common
}  // namespace sb_native
