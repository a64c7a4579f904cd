// Runs csrc/sb/cuda/sb_small_kernel.cuh (the persistent small-problem kernel) on the CPU under
// cuda_shim.h, block after block, for tests/test_cuda_emulation.py:
//   small_run DIR N AGENTS START STEPS TILE HEATED DISCRETE INT8 DOUBLE Q HEAT TIME_STEP SLOPE
//             FLIP_FRACTION
// DIR holds x.bin and m.bin ((n, agents), row-major, as the op's state) and J.bin (n x n,
// row-major; integer entries for INT8), all in the state's precision; the final x and m are
// written to DIR/x_out.bin and DIR/m_out.bin. The coupling is packed as the launcher
// (sb_small.cuh) packs it.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define __shared__  // the kernel's only shared array is extern: the `smem` defined below
#include "cuda_shim.h"
#include "raw_files.h"

namespace sb_native {
namespace sb {
namespace cuda {
// The block's dynamic shared memory, refilled with garbage before every block (the kernel
// must not rely on its contents).
alignas(16) unsigned char smem[64 * 1024];
}  // namespace cuda
}  // namespace sb
}  // namespace sb_native

#include "../../../csrc/sb/cuda/sb_small_kernel.cuh"

namespace {

using sb_native::sb::cuda::DenseCoupling;
using sb_native::sb::cuda::Int8Coupling;
using sb_native::sb::cuda::SmallArgs;

struct Options {
  std::string dir;
  int64_t n, agents, start, steps;
  int tile;
  bool heated, discrete;
  double q, heat, time_step, slope, flip_fraction;
};

template <typename scalar_t, typename Coupling, int TA>
void launch(const Options& o, const Coupling& coupling, std::vector<scalar_t>& x,
            std::vector<scalar_t>& m) {
  const auto layout = sb_native::sb::cuda::small_layout(Coupling::operand_bytes(o.n, TA), o.n, TA,
                                                    o.discrete);
  if (layout.total > static_cast<int64_t>(sizeof(sb_native::sb::cuda::smem))) {
    std::fprintf(stderr, "shared memory layout of %lld bytes too large\n",
                 static_cast<long long>(layout.total));
    std::exit(2);
  }
  const SmallArgs<scalar_t> args{x.data(), m.data(), o.agents, o.start, o.steps,
                                 o.time_step, o.slope, o.flip_fraction,
                                 static_cast<scalar_t>(o.q), static_cast<scalar_t>(o.heat),
                                 static_cast<scalar_t>(o.time_step), layout};
  const auto threads = static_cast<unsigned int>(
      sb_native::sb::cuda::round_up_to(std::max<int64_t>(o.n, 1), 32));
  const int64_t blocks = (o.agents + TA - 1) / TA;
  for (int64_t b = 0; b < blocks; ++b) {
    std::memset(sb_native::sb::cuda::smem, 0xA5, sizeof(sb_native::sb::cuda::smem));
    emulation::run_block(static_cast<unsigned int>(b), threads, [&] {
      using sb_native::sb::cuda::small_run_kernel;
      if (o.discrete || Coupling::kDiscreteOnly) {
        if (o.heated) small_run_kernel<scalar_t, Coupling, TA, true, true>(args, coupling);
        else small_run_kernel<scalar_t, Coupling, TA, true, false>(args, coupling);
      } else if constexpr (!Coupling::kDiscreteOnly) {
        if (o.heated) small_run_kernel<scalar_t, Coupling, TA, false, true>(args, coupling);
        else small_run_kernel<scalar_t, Coupling, TA, false, false>(args, coupling);
      }
    });
  }
}

template <typename scalar_t>
void run(const Options& o, bool int8) {
  const size_t numel = static_cast<size_t>(o.n * o.agents);
  std::vector<scalar_t> x = emulation::read<scalar_t>(o.dir + "/x.bin", numel);
  std::vector<scalar_t> m = emulation::read<scalar_t>(o.dir + "/m.bin", numel);
  const std::vector<scalar_t> J = emulation::read<scalar_t>(o.dir + "/J.bin", o.n * o.n);
  const int64_t n = o.n;
  auto by_tile = [&](const auto& coupling) {
    using Coupling = std::decay_t<decltype(coupling)>;
    if (o.tile == 8) launch<scalar_t, Coupling, 8>(o, coupling, x, m);
    else launch<scalar_t, Coupling, 2>(o, coupling, x, m);
  };
  if (int8) {
    // int32 words [j / 4][i] holding K[i, 4 (j / 4) + b] in byte b, zero past column n.
    const int64_t quads = (n + 3) / 4;
    std::vector<int32_t> k4(quads * n, 0);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const auto byte = static_cast<uint8_t>(static_cast<int8_t>(J[i * n + j]));
        k4[(j / 4) * n + i] |= static_cast<int32_t>(static_cast<uint32_t>(byte) << (8 * (j % 4)));
      }
    }
    by_tile(Int8Coupling{k4.data(), static_cast<int>(n)});
  } else {
    std::vector<scalar_t> jt(n * n);  // jt[j, i] = J[i, j]
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) jt[j * n + i] = J[i * n + j];
    }
    by_tile(DenseCoupling<scalar_t>{jt.data(), static_cast<int>(n)});
  }
  emulation::write(o.dir + "/x_out.bin", x);
  emulation::write(o.dir + "/m_out.bin", m);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 16) {
    std::fprintf(stderr,
                 "usage: %s DIR N AGENTS START STEPS TILE HEATED DISCRETE INT8 DOUBLE Q HEAT "
                 "TIME_STEP SLOPE FLIP_FRACTION\n",
                 argv[0]);
    return 2;
  }
  Options o;
  o.dir = argv[1];
  o.n = std::atoll(argv[2]);
  o.agents = std::atoll(argv[3]);
  o.start = std::atoll(argv[4]);
  o.steps = std::atoll(argv[5]);
  o.tile = std::atoi(argv[6]);
  o.heated = std::atoi(argv[7]) != 0;
  o.discrete = std::atoi(argv[8]) != 0;
  const bool int8 = std::atoi(argv[9]) != 0, dbl = std::atoi(argv[10]) != 0;
  o.q = std::atof(argv[11]);
  o.heat = std::atof(argv[12]);
  o.time_step = std::atof(argv[13]);
  o.slope = std::atof(argv[14]);
  o.flip_fraction = std::atof(argv[15]);
  if (dbl) run<double>(o, int8);
  else run<float>(o, int8);
  return 0;
}
