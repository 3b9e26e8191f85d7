// tests/fuzz/fuzz_common.hpp: what every file-reader fuzz target shares.
//
// Contract under test: any bytes either decode, or throw chord::Error naming the source. Anything else
// (a crash, a sanitizer report, another exception escaping -- std::bad_alloc included --, an error
// that names nothing) is a finding. The binary formats carry a CRC that random bytes almost never
// match, so the first input byte chooses the mode: odd = the rest as is, even = the rest with its
// checksum recomputed, which lets the fuzzer reach the field checks behind the CRC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/core/error.hpp"

namespace chord::fuzz {

inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

// Runs `decode`; a chord::Error must name `source`.
template <typename Decode>
int expect_decoded_or_named_error(const char* source, Decode&& decode) {
  try {
    decode();
  } catch (const chord::Error& e) {
    require(std::string(e.what()).find(source) != std::string::npos, "an error that does not name the source");
  }
  return 0;
}

// The message after the mode byte; in "fix" mode its last 4 bytes become the CRC-32 of the others.
inline std::vector<std::uint8_t> message_with_mode(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  std::vector<std::uint8_t> message(data + 1, data + size);
  if ((data[0] & 1) == 0 && message.size() >= 4) {
    const std::uint32_t crc = crc32(message.data(), message.size() - 4);
    for (int i = 0; i < 4; ++i) message[message.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
  }
  return message;
}

}  // namespace chord::fuzz
