#pragma once
// The coupling policies of the persistent small-problem kernel (sb_small.cuh): how a thread
// computes its row of the product J @ f(x) for a tile of agents, and reads one entry of J.
//   DenseCoupling: float J, f(x) = x for bSB, sign(x) for dSB, field in scalar_t.
//   Int8Coupling:  J = scale * K, K int8, int8 signs, int32 field, products by __dp4a on
//                  four packed columns, exact.

#include <cstdint>
#include <cstring>

#include "../../common/host_device.h"
#include "../math.h"

namespace sb_native {
namespace sb {
namespace cuda {

SBN_HD int64_t round_up_to(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

__device__ __forceinline__ float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double fma_rn(double a, double b, double c) { return __fma_rn(a, b, c); }

// Loads N consecutive T from shared memory with 16- or 8-byte vector loads where the size
// allows (the caller guarantees the matching alignment). Every thread of a block reads the
// same address, a broadcast, so fewer, wider loads is all that matters.
template <typename T, int N>
__device__ __forceinline__ void load_vec(const T* p, T (&v)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(T));
  if constexpr (kBytes % 16 == 0) {
#pragma unroll
    for (int c = 0; c < kBytes / 16; ++c) {
      const uint4 u = reinterpret_cast<const uint4*>(p)[c];
      memcpy(&v[c * (16 / sizeof(T))], &u, 16);
    }
  } else if constexpr (kBytes % 8 == 0) {
#pragma unroll
    for (int c = 0; c < kBytes / 8; ++c) {
      const uint2 u = reinterpret_cast<const uint2*>(p)[c];
      memcpy(&v[c * (8 / sizeof(T))], &u, 8);
    }
  } else {
#pragma unroll
    for (int c = 0; c < N; ++c) v[c] = p[c];
  }
}

// Dense float coupling, given transposed: jt[j * n + i] = J[i, j]. The operand f(x) lives in
// shared memory as scalar_t [n][TA] (x for bSB, sign(x) for dSB). A batch of problems
// (sb_run_batched) stores their transposed couplings one after another, stride elements
// apart; a single problem is problem 0.
template <typename scalar_t>
struct DenseCoupling {
  using field_t = scalar_t;
  using operand_t = scalar_t;
  static constexpr bool kDiscreteOnly = false;
  const scalar_t* jt;
  int n;
  int64_t stride;  // elements from one problem's transposed coupling to the next

  __device__ __forceinline__ DenseCoupling for_problem(int64_t problem) const {
    return {jt + problem * stride, n, stride};
  }

  static int64_t operand_bytes(int64_t n, int tile) {
    return n * tile * static_cast<int64_t>(sizeof(scalar_t));
  }
  __device__ __forceinline__ static int index(int j, int a, int tile) { return j * tile + a; }
  __device__ __forceinline__ static operand_t operand(scalar_t x, bool discrete) {
    return discrete ? sign_of(x) : x;
  }

  // F[a] = sum_j J[i, j] f(x)[j, a].
  template <int TA>
  __device__ __forceinline__ void product(int i, const operand_t* op, field_t (&F)[TA]) const {
#pragma unroll
    for (int a = 0; a < TA; ++a) F[a] = scalar_t(0);
    const scalar_t* column = jt + i;
#pragma unroll 2
    for (int j = 0; j < n; ++j) {
      const scalar_t w = __ldg(column + j * n);
      scalar_t v[TA];
      load_vec(op + j * TA, v);
#pragma unroll
      for (int a = 0; a < TA; ++a) F[a] = fma_rn(w, v[a], F[a]);
    }
  }

  __device__ __forceinline__ field_t entry(int i, int j) const { return __ldg(jt + j * n + i); }
};

// Integer coupling J = scale * K. K is packed four columns to an int32:
// k4[(j / 4) * n + i] holds K[i, 4 (j / 4) + b] in byte b (zero past n); the signs live in
// shared memory as int8 [n4][TA][4], so the int32 at [j / 4][a] holds sign(x)[4 (j / 4) + b, a]
// in byte b, and __dp4a multiplies and sums the four pairs exactly into the int32 field.
struct Int8Coupling {
  using field_t = int32_t;
  using operand_t = int8_t;
  static constexpr bool kDiscreteOnly = true;  // sb_run_int8 is dSB only
  const int32_t* k4;
  int n;

  // sb_run_int8 has no batched form: its launch is one problem, problem 0.
  __device__ __forceinline__ Int8Coupling for_problem(int64_t /*problem*/) const { return *this; }

  static int64_t operand_bytes(int64_t n, int tile) { return round_up_to(n, 4) * tile; }
  __device__ __forceinline__ static int index(int j, int a, int tile) {
    return ((j >> 2) * tile + a) * 4 + (j & 3);
  }
  template <typename scalar_t>
  __device__ __forceinline__ static operand_t operand(scalar_t x, bool /*discrete*/) {
    return static_cast<int8_t>(sign_of(x));
  }

  template <int TA>
  __device__ __forceinline__ void product(int i, const operand_t* op, field_t (&F)[TA]) const {
#pragma unroll
    for (int a = 0; a < TA; ++a) F[a] = 0;
    const int32_t* column = k4 + i;
    const int32_t* packed = reinterpret_cast<const int32_t*>(op);
    const int quads = (n + 3) >> 2;
#pragma unroll 2
    for (int jq = 0; jq < quads; ++jq) {
      const int32_t w = __ldg(column + jq * n);
      int32_t s[TA];
      load_vec(packed + jq * TA, s);
#pragma unroll
      for (int a = 0; a < TA; ++a) F[a] = __dp4a(w, s[a], F[a]);
    }
  }

  __device__ __forceinline__ field_t entry(int i, int j) const {
    const uint32_t w = static_cast<uint32_t>(__ldg(k4 + (j >> 2) * n + i));
    return static_cast<int8_t>(static_cast<uint8_t>(w >> (8 * (j & 3))));
  }
};

}  // namespace cuda
}  // namespace sb
}  // namespace sb_native
