// libFuzzer target: a safetensors file read as a chord model (SASRec or Caser). First byte: odd = the
// checksum is required, even = not (so that crafted metadata reaches the model's limits and shapes).
// A valid-looking file must never allocate beyond what it holds (core/limits.hpp): libFuzzer's
// -rss_limit_mb / -malloc_limit_mb report it.
#include "chord/models/data_binding.hpp"
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
    // the data binding (data.fingerprint, id maps), bounded by the model's counts
    const std::int64_t items = model.sasrec ? model.sasrec->config().num_items : model.caser->config().num_items;
    const std::int64_t users = model.sasrec ? -1 : model.caser->config().num_users;
    const chord::models::DataBinding b = chord::models::binding_from(model.metadata, "model 'input.safetensors'", items, users);
    chord::fuzz::require(b.item_ids.empty() || std::int64_t(b.item_ids.size()) == items, "an item map of another size");
  });
}
