#pragma once
// SBN_HD marks the per-element math that the CPU and CUDA kernels share (each algorithm's
// math.h): under nvcc a host and device function, so a kernel runs the very arithmetic the
// CPU loops run and the CPU tests check it; in the C++ build a plain inline function.

#if defined(__CUDACC__)
#define SBN_HD __host__ __device__ __forceinline__
#else
#define SBN_HD inline
#endif
