#pragma once
// Raw binary arrays in and out of the emulation drivers (tests/test_cuda_emulation.py writes
// them with numpy's tofile and reads the results with fromfile).

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace emulation {

template <typename T>
std::vector<T> read(const std::string& path, size_t count) {
  std::vector<T> v(count);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr || std::fread(v.data(), sizeof(T), count, f) != count) {
    std::fprintf(stderr, "cannot read %zu values from %s\n", count, path.c_str());
    std::exit(2);
  }
  std::fclose(f);
  return v;
}

template <typename T>
void write(const std::string& path, const std::vector<T>& v) {
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(v.data(), sizeof(T), v.size(), f);
  std::fclose(f);
}

}  // namespace emulation
