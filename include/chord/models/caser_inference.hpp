// chord/models/caser_inference.hpp: Caser's inference graph: (user, last L items) -> state -> scores.
//
// The eval-mode forward of models/caser.hpp with every quantizable layer as a runtime layer (fp32, W-A32
// or W-A8; runtime_layers.hpp). The convolutions are linear layers in disguise (ref/conv.hpp): a
// horizontal filter bank of height h is a [nh, h d] layer over the overlapping windows of E (row stride
// d, no im2col), the vertical bank a [nv, L] layer over the columns of E.
//   state x = [relu(fc1 [conv_v | maxpool relu conv_h]) | user_emb[user + 1]]     [2d]
//   score(item) = out_emb[item] . x + out_bias[item]
// Quantizable layers: models/description.hpp describe(CaserConfig), held in slots(); out_bias stays
// fp32 (one float per item).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chord/core/aligned.hpp"
#include "chord/core/strategy.hpp"
#include "chord/models/caser.hpp"
#include "chord/models/description.hpp"
#include "chord/models/engine_slots.hpp"
#include "chord/models/runtime_layers.hpp"
#include "chord/nn/elementwise.hpp"

namespace chord::models {

class CaserInference : public PersonalizedSlots<CaserInference> {
 public:
  struct Scratch {
    std::vector<std::uint32_t> ids;
    AlignedVector<float> E, columns, vertical, conv, features, z;
    QuantizedRows rows;
  };

  CaserInference(const CaserModel& model, const InferenceOptions& options)
      : CaserInference(model, options, describe(model.config())) {}

  // With `description` (the model's own up to which tensors are personalized: models/description.hpp).
  CaserInference(const CaserModel& model, const InferenceOptions& options, ModelDescription description)
      : config_(model.config()), description_(std::move(description)) {
    description_.check_same_tensors(describe(config_));
    const nn::Parameters& p = model.params();
    conv_h_.resize(std::size_t(config_.L));
    build_slots(slots(), description_, p, options);
    if (config_.learned_padding_row) item_emb_.keep_padding_row();
    out_bias_.assign(p.value(model.out_bias), p.value(model.out_bias) + model.out_emb.rows);
  }

  // The runtime layer of each described tensor (models/description.hpp), in its order.
  std::vector<RuntimeSlot> slots() {
    std::vector<RuntimeSlot> out = {{nullptr, &item_emb_}, {nullptr, &user_emb_}, {&conv_v_, nullptr}};
    for (RuntimeLinear& l : conv_h_) out.push_back({&l, nullptr});
    out.push_back({&fc1_, nullptr});
    out.push_back({nullptr, &out_emb_});
    return out;
  }
  // (rebuild_personalized, install_personalized: PersonalizedSlots, engine_slots.hpp)

  const ModelDescription& description() const { return description_; }
  const CaserConfig& config() const { return config_; }
  std::size_t state_size() const { return 2 * std::size_t(config_.d); }
  std::int32_t num_items() const { return config_.num_items; }

  Scratch make_scratch() const {
    Scratch s;
    const std::size_t L = std::size_t(config_.L), d = std::size_t(config_.d);
    s.ids.resize(std::max<std::size_t>(L, 1));
    s.E.resize(L * d), s.columns.resize(L * d), s.vertical.resize(std::size_t(config_.nv) * d);
    s.conv.resize(L * std::size_t(config_.nh));
    s.features.resize(std::size_t(config_.conv_features()));
    s.z.resize(d);
    return s;
  }

  // user: dense index 0..num_users-1; history: [len] oldest first (the last L are used) -> x: [2d].
  void encode(std::int32_t user, const std::int32_t* history, std::size_t len, Scratch& s, float* x) const {
    CHORD_CHECK(user >= 0 && user < config_.num_users, "caser: user ", user, " is not in 0..", config_.num_users - 1);
    const std::size_t L = std::size_t(config_.L), d = std::size_t(config_.d), nh = std::size_t(config_.nh);
    const std::size_t nv = std::size_t(config_.nv), n = std::min(len, L);
    for (std::size_t i = 0; i < L; ++i) {
      const bool real = i >= L - n;
      const std::int32_t item = real ? history[len - L + i] : 0;
      CHORD_CHECK(!real || (item >= 1 && item <= config_.num_items), "caser: history item ", item,
                  " is outside 1..", config_.num_items);
      s.ids[i] = std::uint32_t(item);
    }
    float* E = s.E.data();
    item_emb_.gather(s.ids.data(), L, 1.0f, E);
    // vertical: the filters are channels over time, applied to the columns of E ([d, L])
    for (std::size_t i = 0; i < L; ++i)
      for (std::size_t j = 0; j < d; ++j) s.columns[j * L + i] = E[i * d + j];
    conv_v_.forward(s.columns.data(), L, s.vertical.data(), nv, d, s.rows);  // [d, nv]
    float* features = s.features.data();
    for (std::size_t f = 0; f < nv; ++f)
      for (std::size_t j = 0; j < d; ++j) features[f * d + j] = s.vertical[j * nv + f];
    // horizontal: height h over the L - h + 1 windows, ReLU, max over time
    for (std::size_t h = 1; h <= L; ++h) {
      const std::size_t windows = L - h + 1;
      conv_h_[h - 1].forward(E, d, s.conv.data(), nh, windows, s.rows);
      for (std::size_t f = 0; f < nh; ++f) {
        float best = s.conv[f];
        for (std::size_t t = 1; t < windows; ++t) best = std::max(best, s.conv[t * nh + f]);
        features[nv * d + (h - 1) * nh + f] = std::max(best, 0.0f);
      }
    }
    fc1_.forward(features, fc1_.in(), s.z.data(), d, 1, s.rows);
    nn::relu_forward(s.z.data(), x, d);
    const std::uint32_t user_row = std::uint32_t(user) + 1;
    user_emb_.gather(&user_row, 1, 1.0f, x + d);
  }

  // x: [2d]; items: [m] in 1..num_items -> out: [m].
  void score(const float* x, const std::int32_t* items, std::size_t m, float* out, Scratch& s) const {
    if (s.ids.size() < m) s.ids.resize(m);
    for (std::size_t i = 0; i < m; ++i) {
      CHORD_CHECK(items[i] >= 1 && items[i] <= config_.num_items, "caser: candidate item ", items[i],
                  " is outside 1..", config_.num_items);
      s.ids[i] = std::uint32_t(items[i]);
    }
    out_emb_.score_rows(x, s.ids.data(), m, out, s.rows);
    for (std::size_t i = 0; i < m; ++i) out[i] += out_bias_[std::size_t(items[i])];
  }

  // x: [2d] -> out: [num_items + 1] indexed by item id.
  void score_all(const float* x, float* out, Scratch& s) const {
    out_emb_.score_all(x, out, s.rows);
    for (std::size_t i = 0; i < out_bias_.size(); ++i) out[i] += out_bias_[i];
  }

  std::size_t weight_bytes() const {
    auto linear_bytes = [](const RuntimeLinear& l) {
      return l.layer.bias.size() * sizeof(float) +
             (l.layer.mode == LinearMode::dense_f32 ? l.layer.weight.size() * sizeof(float) : l.layer.mixed.bytes());
    };
    std::size_t bytes = item_emb_.bytes() + user_emb_.bytes() + out_emb_.bytes() + out_bias_.size() * sizeof(float);
    bytes += linear_bytes(conv_v_) + linear_bytes(fc1_);
    for (const RuntimeLinear& l : conv_h_) bytes += linear_bytes(l);
    return bytes;
  }

 private:
  CaserConfig config_;
  ModelDescription description_;
  RuntimeEmbedding item_emb_, user_emb_, out_emb_;
  RuntimeLinear conv_v_, fc1_;
  std::vector<RuntimeLinear> conv_h_;
  std::vector<float> out_bias_;
};

}  // namespace chord::models
