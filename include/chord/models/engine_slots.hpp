// chord/models/engine_slots.hpp: where an inference engine holds each described tensor.
//
// An engine (SasrecInference, CaserInference) lists its runtime layers once, in the description's
// order (slots()); everything else is derived here from that list and models/description.hpp:
// building every slot from the model's parameters by name, the personalized layers a strategy
// replaces, and rebuilding those from other weights. A slot whose kind disagrees with the described
// role, or a count that differs, is refused when the engine is built, not found later by a test.
#pragma once

#include <cstddef>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/models/description.hpp"
#include "chord/models/runtime_layers.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::models {

// Exactly one of the two is set: tables are RuntimeEmbeddings, every other tensor a RuntimeLinear.
struct RuntimeSlot {
  RuntimeLinear* linear = nullptr;
  RuntimeEmbedding* table = nullptr;
};

namespace detail {
inline void check_slots(const std::vector<RuntimeSlot>& slots, const ModelDescription& desc) {
  CHORD_CHECK(slots.size() == desc.tensors.size(), desc.architecture, ": the engine holds ", slots.size(),
              " quantizable layers, the description lists ", desc.tensors.size());
  for (std::size_t i = 0; i < slots.size(); ++i)
    CHORD_CHECK((slots[i].table != nullptr) == desc.tensors[i].is_table() &&
                    (slots[i].linear != nullptr) != desc.tensors[i].is_table(),
                desc.architecture, ": the engine's slot ", i, " does not hold a ", to_string(desc.tensors[i].role),
                " ('", desc.tensors[i].name, "')");
}
}  // namespace detail

// Slot i <- tensor i of `params` (weights and bias by name) under `options` (its bits[i]).
inline void build_slots(const std::vector<RuntimeSlot>& slots, const ModelDescription& desc, const nn::Parameters& params,
                        const InferenceOptions& options) {
  detail::check_slots(slots, desc);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const QuantizableTensor& t = desc.tensors[i];
    if (t.is_table())
      *slots[i].table = RuntimeEmbedding::create(desc.weights(params, i), t.channels, t.fan_in, options, i, t.name.c_str());
    else
      *slots[i].linear = RuntimeLinear::create(desc.weights(params, i), desc.bias(params, i), t.channels, t.fan_in,
                                               options, i, t.name.c_str());
  }
}

// The personalized slots' layers, in the strategy's order (a caller with channels already quantized
// replaces their `layer` with LinearLayer::quantized(MixedMatrix(q), its bias, mode) and sets `kernels`).
inline std::vector<RuntimeLinear*> personalized_linears(const std::vector<RuntimeSlot>& slots,
                                                        const ModelDescription& desc) {
  detail::check_slots(slots, desc);
  std::vector<RuntimeLinear*> out;
  for (std::size_t i : desc.personalized_slots()) {
    CHORD_CHECK(slots[i].linear != nullptr, desc.architecture, ": personalized tensor '", desc.tensors[i].name,
                "' is an embedding table; the engines personalize linear layers only");
    out.push_back(slots[i].linear);
  }
  return out;
}

// The personalized layers rebuilt from `weights` (one [channels, fan_in] matrix each, the strategy's
// order) under `options` (bits indexed like the whole plan; dense when its mode is dense_f32), keeping
// their biases and every other slot: one engine serves many strategies and weight sets.
inline void rebuild_personalized(const std::vector<RuntimeSlot>& slots, const ModelDescription& desc,
                                 const std::vector<const float*>& weights, const InferenceOptions& options) {
  const std::vector<RuntimeLinear*> layers = personalized_linears(slots, desc);
  const std::vector<std::size_t> index = desc.personalized_slots();
  CHORD_CHECK(weights.size() == layers.size(), desc.architecture, ": ", weights.size(),
              " personalized matrices given, the model has ", layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    CHORD_CHECK(weights[l] != nullptr, desc.architecture, ": personalized layer ", l, " ('",
                desc.tensors[index[l]].name, "') has no weights");
    RuntimeLinear& r = *layers[l];
    r = RuntimeLinear::create(weights[l], r.layer.bias_or_null(), r.out(), r.in(), options, index[l],
                              desc.tensors[index[l]].name.c_str());
  }
}

}  // namespace chord::models
