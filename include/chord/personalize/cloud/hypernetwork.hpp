// chord/personalize/cloud/hypernetwork.hpp: the three hypernetworks of CHORD, small MLPs on the profile u.
//
// docs/design.md#chord-importance: from one user's profile u (a [d] vector), three networks predict how sensitive
// this user's loss is to the quantization of each personalized weight, at three granularities:
//   element net  u -> for every layer l: low-rank factors A_l [channels_l, r] and B_l [fan_in_l, r];
//                     the element sensitivity is s_ij = softplus(A_i . B_j) >= 0 (importance.hpp)
//   filter net   u -> one raw score per channel of every layer;   g = softplus(raw)  > 0
//   layer net    u -> one raw score per layer;                    lambda = softplus(raw) > 0
// Each is fc1 (d -> hidden) + ReLU + fc2 (hidden -> outputs). The softplus and everything after it live
// in importance.hpp; this file only maps u to raw outputs and back (forward AND backward).
//
// Output layouts (flat, layer after layer, in the order of the backbone's personalized layers):
//   element: [A_0 (channels_0 x r) | B_0 (fan_in_0 x r) | A_1 | B_1 | ...]   a_offset(l), b_offset(l)
//   filter:  [channels_0 | channels_1 | ...]                                 channel_offset(l)
//   layer:   [L]
// The same registry also holds the relaxation's three coefficients (relaxation.hpp, used in training
// only): "relax.sharpness" [1], "relax.rate" [2]. Parameter names are safetensors-ready:
// "element.fc1.weight", "filter.fc2.bias", ... (hypernet_file.hpp saves and loads them).
//
// Initialization: PyTorch's nn.Linear init, then fc2 scaled by 0.1, so every raw output starts near 0:
// s, g and lambda start near softplus(0) = 0.69 for everyone, and the initial importance is close to
// the Q2-error energy of each channel (the classic user-agnostic criterion): training starts from a
// sensible strategy and learns what differs between users.
#pragma once
#define CHORD_TRAINING_CODE 1  // training-only code: tests/device_only.cpp refuses to compile with it

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/nn/elementwise.hpp"
#include "chord/nn/init.hpp"
#include "chord/nn/linear.hpp"
#include "chord/nn/loss.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/nn/random.hpp"

namespace chord::personalize {

struct HypernetConfig {
  std::size_t profile_dim = 0;  // d: the backbone's profile size
  std::size_t hidden = 64;      // width of every net's hidden layer
  std::size_t rank = 4;         // r: rank of the element-level sensitivity factors
};

// One forward/backward of a two-layer MLP on a single row.
struct MlpWorkspace {
  std::vector<float> pre, act;  // [hidden]: fc1 output, ReLU(fc1 output)
  std::vector<float> out;       // [outputs]
  std::vector<float> dout;      // [outputs]: dL/d out, filled by the caller before backward
  std::vector<float> dact;      // [hidden]
};

// y = fc2(relu(fc1(x)))
struct Mlp {
  nn::Linear fc1, fc2;

  static Mlp create(nn::Parameters& p, const std::string& name, std::size_t in, std::size_t hidden, std::size_t out) {
    return Mlp{nn::Linear::create(p, name + ".fc1", in, hidden), nn::Linear::create(p, name + ".fc2", hidden, out)};
  }
  void init(nn::Parameters& p, nn::Rng& rng, float output_scale) const {
    fc1.init(p, rng);
    fc2.init(p, rng);
    float* w = p.value(fc2.weight);
    for (std::size_t i = 0; i < fc2.in * fc2.out; ++i) w[i] *= output_scale;
    float* b = p.value(fc2.bias);
    for (std::size_t i = 0; i < fc2.out; ++i) b[i] *= output_scale;
  }
  void resize(MlpWorkspace& ws) const {
    ws.pre.resize(fc1.out), ws.act.resize(fc1.out), ws.dact.resize(fc1.out);
    ws.out.resize(fc2.out), ws.dout.resize(fc2.out);
  }
  // x: [in] -> ws.out: [out]
  void forward(const nn::Parameters& p, const float* x, MlpWorkspace& ws) const {
    resize(ws);
    fc1.forward(p, x, ws.pre.data(), 1);
    nn::relu_forward(ws.pre.data(), ws.act.data(), fc1.out);
    fc2.forward(p, ws.act.data(), ws.out.data(), 1);
  }
  // ws.dout: [out] (and the forward's ws) -> g += dW, db of both layers. x is data: no dx.
  void backward(const nn::Parameters& p, nn::GradientBuffer& g, const float* x, MlpWorkspace& ws) const {
    std::fill(ws.dact.begin(), ws.dact.end(), 0.0f);
    fc2.backward(p, g, ws.act.data(), ws.dout.data(), ws.dact.data(), 1);
    for (std::size_t i = 0; i < fc1.out; ++i) ws.dact[i] = ws.pre[i] > 0.0f ? ws.dact[i] : 0.0f;  // ReLU'
    fc1.backward(p, g, x, ws.dact.data(), nullptr, 1);
  }
};

// Raw outputs of the three nets for one user, and the gradients flowing back into them.
struct HypernetWorkspace {
  MlpWorkspace element, filter, layer;
};

// The relaxation's learned coefficients (relaxation.hpp): how sharp the level distribution is, and the
// exchange rate between predicted loss and bits as a function of the budget B:
//   sharpness = softplus(raw) > 0,   log_rate(B) = rate0 + rate1 B
struct RelaxationCoefficients {
  double sharpness = 1.0;
  double rate0 = 0.0, rate1 = 0.0;
  double log_rate(double budget) const { return rate0 + rate1 * budget; }
};

class Hypernetworks {
 public:
  Hypernetworks() = default;
  Hypernetworks(std::vector<LayerShape> layers, HypernetConfig config) : layers_(std::move(layers)), config_(config) {
    CHORD_CHECK(config.profile_dim > 0 && config.hidden > 0 && config.rank > 0, "Hypernetworks: profile dim (",
                config.profile_dim, "), hidden (", config.hidden, ") and rank (", config.rank, ") must be positive");
    CHORD_CHECK(!layers_.empty(), "Hypernetworks: no personalized layers");
    std::size_t element = 0, channels = 0;
    for (const LayerShape& l : layers_) {
      CHORD_CHECK(l.channels > 0 && l.fan_in > 0, "Hypernetworks: layer '", l.name, "' has a zero dimension");
      a_offsets_.push_back(element);
      element += std::size_t(l.channels) * config.rank;
      b_offsets_.push_back(element);
      element += std::size_t(l.fan_in) * config.rank;
      channel_offsets_.push_back(channels);
      channels += l.channels;
    }
    const std::size_t d = config.profile_dim, h = config.hidden;
    element_ = Mlp::create(params_, "element", d, h, element);
    filter_ = Mlp::create(params_, "filter", d, h, channels);
    layer_ = Mlp::create(params_, "layer", d, h, layers_.size());
    sharpness_ = params_.add("relax.sharpness", {1}, /*weight_decay=*/false);
    rate_ = params_.add("relax.rate", {2}, /*weight_decay=*/false);
    total_channels_ = channels;
  }

  // Seeded initialization (see the header comment). The relaxation starts with sharpness 1 and
  // log_rate(B) = -2.2 + 1.2 B: under the 4^-b error law of the standard palette a channel of average
  // importance then sits at 2 bits for B = 2, between 2 and 4 for B = 3, at 4 for B = 4 and between 4 and
  // 8 for B = 6 (relaxation.hpp), so expected bits start near every budget class and the penalty only
  // has to correct the rate, not to discover it.
  void init(std::uint64_t seed) {
    nn::Rng rng(seed, 0x6879706572ull);  // "hyper"
    element_.init(params_, rng, 0.1f);
    filter_.init(params_, rng, 0.1f);
    layer_.init(params_, rng, 0.1f);
    params_.value(sharpness_)[0] = inverse_softplus(1.0f);
    params_.value(rate_)[0] = -2.2f;
    params_.value(rate_)[1] = 1.2f;
  }

  nn::Parameters& params() { return params_; }
  const nn::Parameters& params() const { return params_; }
  const HypernetConfig& config() const { return config_; }
  const std::vector<LayerShape>& layers() const { return layers_; }
  std::size_t rank() const { return config_.rank; }
  std::size_t total_channels() const { return total_channels_; }
  std::size_t a_offset(std::size_t l) const { return a_offsets_.at(l); }
  std::size_t b_offset(std::size_t l) const { return b_offsets_.at(l); }
  std::size_t channel_offset(std::size_t l) const { return channel_offsets_.at(l); }
  nn::ParamId sharpness_id() const { return sharpness_; }
  nn::ParamId rate_id() const { return rate_; }

  // u: [profile_dim] -> ws.element.out, ws.filter.out, ws.layer.out (raw outputs, layouts above).
  void forward(const float* u, HypernetWorkspace& ws) const {
    CHORD_CHECK(u != nullptr, "Hypernetworks::forward: null profile");
    element_.forward(params_, u, ws.element);
    filter_.forward(params_, u, ws.filter);
    layer_.forward(params_, u, ws.layer);
  }
  // ws.*.dout (dL/d raw outputs) -> g += gradients of the three nets.
  void backward(const float* u, HypernetWorkspace& ws, nn::GradientBuffer& g) const {
    element_.backward(params_, g, u, ws.element);
    filter_.backward(params_, g, u, ws.filter);
    layer_.backward(params_, g, u, ws.layer);
  }

  // The relaxation's coefficients from their raw parameters.
  RelaxationCoefficients relaxation() const {
    RelaxationCoefficients r;
    r.sharpness = nn::softplus(params_.value(sharpness_)[0]);
    r.rate0 = params_.value(rate_)[0];
    r.rate1 = params_.value(rate_)[1];
    return r;
  }
  // dL/d coefficients (sharpness, rate0, rate1) -> g += dL/d raw parameters.
  void relaxation_backward(const RelaxationCoefficients& d, nn::GradientBuffer& g) const {
    g.of(sharpness_)[0] += float(d.sharpness * nn::sigmoid(params_.value(sharpness_)[0]));
    g.of(rate_)[0] += float(d.rate0);
    g.of(rate_)[1] += float(d.rate1);
  }

 private:
  static float inverse_softplus(float y) { return float(std::log(std::expm1(double(y)))); }

  std::vector<LayerShape> layers_;
  HypernetConfig config_;
  nn::Parameters params_;
  Mlp element_, filter_, layer_;
  nn::ParamId sharpness_ = 0, rate_ = 0;
  std::vector<std::size_t> a_offsets_, b_offsets_, channel_offsets_;
  std::size_t total_channels_ = 0;
};

}  // namespace chord::personalize
