// CHORD on the real recommenders: the SASRec and Caser backbone adapters (cloud), the device side
// (personalize/device/device_model.hpp) and the per-user evaluators, on tiny models trained a few steps on
// synthetic data.
//   - loss_and_weight_grads against central finite differences on random entries of every personalized
//     layer, both splits (norm-derived tolerance: ||fd - analytic|| <= 2e-2 ||analytic|| + a float-noise
//     floor from the loss's size and the step);
//   - the loss at the frozen weights equals the eval-mode training graph's own loss (train split), and
//     the validation loss equals the same formula on the fp32 inference graph's scores;
//   - profiles: the adapter's = the device's (bit for bit) ~ the training graph's eval-mode state;
//   - fingerprints: the adapter's (from its training graph's registry) = the device's (from the config);
//   - evaluators: empty bits = models::evaluate's fp32 metrics, uniform 8 bits = models::evaluate on the
//     W-A8 engine built from the full plan;
//   - the strategy round trip: device profile -> cloud hypernetworks + solver -> packet -> device
//     adaptation, whose scores equal the reference W-A8 engine built from the same widths;
//   - a tiny hypertraining run on the SASRec backbone lowers the objective.
// CHORD_TEST_NO_THREADS (cross builds): qemu-user hangs in pthread_create, so everything runs one thread.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "chord/data/synthetic.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/trainer.hpp"
#include "chord/nn/random.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/personalizer.hpp"
#include "chord/personalize/device/device_model.hpp"
#include "chord/personalize/experiment/model_evaluators.hpp"
#include "chord/personalize/training/caser_backbone.hpp"
#include "chord/personalize/training/hypernet_trainer.hpp"
#include "chord/personalize/training/sasrec_backbone.hpp"

#include "test_helpers.hpp"

using namespace chord;
using namespace chord::personalize;

namespace {

constexpr std::size_t kThreads = chord::test::kTestThreads;
constexpr bool kSequential = chord::test::kSequentialWorkers;

data::LeaveOneOutSplit tiny_split() {
  data::SyntheticOptions o;
  o.num_users = 40, o.num_items = 150, o.num_clusters = 4, o.min_length = 5, o.max_length = 16, o.seed = 3;
  return data::leave_one_out(data::make_synthetic(o).dataset);
}

models::TrainOptions few_steps(int epochs) {
  models::TrainOptions o;
  o.epochs = epochs, o.batch_size = 16, o.lr = 1e-2f, o.threads = kThreads, o.sequential_workers = kSequential;
  o.eval_every = 0, o.seed = 5;
  return o;
}

// Two blocks, two heads, histories longer than max_len (truncation), FFN wider than d.
models::SasrecModel tiny_sasrec(const data::LeaveOneOutSplit& split, bool output_projection = true) {
  models::SasrecConfig c;
  c.num_items = split.num_items, c.d = 8, c.blocks = 2, c.heads = 2, c.max_len = 10, c.hidden = 12;
  c.dropout = 0.2f, c.output_projection = output_projection;
  models::SasrecModel model(c);
  model.init(3);
  models::train_sasrec(model, split, few_steps(2));
  return model;
}

models::CaserModel tiny_caser(const data::LeaveOneOutSplit& split) {
  models::CaserConfig c;
  c.num_items = split.num_items, c.num_users = split.num_users, c.d = 8, c.L = 3, c.T = 2, c.nh = 3, c.nv = 2;
  c.negatives = 3, c.dropout = 0.3f;
  models::CaserModel model(c);
  model.init(4);
  models::train_caser(model, split, few_steps(2));
  return model;
}

template <typename Model>
models::LoadedModel through_file(const Model& model, const std::string& name) {
  const std::string path = "test_backbones_" + name + ".safetensors";
  models::save_model(path, model);
  models::LoadedModel loaded = models::load_model(path);
  std::remove(path.c_str());
  return loaded;
}

// The frozen weights plus noise: gradients are then checked away from the trained point too.
std::vector<std::vector<float>> perturbed(const std::vector<PersonalizedLayer>& layers, std::uint64_t seed) {
  nn::Rng rng(seed, 9);
  std::vector<std::vector<float>> w;
  for (const PersonalizedLayer& l : layers) {
    w.emplace_back(l.weight, l.weight + l.channels * l.fan_in);
    for (float& v : w.back()) v += 0.05f * float(rng.normal());
  }
  return w;
}

std::vector<const float*> pointers(const std::vector<std::vector<float>>& w) {
  std::vector<const float*> p;
  for (const auto& v : w) p.push_back(v.data());
  return p;
}

// Central differences on `checks` random entries of every layer, against dL/dW_eff.
void check_gradients(const PersonalizableBackbone& backbone, const UserLossRequest& request, std::uint64_t seed) {
  const std::vector<PersonalizedLayer> layers = backbone.layers();
  std::vector<std::vector<float>> w = perturbed(layers, seed);
  auto ws = backbone.make_workspace();
  std::vector<std::vector<float>> dw(layers.size());
  std::vector<float*> dw_ptr;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    dw[l].assign(w[l].size(), 0.0f);
    dw_ptr.push_back(dw[l].data());
  }
  const double loss = backbone.loss_and_weight_grads(request, pointers(w), &dw_ptr, *ws);
  REQUIRE(std::isfinite(loss));
  REQUIRE(loss > 0.0);
  // += convention: a second call doubles the gradient
  {
    std::vector<std::vector<float>> again = dw;
    std::vector<float*> again_ptr;
    for (auto& v : again) again_ptr.push_back(v.data());
    REQUIRE(backbone.loss_and_weight_grads(request, pointers(w), &again_ptr, *ws) == loss);
    for (std::size_t l = 0; l < layers.size(); ++l)
      for (std::size_t i = 0; i < w[l].size(); ++i) REQUIRE(again[l][i] == 2.0f * dw[l][i]);
  }
  nn::Rng pick(seed, 77);
  const float step = 1e-2f;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    double diff2 = 0.0, ref2 = 0.0;
    const int checks = 8;
    for (int c = 0; c < checks; ++c) {
      const std::size_t i = std::size_t(pick.next_u64() % w[l].size());
      const float saved = w[l][i];
      w[l][i] = saved + step;
      const double up = backbone.loss_and_weight_grads(request, pointers(w), nullptr, *ws);
      w[l][i] = saved - step;
      const double down = backbone.loss_and_weight_grads(request, pointers(w), nullptr, *ws);
      w[l][i] = saved;
      const double fd = (up - down) / (2.0 * double(step));
      diff2 += (fd - dw[l][i]) * (fd - dw[l][i]);
      ref2 += double(dw[l][i]) * dw[l][i];
    }
    // float forward: each loss carries ~ 1e-7 |L| of rounding (float epsilon), divided by the step
    const double floor = std::sqrt(double(checks)) * 2e-7 * std::fabs(loss) / double(step);
    INFO(layers[l].name << ": ||fd - analytic|| = " << std::sqrt(diff2) << ", ||analytic|| = " << std::sqrt(ref2)
                        << ", floor " << floor);
    REQUIRE(std::sqrt(ref2) > floor);  // the loss depends on every personalized layer
    REQUIRE(std::sqrt(diff2) <= 2e-2 * std::sqrt(ref2) + floor);
  }
}

std::vector<std::size_t> evaluated_users(const data::LeaveOneOutSplit& split) {
  std::vector<std::size_t> users;
  for (std::int32_t u : split.evaluated_users()) users.push_back(std::size_t(u));
  return users;
}

bool same_shapes(const std::vector<LayerShape>& a, const std::vector<LayerShape>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].channels != b[i].channels || a[i].fan_in != b[i].fan_in) return false;
  return true;
}

double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }

// The validation loss recomputed from an inference graph's scores.
template <typename Engine>
double validation_loss_from(const Engine& engine, const data::LeaveOneOutSplit& split, std::int32_t u,
                            std::uint64_t seed) {
  auto s = engine.make_scratch();
  std::vector<float> state(engine.state_size());
  engine.encode(u, split.train[std::size_t(u)].data(), split.train[std::size_t(u)].size(), s, state.data());
  std::vector<std::int32_t> items = data::sampled_negatives(split, u, data::Phase::validation, seed);
  items.insert(items.begin(), split.valid[std::size_t(u)]);
  std::vector<float> scores(items.size());
  engine.score(state.data(), items.data(), items.size(), scores.data(), s);
  double neg = 0.0;
  for (std::size_t i = 1; i < scores.size(); ++i) neg += softplus(scores[i]);
  return softplus(-double(scores[0])) + neg / double(scores.size() - 1);
}

// Mean of one evaluator's per-user metrics over the evaluated users.
data::RankingMetrics mean_of(const DeviceEvaluator& evaluator, const data::LeaveOneOutSplit& split,
                             const std::vector<const float*>& weights, const std::vector<std::vector<std::uint8_t>>& bits,
                             bool full) {
  auto scratch = evaluator.make_scratch();
  data::RankingMetrics m;
  for (std::int32_t u : split.evaluated_users()) {
    const UserEvaluation e = evaluator.evaluate(std::size_t(u), weights, bits, *scratch);
    const UserRanking& r = full ? e.full : e.sampled;
    m.users += 1, m.hr_5 += r.hr5, m.hr_10 += r.hr10, m.ndcg_5 += r.ndcg5, m.ndcg_10 += r.ndcg10;
  }
  m.hr_5 /= double(m.users), m.hr_10 /= double(m.users), m.ndcg_5 /= double(m.users), m.ndcg_10 /= double(m.users);
  return m;
}

void require_same(const data::RankingMetrics& a, const data::RankingMetrics& b) {
  REQUIRE(a.users == b.users);
  REQUIRE(a.hr_5 == Approx(b.hr_5).margin(1e-12));
  REQUIRE(a.hr_10 == Approx(b.hr_10).margin(1e-12));
  REQUIRE(a.ndcg_5 == Approx(b.ndcg_5).margin(1e-12));
  REQUIRE(a.ndcg_10 == Approx(b.ndcg_10).margin(1e-12));
}

models::EvalOptions test_protocol() {
  models::EvalOptions e;
  e.phase = data::Phase::test, e.protocol = models::Protocol::both, e.seed = 42;
  return e;
}

double norm_diff(const float* a, const float* b, std::size_t n, double* norm_b) {
  double d = 0.0, r = 0.0;
  for (std::size_t i = 0; i < n; ++i) d += double(a[i] - b[i]) * (a[i] - b[i]), r += double(b[i]) * b[i];
  *norm_b = std::sqrt(r);
  return std::sqrt(d);
}

}  // namespace

TEST_CASE("SASRec backbone: personalized layers, and the device's names, shapes and fingerprint", "[backbones][sasrec]") {
  const data::LeaveOneOutSplit split = tiny_split();
  for (bool projection : {true, false}) {
    const models::SasrecModel model = tiny_sasrec(split, projection);
    const SasrecBackbone backbone(model, split);
    const std::vector<PersonalizedLayer> layers = backbone.layers();
    REQUIRE(layers.size() == std::size_t(projection ? 12 : 10));
    REQUIRE(layers[0].name == "blocks.0.attn.q.weight");
    REQUIRE(layers.back().name == "blocks.1.ffn.fc2.weight");
    REQUIRE(layers.back().channels == 8);
    REQUIRE(layers.back().fan_in == 12);
    REQUIRE(backbone.profile_dim() == 8);
    REQUIRE(backbone.user_count() == std::size_t(split.num_users));
    const models::LoadedModel loaded = through_file(model, "names");
    REQUIRE(same_shapes(layer_shapes(layers), personalized_layers(loaded)));  // the training graph's parameters and the file's agree
    REQUIRE(backbone_fingerprint(backbone) == device_fingerprint(loaded));
    const std::vector<const float*> device_weights = personalized_weights(loaded);
    for (std::size_t l = 0; l < layers.size(); ++l)
      REQUIRE(std::equal(layers[l].weight, layers[l].weight + layers[l].channels * layers[l].fan_in, device_weights[l]));
  }
}

TEST_CASE("SASRec backbone: weight gradients against central finite differences", "[backbones][sasrec][grad]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::SasrecModel model = tiny_sasrec(split);
  const SasrecBackbone backbone(model, split);
  const std::vector<std::size_t> users = evaluated_users(split);
  for (std::size_t i : {std::size_t(0), users.size() / 2}) {
    const std::size_t u = users[i];
    SECTION("train split, user " + std::to_string(u)) { check_gradients(backbone, {u, UserSplit::train, 7}, 1 + u); }
    SECTION("validation split, user " + std::to_string(u)) {
      check_gradients(backbone, {u, UserSplit::validation, 7}, 2 + u);
    }
  }
}

TEST_CASE("SASRec backbone: losses at the frozen weights equal the model's own", "[backbones][sasrec]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::SasrecModel model = tiny_sasrec(split);
  const SasrecBackbone backbone(model, split);
  const auto w = original_weights(backbone.layers());
  auto ws = backbone.make_workspace();
  const data::SasrecSampler sampler(split, model.config().max_len, 0);
  const models::SasrecInference fp32(model, models::InferenceOptions{});
  const std::size_t L = std::size_t(model.config().max_len);
  models::SasrecWorkspace mws;
  mws.resize(model.config());
  std::vector<std::int32_t> in(L), pos(L), neg(L);
  int checked = 0;
  for (std::size_t u : evaluated_users(split)) {
    for (std::uint64_t seed : {1u, 2u}) {
      sampler.fill_row(std::int32_t(u), seed, in.data(), pos.data(), neg.data());
      if (model.load(in.data(), pos.data(), neg.data(), mws) == 0) continue;
      nn::Rng rng;
      model.forward(model.params(), mws, rng, false);
      const double expected = model.loss(mws, 0).loss;
      REQUIRE(backbone.loss_and_weight_grads({u, UserSplit::train, seed}, w, nullptr, *ws) == expected);
      const double valid = backbone.loss_and_weight_grads({u, UserSplit::validation, seed}, w, nullptr, *ws);
      REQUIRE(valid == Approx(validation_loss_from(fp32, split, std::int32_t(u), seed)).epsilon(1e-4));
      ++checked;
    }
  }
  REQUIRE(checked > 20);
  // another seed draws other negatives: the train loss changes
  const std::size_t u = evaluated_users(split)[0];
  REQUIRE(backbone.loss_and_weight_grads({u, UserSplit::train, 1}, w, nullptr, *ws) !=
          backbone.loss_and_weight_grads({u, UserSplit::train, 99}, w, nullptr, *ws));
}

TEST_CASE("SASRec backbone: the profile is the device's, and the training graph's state", "[backbones][sasrec]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::SasrecModel model = tiny_sasrec(split);
  const SasrecBackbone backbone(model, split);
  const models::LoadedModel loaded = through_file(model, "profile");
  const DeviceModel device(loaded);
  REQUIRE(device.profile_dim() == backbone.profile_dim());
  models::SasrecWorkspace ws;
  ws.resize(model.config());
  const std::size_t L = std::size_t(model.config().max_len), d = 8;
  for (std::size_t u = 0; u < backbone.user_count(); ++u) {
    const std::vector<float> h = backbone.profile(u);
    REQUIRE(h == device.profile(std::int32_t(u), split.train[u]));
    const auto& history = split.train[u];
    const std::size_t n = std::min(history.size(), L);
    std::vector<std::uint32_t> ids(n), positions(n);
    for (std::size_t t = 0; t < n; ++t) ids[t] = std::uint32_t(history[history.size() - n + t]), positions[t] = std::uint32_t(L - n + t + 1);
    nn::Rng rng;
    model.encode(model.params(), ids.data(), positions.data(), n, ws, rng, false);
    double ref = 0.0;
    const double diff = norm_diff(h.data(), ws.h.data() + (n - 1) * d, d, &ref);
    REQUIRE(diff <= 1e-5 * ref);
  }
}

TEST_CASE("SASRec evaluator: fp32 and uniform W8-A8 equal models::evaluate", "[backbones][sasrec][evaluator]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::SasrecModel model = tiny_sasrec(split);
  const SasrecBackbone backbone(model, split);
  const SasrecEvaluator evaluator(model, split);
  REQUIRE(evaluator.user_count() == std::size_t(split.num_users));
  const auto w = original_weights(backbone.layers());
  const models::EvalResult fp32 = models::evaluate(models::SasrecInference(model, models::InferenceOptions{}), split, test_protocol());
  require_same(mean_of(evaluator, split, w, {}, false), fp32.sampled);
  require_same(mean_of(evaluator, split, w, {}, true), fp32.full);
  const models::LoadedModel loaded = through_file(model, "evaluator");
  for (int embedding : {8, 4}) {
    EvaluatorOptions o;
    o.embedding_bits = embedding;
    const SasrecEvaluator quantized(model, split, o);
    const auto bits = uniform_personalized_bits(loaded, 4);
    const models::InferenceOptions plan{LinearMode::mixed_s8, inference_bits(loaded, bits, embedding),
                                        &best_kernels(), {}};
    const models::EvalResult ref = models::evaluate(models::SasrecInference(model, plan), split, test_protocol());
    require_same(mean_of(quantized, split, w, bits, false), ref.sampled);
    require_same(mean_of(quantized, split, w, bits, true), ref.full);
  }
  // mixed widths (pruned channels too): the cached codes of the frozen matrices (same pointers) and a
  // fresh quantization of a copy (other pointers) both equal models::evaluate on the engine built from the plan
  {
    nn::Rng rng(8, 8);
    std::vector<std::vector<std::uint8_t>> bits;
    for (const PersonalizedLayer& l : backbone.layers()) {
      bits.emplace_back(l.channels);
      for (std::uint8_t& b : bits.back()) b = std::uint8_t(kStandardPalette[rng.below(4)]);
    }
    std::vector<std::vector<float>> copy;
    for (const PersonalizedLayer& l : backbone.layers()) copy.emplace_back(l.weight, l.weight + l.channels * l.fan_in);
    const models::InferenceOptions plan{LinearMode::mixed_s8, inference_bits(loaded, bits, 8), &best_kernels(), {}};
    const models::EvalResult ref = models::evaluate(models::SasrecInference(model, plan), split, test_protocol());
    require_same(mean_of(evaluator, split, w, bits, false), ref.sampled);
    require_same(mean_of(evaluator, split, w, bits, true), ref.full);
    require_same(mean_of(evaluator, split, pointers(copy), bits, true), ref.full);
    require_same(mean_of(evaluator, split, pointers(copy), bits, false), ref.sampled);
  }
  // other weights change the result; the frozen ones again restore it (the scratch's engine is rebuilt)
  auto scratch = evaluator.make_scratch();
  const std::size_t u = evaluated_users(split)[0];
  std::vector<std::vector<float>> zero;
  for (const PersonalizedLayer& l : backbone.layers()) zero.emplace_back(l.channels * l.fan_in, 0.0f);
  const UserEvaluation a = evaluator.evaluate(u, w, {}, *scratch);
  evaluator.evaluate(u, pointers(zero), {}, *scratch);
  const UserEvaluation b = evaluator.evaluate(u, w, {}, *scratch);
  REQUIRE(a.full.ndcg10 == b.full.ndcg10);
  REQUIRE(a.sampled.ndcg10 == b.sampled.ndcg10);
  REQUIRE_THROWS_AS(evaluator.evaluate(split.num_users, w, {}, *scratch), Error);
}

TEST_CASE("SASRec strategy round trip: device profile -> cloud -> packet -> device adaptation", "[backbones][sasrec][strategy]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::SasrecModel model = tiny_sasrec(split);
  const SasrecBackbone backbone(model, split);
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets(layer_shapes(backbone.layers()), {backbone.profile_dim(), 16, 2});
  nets.init(3);
  const CloudPersonalizer cloud(nets, cache, backbone_fingerprint(backbone));
  const models::LoadedModel loaded = through_file(model, "roundtrip");
  DeviceModel device(loaded);
  const Palette palettes[] = {kStandardPalette, Palette{2, 2, 4, 8}};
  for (std::size_t u : {std::size_t(0), std::size_t(7)}) {
    for (const Palette& palette : palettes) {
      const ProfileMessage message{device.fingerprint(), 3.0f, palette, device.profile(std::int32_t(u), split.train[u])};
      const std::vector<std::uint8_t> request = encode_profile(message);
      const std::vector<std::uint8_t> answer = cloud.respond(request.data(), request.size(), "device");
      const Adaptation a = device.adapt(answer.data(), answer.size(), "cloud", palette);
      const BudgetSolution expected = cloud.strategy(backbone.profile(u), 3.0, palette);
      REQUIRE(a.packet.strategy.levels == expected.strategy.levels);
      REQUIRE(a.bits == strategy_bits(expected.strategy, palette));
      REQUIRE(a.average_bits <= 3.0 + 1e-9);
      REQUIRE(a.average_bits > 2.0);
      REQUIRE(device.bits() == inference_bits(loaded, a.bits, 8));
      // the device's scores are the reference W-A8 engine's, built from the same plan
      const models::SasrecInference reference(
          model, models::InferenceOptions{LinearMode::mixed_s8, device.bits(), &best_kernels(), {}});
      auto s = reference.make_scratch();
      std::vector<float> state(8), scores(std::size_t(split.num_items) + 1);
      reference.encode(std::int32_t(u), split.train[u].data(), split.train[u].size(), s, state.data());
      reference.score_all(state.data(), scores.data(), s);
      REQUIRE(device.score_all(std::int32_t(u), split.train[u]) == scores);
      const auto top = device.top_items(std::int32_t(u), split.train[u], 5);
      REQUIRE(top.size() == 5);
      for (std::size_t i = 1; i < top.size(); ++i) REQUIRE(top[i - 1].second >= top[i].second);
    }
  }
  // a packet for another model is refused
  StrategyPacket other;
  other.fingerprint = device.fingerprint() ^ 1;
  other.budget = 4.0f;
  for (const LayerShape& s : device.layers()) other.strategy.levels.emplace_back(s.channels, std::uint8_t(2));
  const std::vector<std::uint8_t> bytes = encode_strategy(other);
  REQUIRE_THROWS_AS(device.adapt(bytes.data(), bytes.size(), "other"), Error);
}

TEST_CASE("SASRec backbone: a tiny hypertraining run lowers the objective", "[backbones][sasrec][train]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::SasrecModel model = tiny_sasrec(split);
  const SasrecBackbone backbone(model, split);
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets(layer_shapes(backbone.layers()), {backbone.profile_dim(), 16, 2});
  nets.init(5);
  const std::vector<std::size_t> users = evaluated_users(split);
  TrainOptions o;
  o.steps = 25, o.users_per_step = 8, o.threads = kThreads, o.sample_budgets = false, o.fixed_budget = 2.5;
  o.progress = false, o.seed = 3;
  auto objective = [&]() {  // fixed users, noise and negatives
    UserPass pass;
    double total = 0.0;
    for (std::size_t i = 0; i < 12; ++i) {
      nn::Rng noise(100, i);
      const std::vector<float> u = backbone.profile(users[i]);
      total += user_objective(backbone, nets, cache, u.data(), {users[i], UserSplit::train, 100 + i}, 2.5,
                              o.relaxation, noise, pass, nullptr).total();
    }
    return total / 12.0;
  };
  const double before = objective();
  HypernetTrainer trainer(backbone, nets, cache, users, o);
  const std::vector<StepStats> history = trainer.train();
  REQUIRE(history.size() == 25);
  const double after = objective();
  INFO("objective before " << before << ", after " << after);
  REQUIRE(std::isfinite(after));
  REQUIRE(after < before);
}

TEST_CASE("Caser backbone: layers, fingerprint, gradients, losses, profile", "[backbones][caser]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::CaserModel model = tiny_caser(split);
  const CaserBackbone backbone(model, split);
  const std::vector<PersonalizedLayer> layers = backbone.layers();
  REQUIRE(layers.size() == 5);  // conv_v, conv_h.h1..h3, fc1
  REQUIRE(layers[0].name == "conv_v.weight");
  REQUIRE(layers[0].channels == 2);
  REQUIRE(layers[0].fan_in == 3);
  REQUIRE(layers[3].name == "conv_h.h3.weight");
  REQUIRE(layers[3].fan_in == 24);
  REQUIRE(layers[4].name == "fc1.weight");
  REQUIRE(layers[4].fan_in == std::size_t(model.config().conv_features()));
  const models::LoadedModel loaded = through_file(model, "caser");
  REQUIRE(same_shapes(layer_shapes(layers), personalized_layers(loaded)));
  REQUIRE(backbone_fingerprint(backbone) == device_fingerprint(loaded));
  const std::vector<std::size_t> users = evaluated_users(split);

  SECTION("finite differences") {
    for (std::size_t u : {users[1], users[users.size() / 2]}) {
      check_gradients(backbone, {u, UserSplit::train, 5}, 10 + u);
      check_gradients(backbone, {u, UserSplit::validation, 5}, 20 + u);
    }
  }
  SECTION("losses at the frozen weights") {
    const auto w = original_weights(layers);
    auto ws = backbone.make_workspace();
    const data::CaserSampler sampler(split, {3, 2, 3}, 0);
    const models::CaserInference fp32(model, models::InferenceOptions{});
    for (std::size_t u : users) {
      std::vector<std::size_t> windows;
      for (std::size_t i = 0; i < sampler.num_windows(); ++i)
        if (sampler.window(i).user == std::int32_t(u)) windows.push_back(i);
      models::CaserWorkspace mws;
      mws.resize(model.config(), windows.size());
      std::int32_t user = 0;
      std::vector<std::int32_t> in(3), targets(2), neg(6);
      for (std::size_t r = 0; r < windows.size(); ++r) {
        sampler.fill_row(windows[r], 4, user, in.data(), targets.data(), neg.data());
        model.load_row(r, user, in.data(), targets.data(), neg.data(), mws);
      }
      nn::Rng rng;
      model.forward(model.params(), windows.size(), mws, &rng, false);
      REQUIRE(backbone.loss_and_weight_grads({u, UserSplit::train, 4}, w, nullptr, *ws) == model.loss(mws, 0, 0).loss);
      REQUIRE(backbone.loss_and_weight_grads({u, UserSplit::validation, 4}, w, nullptr, *ws) ==
              Approx(validation_loss_from(fp32, split, std::int32_t(u), 4)).epsilon(1e-4));
    }
  }
  SECTION("profile: the device's state x = [z | user embedding]") {
    const DeviceModel device(loaded);
    REQUIRE(backbone.profile_dim() == 16);
    models::CaserWorkspace mws;
    mws.resize(model.config(), 1);
    for (std::size_t u = 0; u < backbone.user_count(); ++u) {
      const std::vector<float> x = backbone.profile(u);
      REQUIRE(x == device.profile(std::int32_t(u), split.train[u]));
      std::vector<std::int32_t> in(3), none(2, 0), no_neg(6, 0);
      data::left_pad_last(split.train[u], 3, in.data());
      model.load_row(0, std::int32_t(u), in.data(), none.data(), no_neg.data(), mws);
      nn::Rng rng;
      model.encode(model.params(), 1, mws, &rng, false);
      double ref = 0.0;
      REQUIRE(norm_diff(x.data(), mws.x.data(), 16, &ref) <= 1e-5 * ref);
    }
  }
}

TEST_CASE("Caser evaluator and strategy round trip", "[backbones][caser][evaluator]") {
  const data::LeaveOneOutSplit split = tiny_split();
  const models::CaserModel model = tiny_caser(split);
  const CaserBackbone backbone(model, split);
  const CaserEvaluator evaluator(model, split);
  const auto w = original_weights(backbone.layers());
  const models::EvalResult fp32 = models::evaluate(models::CaserInference(model, models::InferenceOptions{}), split, test_protocol());
  require_same(mean_of(evaluator, split, w, {}, false), fp32.sampled);
  require_same(mean_of(evaluator, split, w, {}, true), fp32.full);
  const models::LoadedModel loaded = through_file(model, "caser_eval");
  const auto bits = uniform_personalized_bits(loaded, 8);
  const models::InferenceOptions plan{LinearMode::mixed_s8, inference_bits(loaded, bits, 8), &best_kernels(), {}};
  const models::EvalResult ref = models::evaluate(models::CaserInference(model, plan), split, test_protocol());
  require_same(mean_of(evaluator, split, w, bits, true), ref.full);

  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets(layer_shapes(backbone.layers()), {backbone.profile_dim(), 16, 2});
  nets.init(4);
  const CloudPersonalizer cloud(nets, cache, backbone_fingerprint(backbone));
  DeviceModel device(loaded);
  const std::size_t u = 3;
  const ProfileMessage message{device.fingerprint(), 4.0f, kStandardPalette, device.profile(std::int32_t(u), split.train[u])};
  const std::vector<std::uint8_t> request = encode_profile(message);
  const std::vector<std::uint8_t> answer = cloud.respond(request.data(), request.size(), "device");
  const Adaptation a = device.adapt(answer.data(), answer.size(), "cloud");
  REQUIRE(a.packet.strategy.levels == cloud.strategy(backbone.profile(u), 4.0, kStandardPalette).strategy.levels);
  const models::CaserInference reference(model, models::InferenceOptions{LinearMode::mixed_s8, device.bits(),
                                                                          &best_kernels(), {}});
  auto s = reference.make_scratch();
  std::vector<float> state(16), scores(std::size_t(split.num_items) + 1);
  reference.encode(std::int32_t(u), split.train[u].data(), split.train[u].size(), s, state.data());
  reference.score_all(state.data(), scores.data(), s);
  REQUIRE(device.score_all(std::int32_t(u), split.train[u]) == scores);
}
