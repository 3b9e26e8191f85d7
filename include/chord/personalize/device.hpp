// chord/personalize/device.hpp: the device side of CHORD for the real recommenders (SASRec, Caser).
//
// A device holds a frozen model file (models/model_file.hpp) and never trains: this header includes
// none of the training code (no optimizer, no loss, no hypernetwork or relaxation; tests/device_only.cpp
// proves it with a compile-time guard). What it does:
//   - names the personalized layers from the model's configuration alone (personalized_layers), and
//     so computes the fingerprint the cloud's adapter computes from its training graph
//     (device_fingerprint == backbone_fingerprint(adapter), tested);
//   - turns per-channel widths of the personalized layers into the inference graph's full plan
//     (inference_bits): every other quantizable layer (the embeddings) at one uniform device width;
//   - FrozenChannelCodes: the frozen personalized matrices quantized once per channel at 2, 4 and 8 bits
//     (at install), so that a strategy only selects each channel's codes and packs them;
//   - DeviceModel: the installed model (embeddings quantized once at that width, the frozen codes
//     cached), the fp32 profile, the adaptation (decode the cloud's packet, select the channels' codes
//     at their widths and pack the personalized layers: adapt()), and the personalized model's scores.
// Personalized layers (the strategy's order; the adapters' layers() use the same):
//   SASRec: per block b: blocks.b.attn.{q, k, v[, out]}.weight [d, d], blocks.b.ffn.fc1.weight [hidden, d],
//           blocks.b.ffn.fc2.weight [d, hidden];
//   Caser:  conv_v.weight [nv, L], conv_h.h1 .. conv_h.hL.weight [nh, h d], fc1.weight [d, nv d + L nh].
// Why the embeddings stay uniform: they hold most of the weights (item tables of thousands of rows),
// their rows are items rather than features of the user's computation, and a user touches only the
// rows of the items it sees; personalizing them would make the strategy as long as the catalogue for
// little gain, so the device quantizes them once, at install, at a width it chooses (8 by default).
// Profiles: computed by the fp32 model (the frozen backbone), SASRec's last hidden state h [d], Caser's
// state x = [z | user embedding] [2d] (docs/chord.md, "Backbones").
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/core/strategy.hpp"
#include "chord/data/dataset.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::personalize {

// --- names, shapes, fingerprint (from the configuration alone) -------------------------------------

inline std::vector<LayerShape> sasrec_personalized_layers(const models::SasrecConfig& c) {
  const auto d = std::uint32_t(c.d), hidden = std::uint32_t(c.hidden);
  std::vector<LayerShape> layers;
  for (std::int32_t b = 0; b < c.blocks; ++b) {
    const std::string block = "blocks." + std::to_string(b);
    for (const char* p : {"q", "k", "v", "out"})
      if (std::string(p) != "out" || c.output_projection) layers.push_back({block + ".attn." + p + ".weight", d, d});
    layers.push_back({block + ".ffn.fc1.weight", hidden, d});
    layers.push_back({block + ".ffn.fc2.weight", d, hidden});
  }
  return layers;
}

inline std::vector<LayerShape> caser_personalized_layers(const models::CaserConfig& c) {
  const auto d = std::uint32_t(c.d);
  std::vector<LayerShape> layers = {{"conv_v.weight", std::uint32_t(c.nv), std::uint32_t(c.L)}};
  for (std::int32_t h = 1; h <= c.L; ++h)
    layers.push_back({"conv_h.h" + std::to_string(h) + ".weight", std::uint32_t(c.nh), std::uint32_t(h) * d});
  layers.push_back({"fc1.weight", d, std::uint32_t(c.conv_features())});
  return layers;
}

inline std::vector<LayerShape> personalized_layers(const models::LoadedModel& model) {
  if (model.sasrec) return sasrec_personalized_layers(model.sasrec->config());
  CHORD_CHECK(model.caser.has_value(), "device: the loaded model holds neither SASRec nor Caser");
  return caser_personalized_layers(model.caser->config());
}

inline std::uint64_t device_fingerprint(const models::LoadedModel& model) {
  return model_fingerprint(personalized_layers(model), model.architecture);
}

// Where the personalized layers sit in the inference graph's quantizable layers: SASRec's come after
// item_emb and pos_emb, Caser's after item_emb and user_emb (and before out_emb); both start at 2.
inline constexpr std::size_t kFirstPersonalizedLayer = 2;

inline std::vector<LayerShape> quantizable_layers(const models::LoadedModel& model) {
  if (model.sasrec) return models::sasrec_quantizable_layers(model.sasrec->config());
  CHORD_CHECK(model.caser.has_value(), "device: the loaded model holds neither SASRec nor Caser");
  return models::caser_quantizable_layers(model.caser->config());
}

inline void check_width(int bits, const char* what) {
  CHORD_CHECK(bits == 2 || bits == 4 || bits == 8, "device: ", what, " width ", bits, " is not 2, 4 or 8");
}

// The full plan of models::InferenceOptions::bits (the order of sasrec_quantizable_layers /
// caser_quantizable_layers): personalized[l][c] in {0, 2, 4, 8} for the personalized layers, every
// other layer (embeddings) at embedding_bits in {2, 4, 8}.
// all: the quantizable layers; mine: the personalized ones (all[2 ..]).
inline std::vector<std::vector<std::uint8_t>> inference_bits(const std::vector<LayerShape>& all,
                                                             const std::vector<LayerShape>& mine,
                                                             const std::vector<std::vector<std::uint8_t>>& personalized,
                                                             int embedding_bits) {
  check_width(embedding_bits, "embedding");
  CHORD_CHECK(kFirstPersonalizedLayer + mine.size() <= all.size(), "device: ", mine.size(),
              " personalized layers do not fit in ", all.size(), " quantizable layers");
  CHORD_CHECK(personalized.size() == mine.size(), "device: bits for ", personalized.size(),
              " personalized layers, the model has ", mine.size());
  std::vector<std::vector<std::uint8_t>> bits(all.size());
  for (std::size_t l = 0; l < all.size(); ++l) {
    const bool personal = l >= kFirstPersonalizedLayer && l < kFirstPersonalizedLayer + mine.size();
    if (!personal) {
      bits[l].assign(all[l].channels, std::uint8_t(embedding_bits));
      continue;
    }
    const std::size_t p = l - kFirstPersonalizedLayer;
    CHORD_CHECK(personalized[p].size() == mine[p].channels, "device: layer '", mine[p].name, "' has ",
                mine[p].channels, " channels, ", personalized[p].size(), " widths given");
    for (std::uint8_t b : personalized[p])
      CHORD_CHECK(b == 0 || b == 2 || b == 4 || b == 8, "device: layer '", mine[p].name, "': width ", int(b),
                  " is not 0, 2, 4 or 8");
    bits[l] = personalized[p];
  }
  return bits;
}

inline std::vector<std::vector<std::uint8_t>> inference_bits(const models::LoadedModel& model,
                                                             const std::vector<std::vector<std::uint8_t>>& personalized,
                                                             int embedding_bits) {
  return inference_bits(quantizable_layers(model), personalized_layers(model), personalized, embedding_bits);
}

// The frozen fp32 weights of the personalized layers, [channels, fan_in] each, in their order.
inline std::vector<const float*> personalized_weights(const models::SasrecModel& model) {
  std::vector<const float*> w;
  const nn::Parameters& p = model.params();
  for (const models::SasrecBlock& b : model.blocks) {
    for (const nn::Linear* l : {&b.attn.q, &b.attn.k, &b.attn.v}) w.push_back(p.value(l->weight));
    if (b.attn.has_output_projection) w.push_back(p.value(b.attn.out.weight));
    w.push_back(p.value(b.ffn.fc1.weight));
    w.push_back(p.value(b.ffn.fc2.weight));
  }
  return w;
}
inline std::vector<const float*> personalized_weights(const models::CaserModel& model) {
  std::vector<const float*> w = {model.params().value(model.conv_v.weight)};
  for (nn::ParamId id : model.conv_h.weight) w.push_back(model.params().value(id));
  w.push_back(model.params().value(model.fc1.weight));
  return w;
}
inline std::vector<const float*> personalized_weights(const models::LoadedModel& model) {
  if (model.sasrec) return personalized_weights(*model.sasrec);
  CHORD_CHECK(model.caser.has_value(), "device: the loaded model holds neither SASRec nor Caser");
  return personalized_weights(*model.caser);
}

// Uniform widths for the personalized layers (every channel at `bits`): a model without a strategy.
inline std::vector<std::vector<std::uint8_t>> uniform_personalized_bits(const std::vector<LayerShape>& layers, int bits) {
  std::vector<std::vector<std::uint8_t>> out;
  for (const LayerShape& s : layers) out.emplace_back(s.channels, std::uint8_t(bits));
  return out;
}
inline std::vector<std::vector<std::uint8_t>> uniform_personalized_bits(const models::LoadedModel& model, int bits) {
  return uniform_personalized_bits(personalized_layers(model), bits);
}

// --- the device ---------------------------------------------------------------------------------

struct DeviceOptions {
  int embedding_bits = 8;                                  // the uniform width of the non-personalized layers
  LinearMode mode = LinearMode::mixed_s8;  // W-A8; mixed_f32 = W-A32
  const KernelTable* kernels = nullptr;                    // null: &chord::best_kernels()
};

// What an adaptation did and how long it took (decode, then quantize + pack).
struct Adaptation {
  StrategyPacket packet;
  std::vector<std::vector<std::uint8_t>> bits;  // [personalized layer][channel] under the device's palette
  double average_bits = 0.0;                    // per weight of the personalized layers
  double decode_seconds = 0.0, quantize_seconds = 0.0;
};

// The frozen personalized matrices, each channel quantized at 2, 4 and 8 bits by quantize_channels (the
// clip search of core/quantizer.hpp), once. Why: the clip search costs ~30x the packing (1.6 ms against
// ~0.07 ms for SASRec d = 64 on one core), and the weights never change, so a device that caches the
// three codings at install answers every later strategy with a selection and a pack. The cache holds
// 3 bytes per weight (int8 codes) and 3 scales per channel: less than the fp32 weights themselves.
// select() returns exactly what quantize_channels(frozen, bits) would (same function, same inputs).
class FrozenChannelCodes {
 public:
  FrozenChannelCodes() = default;
  // layers[l]: [channels, fan_in] of frozen[l] (row-major fp32, not kept).
  FrozenChannelCodes(const std::vector<LayerShape>& layers, const std::vector<const float*>& frozen) : layers_(layers) {
    CHORD_CHECK(frozen.size() == layers.size(), "FrozenChannelCodes: ", frozen.size(), " matrices for ", layers.size(),
                " layers");
    codes_.resize(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l)
      for (int bits : {2, 4, 8}) {
        const std::vector<std::uint8_t> width(layers[l].channels, std::uint8_t(bits));
        codes_[l][index(bits)] = quantize_channels(frozen[l], layers[l].channels, layers[l].fan_in, width.data());
      }
  }

  std::size_t layer_count() const { return layers_.size(); }

  // Layer l with channel c at bits[c] in {0, 2, 4, 8} (0: pruned, codes and scale 0).
  QuantizedChannels select(std::size_t l, const std::vector<std::uint8_t>& bits) const {
    CHORD_CHECK(l < layers_.size(), "FrozenChannelCodes: layer ", l, " of ", layers_.size());
    const std::size_t n = layers_[l].channels, k = layers_[l].fan_in;
    CHORD_CHECK(bits.size() == n, "FrozenChannelCodes: layer '", layers_[l].name, "' has ", n, " channels, ",
                bits.size(), " widths given");
    QuantizedChannels q;
    q.n = n, q.k = k, q.bits = bits;
    q.codes.assign(n * k, 0);
    q.scales.assign(n, 0.0f);
    for (std::size_t c = 0; c < n; ++c) {
      CHORD_CHECK(bits[c] == 0 || bits[c] == 2 || bits[c] == 4 || bits[c] == 8, "FrozenChannelCodes: layer '",
                  layers_[l].name, "': width ", int(bits[c]), " is not 0, 2, 4 or 8");
      if (bits[c] == 0) continue;
      const QuantizedChannels& from = codes_[l][index(bits[c])];
      std::copy(from.codes.begin() + std::ptrdiff_t(c * k), from.codes.begin() + std::ptrdiff_t((c + 1) * k),
                q.codes.begin() + std::ptrdiff_t(c * k));
      q.scales[c] = from.scales[c];
    }
    return q;
  }

 private:
  static std::size_t index(int bits) { return bits == 2 ? 0 : bits == 4 ? 1 : 2; }
  std::vector<LayerShape> layers_;
  std::vector<std::array<QuantizedChannels, 3>> codes_;  // [layer][2, 4, 8 bits]
};

// Installs quantized channels as an engine's personalized layers (SasrecInference, CaserInference:
// personalized_linears(), in the strategy's order), packed for the kernels.
template <class Engine>
void install_personalized(Engine& engine, const std::vector<QuantizedChannels>& channels, LinearMode mode,
                          const KernelTable* kernels) {
  const std::vector<models::RuntimeLinear*> layers = engine.personalized_linears();
  CHORD_CHECK(channels.size() == layers.size(), "device: ", channels.size(), " quantized matrices for ",
              layers.size(), " personalized layers");
  for (std::size_t l = 0; l < layers.size(); ++l) {
    models::RuntimeLinear& r = *layers[l];
    r.layer = LinearLayer::quantized(MixedMatrix(channels[l]), r.layer.bias, mode);
    r.kernels = kernels;
  }
}

// One frozen model on a device. Not thread-safe for adapt(); encode/score are const (one Scratch per thread).
class DeviceModel {
 public:
  // Installs `model` (kept by reference: it must outlive this object): the fp32 engine for profiles,
  // and the quantized engine with the embeddings at options.embedding_bits and the personalized layers
  // at 8 bits until a strategy arrives.
  explicit DeviceModel(const models::LoadedModel& model, const DeviceOptions& options = {})
      : model_(model), options_(options) {
    check_width(options.embedding_bits, "embedding");
    CHORD_CHECK(options.mode != LinearMode::dense_f32, "DeviceModel: the mode must be W-A8 or W-A32");
    if (options_.kernels == nullptr) options_.kernels = &chord::best_kernels();
    layers_ = personalized_layers(model);
    fingerprint_ = model_fingerprint(layers_, model.architecture);
    weights_ = personalized_weights(model);
    codes_ = FrozenChannelCodes(layers_, weights_);
    bits_ = inference_bits(model, uniform_personalized_bits(model, 8), options_.embedding_bits);
    models::InferenceOptions fp32;
    models::InferenceOptions quantized{options_.mode, bits_, options_.kernels, {}};
    if (model.sasrec) {
      sasrec_fp32_.emplace(*model.sasrec, fp32);
      sasrec_.emplace(*model.sasrec, quantized);
    } else {
      caser_fp32_.emplace(*model.caser, fp32);
      caser_.emplace(*model.caser, quantized);
    }
  }

  const std::string& architecture() const { return model_.architecture; }
  const std::vector<LayerShape>& layers() const { return layers_; }
  std::uint64_t fingerprint() const { return fingerprint_; }
  PacketExpectation expectation() const { return {fingerprint_, layers_}; }
  // The widths of every quantizable layer now applied (models::InferenceOptions::bits).
  const std::vector<std::vector<std::uint8_t>>& bits() const { return bits_; }
  std::size_t profile_dim() const { return sasrec_ ? sasrec_->state_size() : caser_->state_size(); }
  std::size_t state_size() const { return profile_dim(); }
  std::int32_t num_items() const { return sasrec_ ? sasrec_->num_items() : caser_->num_items(); }
  std::size_t weight_bytes() const { return sasrec_ ? sasrec_->weight_bytes() : caser_->weight_bytes(); }

  // The user's profile u: the fp32 frozen model's state after `history` (oldest first).
  std::vector<float> profile(std::int32_t user, const std::vector<data::ItemId>& history) const {
    std::vector<float> u(profile_dim());
    if (sasrec_fp32_) {
      auto s = sasrec_fp32_->make_scratch();
      sasrec_fp32_->encode(user, history.data(), history.size(), s, u.data());
    } else {
      auto s = caser_fp32_->make_scratch();
      caser_fp32_->encode(user, history.data(), history.size(), s, u.data());
    }
    return u;
  }

  // The personalized layers at bits[layer][channel] in {0, 2, 4, 8}: each channel's cached codes at its
  // width (FrozenChannelCodes: the quantization itself happened at install), packed.
  void apply_bits(const std::vector<std::vector<std::uint8_t>>& personalized) {
    bits_ = inference_bits(model_, personalized, options_.embedding_bits);  // validates every count and width
    std::vector<QuantizedChannels> channels;
    for (std::size_t l = 0; l < layers_.size(); ++l) channels.push_back(codes_.select(l, personalized[l]));
    if (sasrec_)
      install_personalized(*sasrec_, channels, options_.mode, options_.kernels);
    else
      install_personalized(*caser_, channels, options_.mode, options_.kernels);
  }

  // The adaptation: decode the cloud's packet strictly (for this model), map its levels to widths with
  // the device's palette, select the channels' codes and pack (apply_bits). Timed, so callers can report it.
  Adaptation adapt(const std::uint8_t* packet, std::size_t size, const Palette& device_palette,
                   const std::string& source) {
    using clock = std::chrono::steady_clock;
    check_palette(device_palette, "DeviceModel::adapt");
    Adaptation a;
    const auto t0 = clock::now();
    a.packet = decode_strategy(packet, size, expectation(), source);
    a.bits = strategy_bits(a.packet.strategy, device_palette);
    const auto t1 = clock::now();
    apply_bits(a.bits);
    const auto t2 = clock::now();
    a.average_bits = average_bits(a.packet.strategy, layers_, device_palette);
    a.decode_seconds = std::chrono::duration<double>(t1 - t0).count();
    a.quantize_seconds = std::chrono::duration<double>(t2 - t1).count();
    return a;
  }

  // Scores of the personalized quantized model: state after `history`, then every item.
  // Returns [num_items + 1] indexed by item id (index 0, the padding id, is meaningless).
  std::vector<float> score_all(std::int32_t user, const std::vector<data::ItemId>& history) const {
    std::vector<float> state(state_size()), scores(std::size_t(num_items()) + 1);
    if (sasrec_) {
      auto s = sasrec_->make_scratch();
      sasrec_->encode(user, history.data(), history.size(), s, state.data());
      sasrec_->score_all(state.data(), scores.data(), s);
    } else {
      auto s = caser_->make_scratch();
      caser_->encode(user, history.data(), history.size(), s, state.data());
      caser_->score_all(state.data(), scores.data(), s);
    }
    return scores;
  }

  // The k best items for the user, best first, skipping the history (ties: the smaller id first).
  std::vector<std::pair<data::ItemId, float>> top_items(std::int32_t user, const std::vector<data::ItemId>& history,
                                                        std::size_t k) const {
    const std::vector<float> scores = score_all(user, history);
    std::vector<std::uint8_t> seen(scores.size(), 0);
    seen[0] = 1;
    for (data::ItemId item : history)
      if (item >= 1 && std::size_t(item) < seen.size()) seen[std::size_t(item)] = 1;
    std::vector<data::ItemId> ids;
    for (std::size_t i = 1; i < scores.size(); ++i)
      if (!seen[i]) ids.push_back(data::ItemId(i));
    const std::size_t n = std::min(k, ids.size());
    std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(), [&](data::ItemId a, data::ItemId b) {
      return scores[std::size_t(a)] > scores[std::size_t(b)] || (scores[std::size_t(a)] == scores[std::size_t(b)] && a < b);
    });
    std::vector<std::pair<data::ItemId, float>> out;
    for (std::size_t i = 0; i < n; ++i) out.emplace_back(ids[i], scores[std::size_t(ids[i])]);
    return out;
  }

  // The engines themselves (tests, benchmarks): exactly one pair is set.
  const models::SasrecInference* sasrec() const { return sasrec_ ? &*sasrec_ : nullptr; }
  const models::CaserInference* caser() const { return caser_ ? &*caser_ : nullptr; }

 private:
  const models::LoadedModel& model_;
  DeviceOptions options_;
  std::vector<LayerShape> layers_;
  std::uint64_t fingerprint_ = 0;
  std::vector<const float*> weights_;
  FrozenChannelCodes codes_;
  std::vector<std::vector<std::uint8_t>> bits_;
  std::optional<models::SasrecInference> sasrec_fp32_, sasrec_;
  std::optional<models::CaserInference> caser_fp32_, caser_;
};

}  // namespace chord::personalize
