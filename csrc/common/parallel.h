#pragma once
// Grain sizes for at::parallel_for on the CPU kernels of every algorithm.

#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>  // at::internal::GRAIN_SIZE

#include <algorithm>
#include <cstdint>

namespace sb_native {
namespace common {

// Items per parallel chunk so that each chunk does about at::internal::GRAIN_SIZE units of
// work: small problems run inline instead of paying for a parallel region.
inline int64_t work_grain(int64_t work_per_item) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(1, work_per_item));
}

}  // namespace common
}  // namespace sb_native
