// chord/data/rng.hpp: the one random generator of the data layer, identical on every platform.
//
// Why not <random>: std::mt19937_64 is portable, but the distributions (uniform_int_distribution,
// normal_distribution, shuffle) are implementation-defined, so a seeded experiment would sample
// different negatives under libstdc++ and libc++. Everything here is specified bit for bit:
//  - the generator is SplitMix64 (a 64-bit counter passed through a strong mixer);
//  - `below(n)` is the multiply-and-reject method, exact (no modulo bias);
//  - `Rng::stream(seed, a, b)` derives an independent generator for one unit of work (one user in one
//    epoch, one evaluation user), so results never depend on how work is spread over threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "chord/core/error.hpp"

namespace chord::data {

// The SplitMix64 output function: a bijective mixer of 64-bit values.
inline constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

class Rng {
 public:
  static constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio, odd

  explicit Rng(std::uint64_t seed) : state_(seed) {}

  // A generator for one unit of seeded work, e.g. stream(seed, epoch, user). Each coordinate passes
  // through the mixer, so neighbouring (a, b) give unrelated sequences.
  static Rng stream(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) {
    std::uint64_t h = mix64(seed + kGolden);
    h = mix64(h ^ (a + 2 * kGolden));
    h = mix64(h ^ (b + 3 * kGolden));
    return Rng(h);
  }

  std::uint64_t next_u64() {
    state_ += kGolden;
    return mix64(state_);
  }

  // The high half: the better-mixed bits.
  std::uint32_t next_u32() { return static_cast<std::uint32_t>(next_u64() >> 32); }

  // Uniform integer in [0, n), n >= 1. Multiply a 32-bit draw by n; the high word is the result, and
  // draws whose low word falls in the short first stripe are rejected so every value is equally likely.
  std::uint32_t below(std::uint32_t n) {
    CHORD_CHECK(n > 0, "Rng::below: empty range");
    std::uint64_t m = std::uint64_t(next_u32()) * n;
    auto low = static_cast<std::uint32_t>(m);
    if (low < n) {
      const std::uint32_t threshold = static_cast<std::uint32_t>(-n) % n;  // 2^32 mod n
      while (low < threshold) {
        m = std::uint64_t(next_u32()) * n;
        low = static_cast<std::uint32_t>(m);
      }
    }
    return static_cast<std::uint32_t>(m >> 32);
  }

  // Uniform integer in [0, n) for 64-bit ranges, n >= 1: reject the top partial block, then reduce.
  std::uint64_t below64(std::uint64_t n) {
    CHORD_CHECK(n > 0, "Rng::below64: empty range");
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the values below it are over-represented
    for (;;) {
      const std::uint64_t r = next_u64();
      if (r >= threshold) return r % n;
    }
  }

  // Uniform double in [0, 1) with 53 random bits (exact: an integer times a power of two).
  double uniform01() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  std::uint64_t state_;
};

// Fisher-Yates shuffle driven by Rng (std::shuffle's draw sequence is implementation-defined).
template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  CHORD_CHECK(v.size() <= 0xFFFFFFFFull, "shuffle: more than 2^32 elements");
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = rng.below(static_cast<std::uint32_t>(i));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace chord::data
