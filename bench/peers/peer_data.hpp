// bench/peers/peer_data.hpp: seeded inputs for the peer libraries, built once per shape and shared by
// every peer (the fp32 weights of the 65,536 x 4,096 gemv are 1 GiB: build them once).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../common.hpp"

namespace chord::bench::peers {

// W: [n, k] row-major fp32 in [-1, 1).
inline const std::vector<float>& weights_f32(std::size_t n, std::size_t k) {
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<std::vector<float>>> cache;
  auto& slot = cache[{n, k}];
  if (!slot) slot = std::make_unique<std::vector<float>>(random_floats(n * k, n * 131 + k));
  return *slot;
}

// x: [m, k] row-major fp32 in [-1, 1).
inline const std::vector<float>& input_f32(std::size_t m, std::size_t k) {
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<std::vector<float>>> cache;
  auto& slot = cache[{m, k}];
  if (!slot) slot = std::make_unique<std::vector<float>>(random_floats(m * k, m * 7919 + k));
  return *slot;
}

// Bytes of 8-bit data of n x k, uniform over the type's range.
template <typename T>
const std::vector<T>& bytes_8bit(std::size_t n, std::size_t k, std::uint64_t salt) {
  static std::map<std::string, std::unique_ptr<std::vector<T>>> cache;
  auto& slot = cache[std::to_string(n) + ":" + std::to_string(k) + ":" + std::to_string(salt)];
  if (!slot) {
    const int lo = T(-1) < T(0) ? -128 : 0;
    slot = std::make_unique<std::vector<T>>(random_ints<T>(n * k, n * 131 + k + salt, lo, lo + 255));
  }
  return *slot;
}

}  // namespace chord::bench::peers
