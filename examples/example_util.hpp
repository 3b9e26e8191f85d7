// examples/example_util.hpp: what every teaching step shares and none of them is about.
//
//   quick_mode()      CHORD_EXAMPLE_QUICK=1: small shapes, as ctest runs the steps (also under qemu);
//   median_ms(r, f)   the median wall time of r calls of f (after one warm-up call), in milliseconds;
//   load4(a)          the 4 activation bytes a[0..3] as one 32-bit value, to broadcast into every lane;
//   print_guide       the two lines every step starts with: what it shows, and what to look for;
//   naive_gemv_s8     step 1's kernel (explained in 01_naive_int8_dot.cpp), the baseline later steps
//                     time themselves against on the same data.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace chord::examples {

inline bool quick_mode() {
  const char* v = std::getenv("CHORD_EXAMPLE_QUICK");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

template <class F>
double median_ms(int reps, F&& f) {
  f();
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

inline void print_guide(const char* shows, const char* look_for) {
  std::printf("shows:    %s\nlook for: %s\n\n", shows, look_for);
}

inline std::int32_t load4(const std::int8_t* a) {
  std::int32_t quad;
  std::memcpy(&quad, a, sizeof quad);
  return quad;
}

// q: [n, k] int8 codes, row-major (one output channel per row); a: [k] int8 codes; acc: [n] int32.
// Each product fits 15 bits and k of them fit 31 bits (|acc| <= 128 * 127 * k < 2^31 for k < 132104),
// so int32 never overflows.
inline void naive_gemv_s8(const std::int8_t* q, const std::int8_t* a, std::size_t n, std::size_t k,
                          std::int32_t* acc) {
  for (std::size_t c = 0; c < n; ++c) {
    const std::int8_t* row = q + c * k;
    std::int32_t sum = 0;
    for (std::size_t j = 0; j < k; ++j) sum += std::int32_t(row[j]) * std::int32_t(a[j]);
    acc[c] = sum;
  }
}

}  // namespace chord::examples
