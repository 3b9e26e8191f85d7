// tests/test_helpers.hpp: seeded random data and the shape lists shared by the tests.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace chord::test {

// Worker threads for tests that train or evaluate in parallel. Cross builds define CHORD_TEST_NO_THREADS:
// qemu-user hangs in pthread_create here, so they run everything on the calling thread.
#ifdef CHORD_TEST_NO_THREADS
inline constexpr std::size_t kTestThreads = 1;
#else
inline constexpr std::size_t kTestThreads = 2;
#endif
inline constexpr bool kSequentialWorkers = kTestThreads == 1;

// The ruy-style awkward sizes: around every power of two a kernel might special-case.
inline const std::vector<std::size_t> kAwkwardSizes = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 15,
                                                       16, 17, 31, 32, 33, 63, 64, 65};

inline std::vector<float> random_normal(std::size_t n, std::uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Student-t with 2 degrees of freedom: heavy tails, the outliers that make clip search matter.
inline std::vector<float> random_heavy_tailed(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> dist(2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<std::uint8_t> random_bits(std::size_t n, std::uint32_t seed, bool with_zero = true) {
  std::mt19937 rng(seed);
  const std::uint8_t choices[4] = {0, 2, 4, 8};
  std::uniform_int_distribution<int> pick(with_zero ? 0 : 1, 3);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = choices[pick(rng)];
  return v;
}

// Frobenius norm of a vector.
inline double norm(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}

}  // namespace chord::test
