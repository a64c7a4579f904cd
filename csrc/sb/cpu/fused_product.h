#pragma once
// Products J @ x on the CPU fuse each term into its sum (one rounding, FMA) where the CPU has
// FMA: twice the arithmetic rate of a multiply and an add (bench/RESULTS.md, batched SB
// against the GEMM floor), and the rounding of the CUDA small kernel's fma_rn. The build's
// -ffp-contract=off keeps everything else, the per-element math of csrc/sb/math.h above all,
// unfused. The dense small-problem product and the CSR row product use it alike, so the two
// storages of one coupling still give the same sums (a zero term adds an exact zero). dSB's
// terms are exact (a weight times a sign), so fused or not its field is the same.

#if defined(__FMA__) && defined(__GNUC__) && !defined(__clang__)
#define SBN_FUSED_PRODUCT __attribute__((optimize("fp-contract=fast")))
#else
#define SBN_FUSED_PRODUCT
#endif
