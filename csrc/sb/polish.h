#pragma once
// Greedy single-flip descent of one agent (sb_polish), shared by the CPU kernel and the CUDA
// kernel so the CPU tests check the arithmetic the GPU runs. The agent minimises the
// runner's energy -0.5 s^T J s on a symmetric, zero-diagonal J in CSR form; field = J s is
// kept up to date incrementally, so a sweep costs O(variables) plus O(degree) per flip.

#include <cstdint>

#include "../common/host_device.h"

namespace sb_native {
namespace sb {

// Sweeps over the variables in index order, flipping every spin whose flip lowers the
// energy (s_i * field_i < 0: the energy falls by 2 |field_i|; ties are never flipped, so no
// sweep can undo another's flip), until a sweep flips nothing or max_sweeps are done. spins
// and field are one agent's column of (variables, agents) arrays: element i at i * stride.
// A flip adds J[:, i] * (new - old) to the field, (new - old) = +-2 exactly, so a product
// fused or not rounds the same on every device. Returns the sweeps made.
template <typename scalar_t>
SBN_HD int64_t polish_agent(const int64_t* crow, const int64_t* col, const scalar_t* values,
                            scalar_t* spins, scalar_t* field, int64_t n, int64_t stride,
                            int64_t max_sweeps) {
  for (int64_t sweep = 0; sweep < max_sweeps; ++sweep) {
    bool flipped = false;
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t s = spins[i * stride];
      if (s * field[i * stride] < scalar_t(0)) {
        spins[i * stride] = -s;
        const scalar_t delta = scalar_t(-2) * s;
        // J is symmetric: row i holds column i.
        for (int64_t k = crow[i]; k < crow[i + 1]; ++k) field[col[k] * stride] += values[k] * delta;
        flipped = true;
      }
    }
    if (!flipped) return sweep + 1;
  }
  return max_sweeps;
}

}  // namespace sb
}  // namespace sb_native
