// The QIMAD CUDA sources with kernels, schemas included, in one emulated translation unit
// (see rename.h). qimad_angles_cuda.cu and qimad_step_cuda.cu launch nothing themselves:
// they run ATen ops and, through the dispatcher, these kernels.
#include "rename.h"

#include "../../csrc/qimad/ops.cpp"
#include "../../csrc/qimad/cuda/qimad_fidelity_cuda.cu"
#include "../../csrc/qimad/cuda/qimad_update_cuda.cu"
