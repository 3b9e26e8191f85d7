// chord/nn/random.hpp: the seeded random numbers of training (initialization, dropout, sampling).
//
// Why not <random>'s distributions: std::normal_distribution and friends are implementation-defined,
// so the same seed gives different models under libstdc++ and libc++. These few lines give the same
// bits everywhere. The generator is SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, one add and a
// mixing function per draw, passes BigCrush; `Rng(seed, stream)` derives independent streams, so each
// worker thread or each training sequence gets its own reproducible stream, whatever the scheduling.
#pragma once

#include <cmath>
#include <cstdint>

namespace chord::nn {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) : state_(mix(seed ^ mix(stream + kGolden))) {}

  std::uint64_t next_u64() { return mix(state_ += kGolden); }

  // Uniform in [0, 1) with 24 random bits (every float of the form i / 2^24).
  float uniform() { return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f; }

  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

  // Uniform integer in [0, n), n > 0: multiply-shift of 32 random bits for n < 2^32 (bias < n / 2^32,
  // negligible for item catalogues), modulo for larger n.
  std::uint64_t below(std::uint64_t n) {
    return n <= 0xffffffffu ? ((next_u64() >> 32) * n) >> 32 : next_u64() % n;
  }

  // Standard normal (Box-Muller in double, one value per call: simple, and init is not a hot path).
  float normal() {
    const double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;          // [0, 1)
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  float normal(float mean, float stddev) { return mean + stddev * normal(); }

 private:
  static constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ull;
  static std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t state_;
};

}  // namespace chord::nn
