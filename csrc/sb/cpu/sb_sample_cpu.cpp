// sb_sample on the CPU: the early-stopping sampling of simulated-bifurcation 2.0.0's stop
// window in one O(variables * agents) pass. The energy of agent a is sum_i s_ia * field_ia
// with field = J @ s supplied by the caller, so no quadratic form is recomputed here.

#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../../common/parallel.h"
#include "../checks.h"
#include "../math.h"

namespace sb_native {
namespace sb {
namespace cpu {
namespace {

void sb_sample_cpu(const at::Tensor& position, const at::Tensor& field, at::Tensor& energies,
                   at::Tensor& stability, at::Tensor& bifurcated, at::Tensor& final_spins,
                   int64_t threshold) {
  check_sample_args(position, field, energies, stability, bifurcated, final_spins, threshold);
  const int64_t n = position.size(0);
  const int64_t agents = position.size(1);
  if (agents == 0) return;
  AT_DISPATCH_FLOATING_TYPES(position.scalar_type(), "sb_sample_cpu", [&] {
    const scalar_t* x = position.data_ptr<scalar_t>();
    const scalar_t* f = field.data_ptr<scalar_t>();
    scalar_t* e = energies.data_ptr<scalar_t>();
    int16_t* stab = stability.data_ptr<int16_t>();
    bool* bif = bifurcated.data_ptr<bool>();
    scalar_t* out = final_spins.data_ptr<scalar_t>();
    at::parallel_for(0, agents, common::work_grain(n), [&](int64_t begin, int64_t end) {
      for (int64_t a = begin; a < end; ++a) {
        scalar_t energy = 0;
        for (int64_t i = 0; i < n; ++i) energy += spin_of(x[i * agents + a]) * f[i * agents + a];
        const bool stable = energy == e[a];
        e[a] = energy;
        const bool was = bif[a];
        const bool now = stop_window_update(stable, was, stab[a], threshold);
        bif[a] = now;
        if (now == was) continue;
        for (int64_t i = 0; i < n; ++i) out[i * agents + a] = spin_of(x[i * agents + a]);
      }
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("sb_sample", &sb_sample_cpu); }

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
