#pragma once
// The register-blocked product F = J @ X of the small dense kernel (sb_small_dense.h) over one
// block of agents: X and F are (n, kBlock) row-major, J (n, n). Each lane (agent) sums
// J[i, j] x[j] in j order, each term fused into the sum (fused_product.h), so a lane's sums do
// not depend on the block's width: a wide and a narrow block give the same bits.

#include <cstdint>
#include <cstring>

#include "fused_product.h"

namespace sb_native {
namespace sb {
namespace cpu {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr int kVecRegisters = 32;
constexpr int kVecsPerBlock = 4;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
constexpr int kVecRegisters = 16;
constexpr int kVecsPerBlock = 2;
#else
constexpr int kVecBytes = 16;
constexpr int kVecRegisters = 16;
constexpr int kVecsPerBlock = 2;
#endif
// The narrow block: half the vectors, for agent counts that a wide block would pad by half
// or more (32 agents in 64-wide float32 blocks on AVX-512; bench/RESULTS.md, issue 21).
constexpr int kNarrowVecs = kVecsPerBlock > 1 ? kVecsPerBlock / 2 : 1;

// Agent blocks of V vectors; a tile of kRows rows keeps kRows x V accumulators, V loads of x
// and one broadcast of J in the registers.
template <typename T, int V>
struct SmallVec {
  typedef T type __attribute__((vector_size(kVecBytes)));
  static constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
  static constexpr int64_t kBlock = kLanes * V;  // agents per block
  static constexpr int kRows = (kVecRegisters - V - 1) / V;
};

// F[i0 + r, :] = sum_j J[i0 + r, j] * X[j, :] for r < R, over one block of agents.
template <typename T, int V, int R>
SBN_FUSED_PRODUCT inline void product_tile(const T* __restrict__ J, const T* __restrict__ X,
                                           T* __restrict__ F, int64_t n, int64_t i0) {
  using Vec = typename SmallVec<T, V>::type;
  constexpr int64_t kB = SmallVec<T, V>::kBlock;
  constexpr int kL = SmallVec<T, V>::kLanes;
  Vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = Vec{};
  const T* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = J + (i0 + r) * n;
  for (int64_t j = 0; j < n; ++j) {
    Vec x[V];
    for (int v = 0; v < V; ++v) std::memcpy(&x[v], X + j * kB + v * kL, sizeof(Vec));
    for (int r = 0; r < R; ++r) {
      const T w = rows[r][j];
      for (int v = 0; v < V; ++v) acc[r][v] = acc[r][v] + w * x[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) std::memcpy(F + (i0 + r) * kB + v * kL, &acc[r][v], sizeof(Vec));
}

// The last n - i0 < R rows: one tile of exactly that many.
template <typename T, int V, int R>
inline void product_rest(const T* J, const T* X, T* F, int64_t n, int64_t i0) {
  if constexpr (R > 0) {
    if (n - i0 == R) {
      product_tile<T, V, R>(J, X, F, n, i0);
    } else {
      product_rest<T, V, R - 1>(J, X, F, n, i0);
    }
  }
}

template <typename T, int V>
void block_product(const T* J, const T* X, T* F, int64_t n) {
  constexpr int kR = SmallVec<T, V>::kRows;
  int64_t i = 0;
  for (; i + kR <= n; i += kR) product_tile<T, V, kR>(J, X, F, n, i);
  product_rest<T, V, kR - 1>(J, X, F, n, i);
}

}  // namespace cpu
}  // namespace sb
}  // namespace sb_native
