// libFuzzer target: a profile message for a fixed cloud (profile dimension 8); see fuzz_common.hpp for
// the mode byte that recomputes the CRC.
#include <cmath>

#include "chord/io/profile_message.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> message = chord::fuzz::message_with_mode(data, size);
  return chord::fuzz::expect_decoded_or_named_error("input.chrp", [&] {
    const chord::ProfileMessage m =
        chord::decode_profile(message, {0x1234, 8}, "input.chrp");
    chord::fuzz::require(m.profile.size() == 8, "a decoded profile of another dimension");
    for (float v : m.profile) chord::fuzz::require(std::isfinite(v * v), "a decoded value whose square overflows");
  });
}
