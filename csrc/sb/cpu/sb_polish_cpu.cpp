// sb_polish on the CPU: each agent's greedy single-flip descent (polish.h), agents in
// parallel. An agent's column is copied into contiguous scratch first: the descent walks the
// variables in order and reads neighbours at random, which a stride of `agents` elements
// would turn into one cache line per access.

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../checks.h"
#include "../polish.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

void sb_polish_cpu(const at::Tensor& crow_indices, const at::Tensor& col_indices,
                   const at::Tensor& values, at::Tensor& spins, at::Tensor& field,
                   int64_t max_sweeps) {
  check_polish_args(crow_indices, col_indices, values, spins, field, max_sweeps);
  const int64_t n = spins.size(0);
  const int64_t agents = spins.size(1);
  if (agents == 0 || n == 0 || max_sweeps == 0) return;
  const int64_t* crow = crow_indices.data_ptr<int64_t>();
  const int64_t* col = col_indices.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(spins.scalar_type(), "sb_polish_cpu", [&] {
    const scalar_t* w = values.data_ptr<scalar_t>();
    scalar_t* s = spins.data_ptr<scalar_t>();
    scalar_t* f = field.data_ptr<scalar_t>();
    // One agent per task: an agent's descent is sequential and costs at least a sweep.
    at::parallel_for(0, agents, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> column(2 * n);
      scalar_t* cs = column.data();
      scalar_t* cf = cs + n;
      for (int64_t a = begin; a < end; ++a) {
        for (int64_t i = 0; i < n; ++i) {
          cs[i] = s[i * agents + a];
          cf[i] = f[i * agents + a];
        }
        polish_agent(crow, col, w, cs, cf, n, int64_t(1), max_sweeps);
        for (int64_t i = 0; i < n; ++i) {
          s[i * agents + a] = cs[i];
          f[i * agents + a] = cf[i];
        }
      }
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_polish", &sb_polish_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
