// Runs csrc/sb/cuda/sb_incremental_kernel.cuh on the CPU under cuda_shim.h, one block per agent,
// for tests/test_cuda_emulation.py:
//   incremental_dsb DIR N AGENTS START STEPS THREADS HEATED INT8 DOUBLE Q HEAT TIME_STEP SLOPE
// DIR holds the agent-major inputs x.bin, m.bin, F.bin (the exact initial field) and
// columns.bin (columns[j * n + i] = J[i, j]), all in the state's precision; the final x and
// m are written to DIR/x_out.bin and DIR/m_out.bin.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#define __shared__ static  // the kernel's warp counts: one block runs at a time
#include "cuda_shim.h"
#include "raw_files.h"
#include "../../../csrc/sb/cuda/sb_incremental_kernel.cuh"

namespace {

template <typename scalar_t, typename column_t, typename field_t>
void run(const std::string& dir, int64_t n, int64_t agents, int64_t start, int64_t steps,
         unsigned int threads, bool heated, double q, double heat, double time_step,
         double slope) {
  const size_t numel = static_cast<size_t>(n * agents);
  std::vector<scalar_t> x = emulation::read<scalar_t>(dir + "/x.bin", numel);
  std::vector<scalar_t> m = emulation::read<scalar_t>(dir + "/m.bin", numel);
  const std::vector<scalar_t> field = emulation::read<scalar_t>(dir + "/F.bin", numel);
  const std::vector<scalar_t> columns_in =
      emulation::read<scalar_t>(dir + "/columns.bin", n * n);
  std::vector<field_t> F(field.begin(), field.end());
  std::vector<column_t> columns(columns_in.begin(), columns_in.end());
  std::vector<scalar_t> m0(heated ? numel : 0);
  std::vector<int8_t> s(numel);
  for (size_t e = 0; e < numel; ++e) s[e] = static_cast<int8_t>(sb_native::sb::sign_of(x[e]));
  std::vector<int32_t> flips(numel, -1);
  const sb_native::sb::cuda::AgentArgs<scalar_t, column_t, field_t> args{
      x.data(), m.data(), heated ? m0.data() : nullptr, s.data(), F.data(), flips.data(),
      columns.data(), n, start, steps, time_step, slope, static_cast<scalar_t>(q),
      static_cast<scalar_t>(heat), static_cast<scalar_t>(time_step)};
  for (int64_t a = 0; a < agents; ++a) {
    emulation::run_block(static_cast<unsigned int>(a), threads, [&] {
      if (heated) sb_native::sb::cuda::agent_run_kernel<scalar_t, column_t, field_t, true>(args);
      else sb_native::sb::cuda::agent_run_kernel<scalar_t, column_t, field_t, false>(args);
    });
  }
  emulation::write(dir + "/x_out.bin", x);
  emulation::write(dir + "/m_out.bin", m);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 14) {
    std::fprintf(stderr,
                 "usage: %s DIR N AGENTS START STEPS THREADS HEATED INT8 DOUBLE Q HEAT "
                 "TIME_STEP SLOPE\n",
                 argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int64_t n = std::atoll(argv[2]), agents = std::atoll(argv[3]);
  const int64_t start = std::atoll(argv[4]), steps = std::atoll(argv[5]);
  const auto threads = static_cast<unsigned int>(std::atoi(argv[6]));
  const bool heated = std::atoi(argv[7]) != 0, int8 = std::atoi(argv[8]) != 0;
  const bool dbl = std::atoi(argv[9]) != 0;
  const double q = std::atof(argv[10]), heat = std::atof(argv[11]);
  const double time_step = std::atof(argv[12]), slope = std::atof(argv[13]);
  auto go = [&](auto scalar, auto column, auto field) {
    run<decltype(scalar), decltype(column), decltype(field)>(
        dir, n, agents, start, steps, threads, heated, q, heat, time_step, slope);
  };
  if (dbl && int8) go(double(), int8_t(), int32_t());
  else if (dbl) go(double(), double(), double());
  else if (int8) go(float(), int8_t(), int32_t());
  else go(float(), float(), float());
  return 0;
}
