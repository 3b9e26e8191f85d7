// libFuzzer target: a strategy packet for a fixed device (three layers); see fuzz_common.hpp for the
// mode byte that recomputes the CRC.
#include "chord/io/strategy_packet.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> message = chord::fuzz::message_with_mode(data, size);
  return chord::fuzz::expect_decoded_or_named_error("input.chrs", [&] {
    chord::PacketExpectation expect;
    expect.fingerprint = 0x1234;
    expect.layers = {{"a", 5, 3}, {"b", 16, 2}, {"c", 3, 7}};
    const chord::StrategyPacket packet = chord::decode_strategy(message, expect, "input.chrs");
    chord::fuzz::require(packet.strategy.levels.size() == 3, "a decoded packet with another layer count");
  });
}
