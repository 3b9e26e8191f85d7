// chord/personalize/device/device_model.hpp: one frozen model on a device (SASRec or Caser).
//
// A device holds a frozen model file (models/model_file.hpp) and never trains: nothing under
// personalize/device/ includes training code (no optimizer, no loss, no hypernetwork or relaxation;
// tests/device_only.cpp compiles every header of this folder and proves it with a compile-time guard).
// DeviceModel installs the model (embedding tables quantized once at the device's width, the frozen
// personalized channels' codes cached: adaptation.hpp), computes the fp32 profile the cloud receives,
// adapts to a strategy packet (adaptation.hpp's one path) and scores with the personalized model.
// Profiles and the personalized tensors are the description's (models/description.hpp); why the
// embedding tables stay uniform: docs/chord.md, "Backbones".
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/data/dataset.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ops/kernel_table.hpp"
#include "chord/personalize/device/adaptation.hpp"
#include "chord/personalize/device/plan.hpp"

namespace chord::personalize {

struct DeviceOptions {
  int embedding_bits = 8;                  // the uniform width of the non-personalized tensors
  LinearMode mode = LinearMode::mixed_s8;  // W-A8; mixed_f32 = W-A32
  const KernelTable* kernels = nullptr;    // null: &chord::best_kernels()
};

// What an adaptation did and how long it took (decode, then select + pack).
struct Adaptation : DecodedStrategy {
  double decode_seconds = 0.0, quantize_seconds = 0.0;
};

// One frozen model on a device. Not thread-safe for adapt(); encode/score are const (one Scratch per thread).
class DeviceModel {
  template <class Engine>
  struct Engines {
    Engine fp32, quantized;
  };
  // The one place that asks which architecture this is: f(engines) on whichever pair is installed
  // (defined before its uses: its return type is deduced).
  template <class F>
  decltype(auto) visit(F&& f) const {
    return sasrec_ ? f(*sasrec_) : f(*caser_);
  }
  template <class F>
  decltype(auto) visit(F&& f) {
    return sasrec_ ? f(*sasrec_) : f(*caser_);
  }

 public:
  // Installs `model` (kept by reference: it must outlive this object): the fp32 engine for profiles,
  // and the quantized engine with the embeddings at options.embedding_bits and the personalized layers
  // at 8 bits until a strategy arrives.
  // description: the model's own (models::describe) unless a caller personalizes other tensors (the
  // cloud must then use the same, or the fingerprints differ and every packet is refused).
  explicit DeviceModel(const models::LoadedModel& model, const DeviceOptions& options = {},
                       std::optional<models::ModelDescription> description = {})
      : model_(model), description_(description ? std::move(*description) : models::describe(model)), options_(options) {
    description_.check_same_tensors(models::describe(model));
    check_width(options.embedding_bits, "embedding");
    CHORD_CHECK(options.mode != LinearMode::dense_f32, "DeviceModel: the mode must be W-A8 or W-A32");
    if (options_.kernels == nullptr) options_.kernels = &chord::best_kernels();
    layers_ = description_.personalized_shapes();
    fingerprint_ = description_.fingerprint();
    codes_ = FrozenChannelCodes(layers_, description_.personalized_weights(models::parameters(model)));
    bits_ = inference_bits(description_, uniform_personalized_bits(layers_, 8), options_.embedding_bits);
    const models::InferenceOptions fp32, quantized{options_.mode, bits_, options_.kernels, {}};
    if (model.sasrec)
      sasrec_.emplace(Engines<models::SasrecInference>{{*model.sasrec, fp32, description_},
                                                       {*model.sasrec, quantized, description_}});
    else
      caser_.emplace(Engines<models::CaserInference>{{*model.caser, fp32, description_},
                                                     {*model.caser, quantized, description_}});
  }

  const std::string& architecture() const { return model_.architecture; }
  const models::ModelDescription& description() const { return description_; }
  const std::vector<LayerShape>& layers() const { return layers_; }
  std::uint64_t fingerprint() const { return fingerprint_; }
  PacketExpectation expectation() const { return {fingerprint_, layers_}; }
  // The widths of every quantizable tensor now applied (models::InferenceOptions::bits).
  const Widths& bits() const { return bits_; }
  std::size_t profile_dim() const { return description_.profile_dim; }
  std::size_t state_size() const { return profile_dim(); }
  std::int32_t num_items() const {
    return visit([](const auto& e) { return e.quantized.num_items(); });
  }
  std::size_t weight_bytes() const {
    return visit([](const auto& e) { return e.quantized.weight_bytes(); });
  }

  // The user's profile u: the fp32 frozen model's state after `history` (oldest first).
  std::vector<float> profile(std::int32_t user, const std::vector<data::ItemId>& history) const {
    std::vector<float> u(profile_dim());
    visit([&](const auto& e) {
      auto s = e.fp32.make_scratch();
      e.fp32.encode(user, history.data(), history.size(), s, u.data());
    });
    return u;
  }

  // The personalized layers at bits[layer][channel] in {0, 2, 4, 8}: each channel's cached codes at
  // its width, packed (adaptation.hpp).
  void apply_bits(const Widths& personalized) {
    bits_ = inference_bits(description_, personalized, options_.embedding_bits);  // validates every count and width
    const std::vector<QuantizedChannels> channels = codes_.select(personalized);
    visit([&](auto& e) { install_personalized(e.quantized, channels, options_.mode, options_.kernels); });
  }

  // The adaptation: decode the cloud's packet once, strictly, for this model; map its levels to widths
  // with the packet's palette (or `device_palette`); select the channels' codes and pack (apply_bits). Timed.
  Adaptation adapt(const std::uint8_t* packet, std::size_t size, const std::string& source,
                   const std::optional<Palette>& device_palette = {}) {
    using clock = std::chrono::steady_clock;
    Adaptation a;
    const auto t0 = clock::now();
    static_cast<DecodedStrategy&>(a) = decode_for_device(packet, size, expectation(), source, device_palette);
    const auto t1 = clock::now();
    apply_bits(a.bits);
    const auto t2 = clock::now();
    a.decode_seconds = std::chrono::duration<double>(t1 - t0).count();
    a.quantize_seconds = std::chrono::duration<double>(t2 - t1).count();
    return a;
  }

  // Scores of the personalized quantized model: state after `history`, then every item.
  // Returns [num_items + 1] indexed by item id (index 0, the padding id, is meaningless).
  std::vector<float> score_all(std::int32_t user, const std::vector<data::ItemId>& history) const {
    std::vector<float> state(state_size()), scores(std::size_t(num_items()) + 1);
    visit([&](const auto& e) {
      auto s = e.quantized.make_scratch();
      e.quantized.encode(user, history.data(), history.size(), s, state.data());
      e.quantized.score_all(state.data(), scores.data(), s);
    });
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

  // The quantized engines themselves (tests, benchmarks): exactly one is set.
  const models::SasrecInference* sasrec() const { return sasrec_ ? &sasrec_->quantized : nullptr; }
  const models::CaserInference* caser() const { return caser_ ? &caser_->quantized : nullptr; }

 private:
  const models::LoadedModel& model_;
  models::ModelDescription description_;
  DeviceOptions options_;
  std::vector<LayerShape> layers_;
  std::uint64_t fingerprint_ = 0;
  FrozenChannelCodes codes_;
  Widths bits_;
  std::optional<Engines<models::SasrecInference>> sasrec_;
  std::optional<Engines<models::CaserInference>> caser_;
};

}  // namespace chord::personalize
