#pragma once
// The communication input of qimad_update's large-swarm path, shared by the CPU and CUDA
// kernels: mix[r] = sum_j W[seg_w[s]][rows[r], j] theta[j] over each segment s's columns,
// one GEMM (ATen: the CPU's BLAS, or cuBLAS) per run of consecutive segments sharing a
// fidelity matrix, so one GEMM in all when every parameter group has the same exponent k.

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

namespace sb_native {
namespace qimad {

// W_rows: (matrices, rows, agents), W's rows of the updated agents; seg and seg_w point to
// host memory (segments + 1 column offsets, and the matrix of each segment).
inline at::Tensor communication_input(const at::Tensor& theta, const at::Tensor& W_rows,
                                      const int64_t* seg, const int64_t* seg_w, int64_t s) {
  if (s > 0 && std::all_of(seg_w, seg_w + s, [&](int64_t v) { return v == seg_w[0]; })) {
    return at::mm(W_rows[seg_w[0]], theta);
  }
  // Uninitialised: the segments partition the columns, so the runs write every one of them.
  at::Tensor mix = at::empty({W_rows.size(1), theta.size(1)}, theta.options());
  for (int64_t a = 0; a < s;) {
    int64_t b = a + 1;
    while (b < s && seg_w[b] == seg_w[a]) ++b;
    const int64_t c0 = seg[a], width = seg[b] - c0;
    if (width > 0) {  // row-major column slices: BLAS takes them with leading dimension P
      at::Tensor out = mix.narrow(1, c0, width);
      at::mm_out(out, W_rows[seg_w[a]], theta.narrow(1, c0, width));
    }
    a = b;
  }
  return mix;
}

}  // namespace qimad
}  // namespace sb_native
