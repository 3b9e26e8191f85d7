// chord/core/checksum.hpp: CRC-32 (for files and packets) and FNV-1a 64 (for model fingerprints).
//
// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) detects every error burst of up to 32 bits, so
// every single corrupted byte of a strategy packet or model file is caught. FNV-1a is not a checksum:
// it names a model (its layer names and shapes) compactly so a strategy for another model is refused.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chord {

namespace detail {
constexpr std::array<std::uint32_t, 256> make_crc32_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
inline constexpr std::array<std::uint32_t, 256> kCrc32Table = make_crc32_table();
}  // namespace detail

// CRC-32 of bytes; pass a previous result as `crc` to continue over several pieces.
inline std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < size; ++i) crc = detail::kCrc32Table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

inline constexpr std::uint64_t kFnv1a64Basis = 0xcbf29ce484222325ull;

// FNV-1a 64 of bytes; chain calls through `hash` to fingerprint several pieces.
inline std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t hash = kFnv1a64Basis) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < size; ++i) hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}
inline std::uint64_t fnv1a64(std::string_view text, std::uint64_t hash = kFnv1a64Basis) {
  return fnv1a64(text.data(), text.size(), hash);
}

}  // namespace chord
