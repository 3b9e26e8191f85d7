// chord/personalize/device/plan.hpp: a loaded model's personalized layers and its full bit-width plan.
//
// Everything here is derived from the model's one description (models/description.hpp): the
// personalized layers (the strategy's layers, in its order), the fingerprint the cloud's adapter
// computes from the same description, the frozen fp32 weights of those layers, and the inference
// graph's plan (models::InferenceOptions::bits): the strategy's widths on the personalized tensors,
// every other tensor (the embedding tables) at one uniform device width.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/models/description.hpp"
#include "chord/models/model_file.hpp"

namespace chord::personalize {

// [layer][channel] widths in {0, 2, 4, 8}: a strategy's widths, or a whole plan's.
using Widths = std::vector<std::vector<std::uint8_t>>;

inline std::vector<LayerShape> personalized_layers(const models::LoadedModel& model) {
  return models::describe(model).personalized_shapes();
}
inline std::uint64_t device_fingerprint(const models::LoadedModel& model) { return models::describe(model).fingerprint(); }
inline std::vector<const float*> personalized_weights(const models::LoadedModel& model) {
  return models::describe(model).personalized_weights(models::parameters(model));
}

inline void check_width(int bits, const char* what) {
  CHORD_CHECK(bits == 2 || bits == 4 || bits == 8, "device: ", what, " width ", bits, " is not 2, 4 or 8");
}

// The full plan for `model`: personalized[l][c] in {0, 2, 4, 8} on the personalized tensors (the
// strategy's order), every other tensor at uniform_bits in {2, 4, 8}.
inline Widths inference_bits(const models::ModelDescription& model, const Widths& personalized, int uniform_bits) {
  check_width(uniform_bits, "embedding");
  const std::vector<std::size_t> slots = model.personalized_slots();
  CHORD_CHECK(personalized.size() == slots.size(), "device: bits for ", personalized.size(),
              " personalized layers, the model has ", slots.size());
  Widths bits(model.tensors.size());
  for (std::size_t i = 0; i < model.tensors.size(); ++i)
    if (!model.tensors[i].personalized) bits[i].assign(model.tensors[i].channels, std::uint8_t(uniform_bits));
  for (std::size_t p = 0; p < slots.size(); ++p) {
    const models::QuantizableTensor& t = model.tensors[slots[p]];
    CHORD_CHECK(personalized[p].size() == t.channels, "device: layer '", t.name, "' has ", t.channels, " channels, ",
                personalized[p].size(), " widths given");
    for (std::uint8_t b : personalized[p])
      CHORD_CHECK(b == 0 || b == 2 || b == 4 || b == 8, "device: layer '", t.name, "': width ", int(b),
                  " is not 0, 2, 4 or 8");
    bits[slots[p]] = personalized[p];
  }
  return bits;
}

inline Widths inference_bits(const models::LoadedModel& model, const Widths& personalized, int uniform_bits) {
  return inference_bits(models::describe(model), personalized, uniform_bits);
}

// Uniform widths for the personalized layers (every channel at `bits`): a model without a strategy.
inline Widths uniform_personalized_bits(const std::vector<LayerShape>& layers, int bits) {
  Widths out;
  for (const LayerShape& s : layers) out.emplace_back(s.channels, std::uint8_t(bits));
  return out;
}
inline Widths uniform_personalized_bits(const models::LoadedModel& model, int bits) {
  return uniform_personalized_bits(personalized_layers(model), bits);
}

}  // namespace chord::personalize
