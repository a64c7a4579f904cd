// Every SB CUDA source, schemas included, in one emulated translation unit (see rename.h).
#include "rename.h"

#include "../../csrc/sb/ops.cpp"
#include "../../csrc/sb/cuda/sb_polish_cuda.cu"
#include "../../csrc/sb/cuda/sb_run_batched_cuda.cu"
#include "../../csrc/sb/cuda/sb_run_csr_cuda.cu"
#include "../../csrc/sb/cuda/sb_run_cuda.cu"
#include "../../csrc/sb/cuda/sb_run_int8_cuda.cu"
#include "../../csrc/sb/cuda/sb_rows_cuda.cu"
#include "../../csrc/sb/cuda/sb_sample_cuda.cu"
#include "../../csrc/sb/cuda/sb_step_cuda.cu"
