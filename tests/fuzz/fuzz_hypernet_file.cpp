// libFuzzer target: a safetensors file read as the hypernetworks of a small fixed backbone (two layers,
// profile dimension 3): config from the metadata (bounded), then every tensor. First byte: odd = the
// checksum is required, even = not.
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool require_checksum = (data[0] & 1) != 0;
  return chord::fuzz::expect_decoded_or_named_error("input.safetensors", [&] {
    namespace p = chord::personalize;
    const chord::SafetensorsFile file =
        chord::decode_safetensors(data + 1, size - 1, "input.safetensors", require_checksum);
    const p::HypernetConfig config = p::hypernet_config_from(file, 3, "input.safetensors");
    p::Hypernetworks nets({{"a", 4, 3}, {"b", 2, 5}}, config);
    p::read_hypernetworks(file, nets, 0x1234, "input.safetensors");
  });
}
