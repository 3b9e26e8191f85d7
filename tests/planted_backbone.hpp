// tests/planted_backbone.hpp: a small recommender with planted user-specific structure, for the CHORD tests
// (test_personalize.cpp, test_experiment.cpp): a PersonalizableBackbone and its DeviceEvaluator.
//
// The planted backbone: logits = W2 relu(W1 x) over N items; the loss is the cross-entropy to the user's
// next-item distribution, which is the fp32 model's own softmax (the planted "truth"): the fp32 weights
// are then the exact minimizer, every quantization raises the loss (by the KL divergence), and
// strategies compare without sampling noise.
//   x: [D] (D = K * in_block), hidden [H] (H = K * hidden_block), items [N] (N = K * item_block).
//   W1 [H, D]: hidden block k reads input block k with N(0, 1) weights, everything else N(0, 0.05^2).
//   W2 [N, H]: item block k reads hidden block k with N(0, 1) weights, everything else N(0, 0.05^2).
//   User u is in cluster u % K; its inputs are m_u + N(0, 0.5^2) on input block k (m_u ~ N(0, 1) per
//   dimension: every user differs a little) and N(0, 0.1^2) elsewhere. Per user: train, validation and
//   test examples (drawn in that order from the user's stream, so adding test examples changed nothing
//   the older tests measured).
//   Profile: the mean hidden activation over the user's training inputs (the "last hidden state").
// random_backbone = true: the same users, examples and targets (from the planted truth), but the
// backbone's weights are replaced by N(0, 0.5^2) draws (the ablation's randomly initialized backbone):
// its loss is no longer minimal at its fp32 weights, and its profiles carry little of the clusters.
//
// PlantedEvaluator: each test example's target is the truth's top item (argmax of the planted fp32
// logits); the metrics are means over the user's test examples. Protocols at this tiny catalogue (N = 16):
// "sampled" ranks the target among 7 seeded negatives (fixed per user and example), "full" among all other
// items. Ties count against the model (data/metrics.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/data/metrics.hpp"
#include "chord/nn/linear.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/experiment/evaluator.hpp"
#include "chord/personalize/training/backbone.hpp"

namespace chord::test {

struct PlantedConfig {
  std::size_t clusters = 4, in_block = 4, hidden_block = 8, item_block = 4;
  std::size_t users = 96, train_examples = 12, validation_examples = 12, test_examples = 8;
  std::uint64_t seed = 1;
  bool random_backbone = false;
};

class PlantedRecommender : public personalize::PersonalizableBackbone {
 public:
  struct Scratch : Workspace {
    std::vector<float> pre, hidden, logits, dlogits, dhidden;
  };

  explicit PlantedRecommender(const PlantedConfig& c) : c_(c) {
    D_ = c.clusters * c.in_block, H_ = c.clusters * c.hidden_block, N_ = c.clusters * c.item_block;
    nn::Rng rng(c.seed, 1);
    w1_.resize(H_ * D_), w2_.resize(N_ * H_);
    for (std::size_t i = 0; i < H_; ++i)
      for (std::size_t j = 0; j < D_; ++j)
        w1_[i * D_ + j] = i / c.hidden_block == j / c.in_block ? rng.normal() : rng.normal(0.0f, 0.05f);
    for (std::size_t t = 0; t < N_; ++t)
      for (std::size_t i = 0; i < H_; ++i)
        w2_[t * H_ + i] = t / c.item_block == i / c.hidden_block ? rng.normal() : rng.normal(0.0f, 0.05f);
    Scratch ws;
    for (std::size_t u = 0; u < c.users; ++u) {
      nn::Rng user_rng(c.seed, 1000 + u);
      const std::size_t k = cluster(u);
      std::vector<float> mean(c.in_block);
      for (float& m : mean) m = user_rng.normal();
      for (int split = 0; split < 3; ++split) {
        const std::size_t n = split == 0 ? c.train_examples : split == 1 ? c.validation_examples : c.test_examples;
        std::vector<float> x(n * D_);
        for (std::size_t e = 0; e < n; ++e)
          for (std::size_t j = 0; j < D_; ++j)
            x[e * D_ + j] = j / c.in_block == k ? mean[j % c.in_block] + user_rng.normal(0.0f, 0.5f)
                                                : user_rng.normal(0.0f, 0.1f);
        forward(x.data(), n, w1_.data(), w2_.data(), ws);
        if (split < 2) {
          std::vector<double> targets(n * N_);
          for (std::size_t e = 0; e < n; ++e) softmax(ws.logits.data() + e * N_, targets.data() + e * N_);
          targets_[split].push_back(std::move(targets));
        } else {
          std::vector<std::size_t> top(n);
          for (std::size_t e = 0; e < n; ++e)
            top[e] = std::size_t(std::max_element(ws.logits.begin() + std::ptrdiff_t(e * N_),
                                                  ws.logits.begin() + std::ptrdiff_t((e + 1) * N_)) -
                                 (ws.logits.begin() + std::ptrdiff_t(e * N_)));
          test_targets_.push_back(std::move(top));
        }
        inputs_[split].push_back(std::move(x));
      }
    }
    if (c.random_backbone) {  // the data stay the truth's; the model forgets it
      nn::Rng random(c.seed, 2);
      for (float& w : w1_) w = random.normal(0.0f, 0.5f);
      for (float& w : w2_) w = random.normal(0.0f, 0.5f);
    }
    for (std::size_t u = 0; u < c.users; ++u) {  // profile: mean hidden activation over the training inputs
      forward(inputs_[0][u].data(), c.train_examples, w1_.data(), w2_.data(), ws);
      std::vector<float> u_vec(H_, 0.0f);
      for (std::size_t e = 0; e < c.train_examples; ++e)
        for (std::size_t i = 0; i < H_; ++i) u_vec[i] += ws.hidden[e * H_ + i] / float(c.train_examples);
      profiles_.push_back(std::move(u_vec));
    }
  }

  std::size_t cluster(std::size_t user) const { return user % c_.clusters; }
  const PlantedConfig& config() const { return c_; }
  std::size_t items() const { return N_; }

  std::string architecture() const override { return c_.random_backbone ? "planted-mlp-random" : "planted-mlp"; }
  std::vector<personalize::PersonalizedLayer> layers() const override {
    return {{"fc1.weight", H_, D_, w1_.data()}, {"fc2.weight", N_, H_, w2_.data()}};
  }
  std::size_t profile_dim() const override { return H_; }
  std::size_t user_count() const override { return c_.users; }
  std::vector<float> profile(std::size_t user) const override { return profiles_.at(user); }
  std::unique_ptr<Workspace> make_workspace() const override { return std::make_unique<Scratch>(); }

  double loss_and_weight_grads(const personalize::UserLossRequest& request, const std::vector<const float*>& w_eff,
                               const std::vector<float*>* dw_eff, Workspace& workspace) const override {
    CHORD_CHECK(w_eff.size() == 2, "planted backbone: 2 layers expected");  // not REQUIRE: worker threads call this
    auto& ws = static_cast<Scratch&>(workspace);
    const int split = request.split == personalize::UserSplit::train ? 0 : 1;
    const std::vector<float>& x = inputs_[split].at(request.user);
    const std::vector<double>& targets = targets_[split].at(request.user);
    const std::size_t n = targets.size() / N_;
    forward(x.data(), n, w_eff[0], w_eff[1], ws);
    double loss = 0.0;
    ws.dlogits.assign(n * N_, 0.0f);
    std::vector<double> model(N_);
    for (std::size_t e = 0; e < n; ++e) {  // cross-entropy to the target distribution, mean over the examples
      const double* target = targets.data() + e * N_;
      softmax(ws.logits.data() + e * N_, model.data());
      for (std::size_t t = 0; t < N_; ++t) {
        if (target[t] > 0.0) loss -= target[t] * std::log(std::fmax(model[t], 1e-300)) / double(n);
        ws.dlogits[e * N_ + t] = float((model[t] - target[t]) / double(n));
      }
    }
    if (dw_eff != nullptr) {
      ws.dhidden.assign(n * H_, 0.0f);
      nn::linear_backward(ws.dlogits.data(), ws.hidden.data(), w_eff[1], ws.dhidden.data(), (*dw_eff)[1], nullptr, n,
                          H_, N_);
      for (std::size_t i = 0; i < n * H_; ++i) ws.dhidden[i] = ws.pre[i] > 0.0f ? ws.dhidden[i] : 0.0f;
      nn::linear_backward(ws.dhidden.data(), x.data(), w_eff[0], nullptr, (*dw_eff)[0], nullptr, n, D_, H_);
    }
    return loss;
  }

  // The user's test examples scored with w1 [H, D], w2 [N, H]: ws.logits [test_examples, N].
  void test_scores(std::size_t user, const float* w1, const float* w2, Scratch& ws) const {
    forward(inputs_[2].at(user).data(), c_.test_examples, w1, w2, ws);
  }
  const std::vector<std::size_t>& test_targets(std::size_t user) const { return test_targets_.at(user); }

 private:
  // z: [N] -> p: [N]
  void softmax(const float* z, double* p) const {
    const double top = *std::max_element(z, z + N_);
    double sum = 0.0;
    for (std::size_t t = 0; t < N_; ++t) sum += p[t] = std::exp(double(z[t]) - top);
    for (std::size_t t = 0; t < N_; ++t) p[t] /= sum;
  }
  void forward(const float* x, std::size_t n, const float* w1, const float* w2, Scratch& ws) const {
    ws.pre.resize(n * H_), ws.hidden.resize(n * H_), ws.logits.resize(n * N_);
    nn::linear_forward(x, w1, nullptr, ws.pre.data(), n, D_, H_);
    for (std::size_t i = 0; i < n * H_; ++i) ws.hidden[i] = std::max(ws.pre[i], 0.0f);
    nn::linear_forward(ws.hidden.data(), w2, nullptr, ws.logits.data(), n, H_, N_);
  }

  PlantedConfig c_;
  std::size_t D_ = 0, H_ = 0, N_ = 0;
  std::vector<float> w1_, w2_;
  std::vector<std::vector<float>> inputs_[3];    // train, validation, test: [examples, D]
  std::vector<std::vector<double>> targets_[2];  // [examples, N] next-item distributions (train, validation)
  std::vector<std::vector<std::size_t>> test_targets_;  // [examples]: the truth's top item
  std::vector<std::vector<float>> profiles_;
};

// HR/NDCG@5/10 of a planted backbone's test examples (see the header comment for the protocols).
class PlantedEvaluator : public personalize::DeviceEvaluator {
 public:
  static constexpr std::size_t kSampledNegatives = 7;

  explicit PlantedEvaluator(const PlantedRecommender& backbone) : backbone_(backbone) {
    const std::size_t n = backbone.items();
    CHORD_CHECK(n > kSampledNegatives, "PlantedEvaluator: too few items");
    for (std::size_t u = 0; u < backbone.user_count(); ++u) {
      std::vector<std::vector<std::size_t>> per_example;
      for (std::size_t target : backbone.test_targets(u)) {
        nn::Rng rng(backbone.config().seed ^ 0x6e6567ull, u * 64 + per_example.size());
        std::vector<std::size_t> others;
        for (std::size_t t = 0; t < n; ++t)
          if (t != target) others.push_back(t);
        for (std::size_t i = 0; i < kSampledNegatives; ++i)
          std::swap(others[i], others[i + rng.below(others.size() - i)]);
        others.resize(kSampledNegatives);
        per_example.push_back(std::move(others));
      }
      negatives_.push_back(std::move(per_example));
    }
  }

  struct PlantedScratch : Scratch {
    PlantedRecommender::Scratch forward;
    std::vector<std::vector<float>> quantized;
    std::vector<std::int8_t> codes;
  };
  std::unique_ptr<Scratch> make_scratch() const override { return std::make_unique<PlantedScratch>(); }
  std::size_t user_count() const override { return backbone_.user_count(); }

  personalize::UserEvaluation evaluate(std::size_t user, const std::vector<const float*>& weights,
                                       const std::vector<std::vector<std::uint8_t>>& bits,
                                       Scratch& scratch) const override {
    auto& s = static_cast<PlantedScratch&>(scratch);
    const auto layers = backbone_.layers();
    CHORD_CHECK(weights.size() == layers.size(), "PlantedEvaluator: ", weights.size(), " weight matrices for ",
                layers.size(), " layers");
    CHORD_CHECK(bits.empty() || bits.size() == layers.size(), "PlantedEvaluator: widths for ", bits.size(), " layers");
    std::vector<const float*> w = weights;
    if (!bits.empty()) {  // the device's quantizer, channel by channel
      s.quantized.resize(layers.size());
      for (std::size_t l = 0; l < layers.size(); ++l) {
        const std::size_t k = layers[l].fan_in;
        CHORD_CHECK(bits[l].size() == layers[l].channels, "PlantedEvaluator: layer ", l, " widths");
        s.quantized[l].resize(layers[l].channels * k);
        s.codes.resize(k);
        for (std::size_t c = 0; c < layers[l].channels; ++c) {
          const float scale = quantize_channel(weights[l] + c * k, k, bits[l][c], s.codes.data());
          for (std::size_t j = 0; j < k; ++j) s.quantized[l][c * k + j] = dequantize(s.codes[j], scale);
        }
        w[l] = s.quantized[l].data();
      }
    }
    backbone_.test_scores(user, w[0], w[1], s.forward);
    const std::vector<std::size_t>& targets = backbone_.test_targets(user);
    const std::size_t n = backbone_.items();
    personalize::UserEvaluation out;
    const double per = 1.0 / double(targets.size());
    for (std::size_t e = 0; e < targets.size(); ++e) {
      const float* scores = s.forward.logits.data() + e * n;
      const float positive = scores[targets[e]];
      std::int64_t full = 0, sampled = 0;
      for (std::size_t t = 0; t < n; ++t)
        if (t != targets[e] && scores[t] >= positive) ++full;
      for (std::size_t t : negatives_[user][e])
        if (scores[t] >= positive) ++sampled;
      for (auto [rank, into] : {std::pair{sampled, &out.sampled}, std::pair{full, &out.full}}) {
        into->hr5 += per * data::hit_at(rank, 5), into->hr10 += per * data::hit_at(rank, 10);
        into->ndcg5 += per * data::ndcg_at(rank, 5), into->ndcg10 += per * data::ndcg_at(rank, 10);
      }
    }
    return out;
  }

 private:
  const PlantedRecommender& backbone_;
  std::vector<std::vector<std::vector<std::size_t>>> negatives_;  // [user][example][kSampledNegatives]
};

}  // namespace chord::test
