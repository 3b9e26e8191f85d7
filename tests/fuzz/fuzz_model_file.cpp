// libFuzzer target: a safetensors file read as a chord model (SASRec or Caser). First byte: odd = the
// checksum is required, even = not (so that crafted metadata reaches the model's limits and shapes).
// A valid-looking file must never allocate beyond what it holds (core/limits.hpp): libFuzzer's
// -rss_limit_mb / -malloc_limit_mb report it.
#include "chord/models/model_file.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool require_checksum = (data[0] & 1) != 0;
  return chord::fuzz::expect_decoded_or_named_error("input.safetensors", [&] {
    const chord::SafetensorsFile file =
        chord::decode_safetensors(data + 1, size - 1, "input.safetensors", require_checksum);
    const chord::models::LoadedModel model = chord::models::model_from_file(file, "input.safetensors");
    chord::fuzz::require(model.sasrec.has_value() != model.caser.has_value(), "not exactly one model");
  });
}
