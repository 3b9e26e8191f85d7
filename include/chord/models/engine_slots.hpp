// chord/models/engine_slots.hpp: where an inference engine holds each described tensor.
//
// An engine (SasrecInference, CaserInference) lists its runtime layers once, in the description's
// order (slots()); everything else is derived here from that list and models/description.hpp:
// building every slot from the model's parameters by name, installing a strategy's quantized channels
// in the personalized slots (tables and linear layers alike), and rebuilding those from other weights. A slot whose kind disagrees with the described
// role, or a count that differs, is refused when the engine is built, not found later by a test.
#pragma once

#include <cstddef>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/layer_weights.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
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

// The personalized slots, in the strategy's order.
inline std::vector<RuntimeSlot> personalized_slots(const std::vector<RuntimeSlot>& slots, const ModelDescription& desc) {
  detail::check_slots(slots, desc);
  std::vector<RuntimeSlot> out;
  for (std::size_t i : desc.personalized_slots()) out.push_back(slots[i]);
  return out;
}

// Channels already quantized (one [channels, fan_in] set per personalized tensor, the strategy's order)
// installed as the personalized slots, packed for `kernels`; biases and the padding-row rule are kept.
inline void install_personalized(const std::vector<RuntimeSlot>& slots, const ModelDescription& desc,
                                 const std::vector<QuantizedChannels>& channels, LinearMode mode,
                                 const KernelTable* kernels) {
  const std::vector<RuntimeSlot> mine = personalized_slots(slots, desc);
  CHORD_CHECK(channels.size() == mine.size(), desc.architecture, ": ", channels.size(), " quantized matrices for ",
              mine.size(), " personalized layers");
  for (std::size_t l = 0; l < mine.size(); ++l) {
    if (mine[l].table != nullptr) {
      mine[l].table->install(channels[l], mode, kernels);
      continue;
    }
    RuntimeLinear& r = *mine[l].linear;
    r.layer = LinearLayer::quantized(MixedMatrix(channels[l]), r.layer.bias, mode);
    r.kernels = kernels;
  }
}

// The personalized slots rebuilt from `weights` (one [channels, fan_in] matrix each, the strategy's
// order) under `options` (bits indexed like the whole plan; dense when its mode is dense_f32), keeping
// biases, the padding-row rule and every other slot: one engine serves many strategies and weight sets.
inline void rebuild_personalized(const std::vector<RuntimeSlot>& slots, const ModelDescription& desc,
                                 const std::vector<const float*>& weights, const InferenceOptions& options) {
  const std::vector<RuntimeSlot> mine = personalized_slots(slots, desc);
  const std::vector<std::size_t> index = desc.personalized_slots();
  CHORD_CHECK(weights.size() == mine.size(), desc.architecture, ": ", weights.size(),
              " personalized matrices given, the model has ", mine.size());
  for (std::size_t l = 0; l < mine.size(); ++l) {
    const QuantizableTensor& t = desc.tensors[index[l]];
    CHORD_CHECK(weights[l] != nullptr, desc.architecture, ": personalized layer ", l, " ('", t.name, "') has no weights");
    if (mine[l].table != nullptr) {
      RuntimeEmbedding& e = *mine[l].table;
      const bool zero_padding = e.zero_padding_row();
      e = RuntimeEmbedding::create(weights[l], t.channels, t.fan_in, options, index[l], t.name.c_str());
      if (!zero_padding) e.keep_padding_row();
      continue;
    }
    RuntimeLinear& r = *mine[l].linear;
    r = RuntimeLinear::create(weights[l], r.layer.bias_or_null(), r.out(), r.in(), options, index[l], t.name.c_str());
  }
}

// What both engines offer over their slots (SasrecInference, CaserInference derive from it): Engine
// provides slots() and description().
template <class Engine>
class PersonalizedSlots {
 public:
  // The personalized slots rebuilt from `weights` (rebuild_personalized above): a device applying a new
  // strategy re-quantizes only what a strategy changes, and one engine serves many.
  void rebuild_personalized(const std::vector<const float*>& weights, const InferenceOptions& options) {
    Engine& e = static_cast<Engine&>(*this);
    models::rebuild_personalized(e.slots(), e.description(), weights, options);
  }
  // A strategy's quantized channels installed in the personalized slots (install_personalized above).
  void install_personalized(const std::vector<QuantizedChannels>& channels, LinearMode mode, const KernelTable* kernels) {
    Engine& e = static_cast<Engine&>(*this);
    models::install_personalized(e.slots(), e.description(), channels, mode, kernels);
  }
};

}  // namespace chord::models
