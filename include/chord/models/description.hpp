// chord/models/description.hpp: the one description of each architecture's quantizable tensors.
//
// Everything that must agree about a model's tensors is derived from describe(config):
//   - the inference graph's bit-width plan (InferenceOptions::bits: one entry per tensor, this order)
//     and the engines' slots (SasrecInference / CaserInference build slot i from tensor i, by name);
//   - the personalized layers, i.e. the strategy's layers and their order (those with `personalized`):
//     the device's layer list, the cloud adapter's layers() and the hypernetworks' shapes;
//   - the model fingerprint (core/strategy.hpp model_fingerprint over the personalized shapes and the
//     architecture), which the device, the cloud and both wire formats check;
//   - where each tensor's fp32 weights are: the nn::Parameters entry of the same name, as in the model
//     file ("blocks.0.attn.q.weight"), its bias (if the layer has one) the entry "<prefix>.bias".
// Adding a tensor to the personalized set is flipping its `personalized` below (or, for one run, in a
// copy given to the engines, DeviceModel and the adapters): the device, the cloud, the trainer and the
// wire formats follow. An embedding table's channels are its rows (items).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/models/config.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::models {

// What a tensor is in its graph: it decides which runtime layer holds it (a RuntimeEmbedding for a
// table, a RuntimeLinear for the rest) and is printed by `chord info`.
enum class TensorRole {
  embedding_table,     // [rows, d]: gathered on the way in, or scored against a state on the way out
  projection,          // [out, in] linear layer of attention or of a feed-forward block
  convolution_filter,  // a filter bank as a linear layer over windows (ref/conv.hpp)
  fully_connected,     // [out, in] linear layer after the convolutions
};

inline const char* to_string(TensorRole role) {
  switch (role) {
    case TensorRole::embedding_table: return "embedding table";
    case TensorRole::projection: return "projection";
    case TensorRole::convolution_filter: return "convolution filter";
    case TensorRole::fully_connected: return "fully connected";
  }
  return "unknown";
}

// One quantizable tensor: [channels, fan_in] row-major, one output channel (or table row) per row.
struct QuantizableTensor {
  std::string name;  // its nn::Parameters / model-file name, e.g. "blocks.0.attn.q.weight"
  std::uint32_t channels = 0, fan_in = 0;
  TensorRole role = TensorRole::projection;
  bool personalized = false;  // per-channel widths from the strategy; otherwise the device's uniform width

  LayerShape shape() const { return {name, channels, fan_in}; }
  bool is_table() const { return role == TensorRole::embedding_table; }
  // The bias's parameter name ("fc1.weight" -> "fc1.bias"); tables have none.
  std::string bias_name() const {
    const std::string suffix = ".weight";
    CHORD_CHECK(name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0,
                "model description: tensor '", name, "' does not end in '.weight'");
    return name.substr(0, name.size() - suffix.size()) + ".bias";
  }
};

struct ModelDescription {
  std::string architecture;                // "sasrec" or "caser": hashed into the fingerprint
  std::vector<QuantizableTensor> tensors;  // the graph's quantizable tensors, in plan order
  std::size_t profile_dim = 0;             // the fp32 state the device uploads as the user's profile
  std::string profile;                     // what that state is, in words

  std::vector<LayerShape> quantizable_shapes() const {
    std::vector<LayerShape> out;
    for (const QuantizableTensor& t : tensors) out.push_back(t.shape());
    return out;
  }
  // Indices into `tensors` of the personalized ones: the strategy's layers, in its order.
  std::vector<std::size_t> personalized_slots() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].personalized) out.push_back(i);
    return out;
  }
  std::vector<LayerShape> personalized_shapes() const {
    std::vector<LayerShape> out;
    for (std::size_t i : personalized_slots()) out.push_back(tensors[i].shape());
    return out;
  }
  std::uint64_t fingerprint() const { return model_fingerprint(personalized_shapes(), architecture); }

  // A caller's description must be the model's own (`base`: describe(config)) up to which tensors are
  // personalized: same architecture, tensors, shapes and roles, in the same order.
  void check_same_tensors(const ModelDescription& base) const {
    CHORD_CHECK(architecture == base.architecture && tensors.size() == base.tensors.size(), "model description: ",
                architecture, " with ", tensors.size(), " tensors given for a ", base.architecture, " with ",
                base.tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const QuantizableTensor &t = tensors[i], &b = base.tensors[i];
      CHORD_CHECK(t.name == b.name && t.channels == b.channels && t.fan_in == b.fan_in && t.role == b.role,
                  "model description: tensor ", i, " is '", t.name, "' [", t.channels, ", ", t.fan_in, "], the model's is '",
                  b.name, "' [", b.channels, ", ", b.fan_in, "] (", to_string(b.role), ")");
    }
  }

  // Tensor i's fp32 values in `params` (a model's registry), checked against the described shape.
  const float* weights(const nn::Parameters& params, std::size_t i) const {
    const QuantizableTensor& t = tensors.at(i);
    const nn::ParamId id = params.id(t.name);
    CHORD_CHECK(params.info(id).size == std::size_t(t.channels) * t.fan_in, architecture, ": parameter '", t.name,
                "' holds ", params.info(id).size, " values, the description says ", t.channels, " x ", t.fan_in);
    return params.value(id);
  }
  // Its bias [channels], or null for a table or a layer without one.
  const float* bias(const nn::Parameters& params, std::size_t i) const {
    const QuantizableTensor& t = tensors.at(i);
    if (t.is_table()) return nullptr;
    const auto id = params.find(t.bias_name());
    if (!id) return nullptr;
    CHORD_CHECK(params.info(*id).size == t.channels, architecture, ": bias '", t.bias_name(), "' holds ",
                params.info(*id).size, " values for ", t.channels, " channels");
    return params.value(*id);
  }
  // The frozen fp32 weights of the personalized tensors, in the strategy's order.
  std::vector<const float*> personalized_weights(const nn::Parameters& params) const {
    std::vector<const float*> out;
    for (std::size_t i : personalized_slots()) out.push_back(weights(params, i));
    return out;
  }
};

// SASRec: the item and position tables (uniform), then per block the attention projections q, k, v
// [, out] [d, d] and the FFN's fc1 [hidden, d], fc2 [d, hidden] (personalized). Profile: the last
// position's final hidden state h [d].
inline ModelDescription describe(const SasrecConfig& c) {
  const auto d = std::uint32_t(c.d), hidden = std::uint32_t(c.hidden);
  ModelDescription m{"sasrec", {}, std::size_t(d), "the last position's final hidden state h [d]"};
  m.tensors.push_back({"item_emb.weight", std::uint32_t(c.num_items) + 1, d, TensorRole::embedding_table, false});
  m.tensors.push_back({"pos_emb.weight", std::uint32_t(c.max_len) + 1, d, TensorRole::embedding_table, false});
  for (std::int32_t b = 0; b < c.blocks; ++b) {
    const std::string block = "blocks." + std::to_string(b);
    for (const char* p : {"q", "k", "v", "out"})
      if (std::string(p) != "out" || c.output_projection)
        m.tensors.push_back({block + ".attn." + p + ".weight", d, d, TensorRole::projection, true});
    m.tensors.push_back({block + ".ffn.fc1.weight", hidden, d, TensorRole::projection, true});
    m.tensors.push_back({block + ".ffn.fc2.weight", d, hidden, TensorRole::projection, true});
  }
  return m;
}

// Caser: the item and user tables (uniform), the vertical filters conv_v [nv, L], the horizontal banks
// conv_h.h1 .. hL [nh, h d], fc1 [d, nv d + L nh] (personalized), the output table out_emb
// [num_items + 1, 2d] (uniform; out_bias stays fp32). Profile: the state x = [z | user embedding] [2d].
inline ModelDescription describe(const CaserConfig& c) {
  const auto d = std::uint32_t(c.d);
  ModelDescription m{"caser", {}, 2 * std::size_t(d), "the state x = [z | user embedding] [2d]"};
  m.tensors.push_back({"item_emb.weight", std::uint32_t(c.num_items) + 1, d, TensorRole::embedding_table, false});
  m.tensors.push_back({"user_emb.weight", std::uint32_t(c.num_users) + 1, d, TensorRole::embedding_table, false});
  m.tensors.push_back({"conv_v.weight", std::uint32_t(c.nv), std::uint32_t(c.L), TensorRole::convolution_filter, true});
  for (std::int32_t h = 1; h <= c.L; ++h)
    m.tensors.push_back({"conv_h.h" + std::to_string(h) + ".weight", std::uint32_t(c.nh), std::uint32_t(h) * d,
                         TensorRole::convolution_filter, true});
  m.tensors.push_back({"fc1.weight", d, std::uint32_t(c.conv_features()), TensorRole::fully_connected, true});
  m.tensors.push_back({"out_emb.weight", std::uint32_t(c.num_items) + 1, 2 * d, TensorRole::embedding_table, false});
  return m;
}

}  // namespace chord::models
