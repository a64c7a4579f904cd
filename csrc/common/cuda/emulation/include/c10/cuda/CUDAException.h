#pragma once
// Stand-in for c10's CUDA error checks under the emulation: an emulated launch reports its
// errors by throwing (../../../emulator.h).

#define C10_CUDA_KERNEL_LAUNCH_CHECK() \
  do {                                 \
  } while (0)
