// The CompositeExplicitAutograd kernels of the QIMADTorch ops, the kernels of every device
// without its own: qimad_angles as the composite of ATen ops and qimad_fidelity of angles.h,
// qimad_step as the plan of step.h with ATen ops and the swarm ops through the dispatcher.
// The CUDA kernels of these two ops are the same composites behind a device guard
// (csrc/qimad/cuda); the CPU has fused kernels (csrc/qimad/cpu). qimad_fidelity and
// qimad_update have no composite: each device has kernels of its own.

#include <torch/library.h>

#include "angles.h"
#include "step.h"

namespace sb_native {
namespace qimad {

TORCH_LIBRARY_IMPL(sb_native, CompositeExplicitAutograd, m) {
  m.impl("qimad_angles", &qimad_angles_composite);
  m.impl("qimad_step", &qimad_step_composite);
}

}  // namespace qimad
}  // namespace sb_native
