// CHORD personalization, backbone-independent core: quantization cache, profile message, the three
// hypernetworks, the importance formula, the Gumbel-softmax relaxation with its budget penalty (all
// against central finite differences), cloud -> strategy packet -> device, baselines, the trainer, and the
// end-to-end check the issue asks for: on a small backbone with planted user-specific structure, strategies
// personalized by trained hypernetworks beat the user-agnostic strategy at the same average bits.
//
// The backbone is PlantedRecommender (planted_backbone.hpp, shared with test_experiment.cpp): a 2-layer
// MLP recommender built from nn::Linear, with 4 user clusters whose inputs excite different blocks of
// hidden channels and score different blocks of items. A cluster's loss is thus sensitive to its own
// blocks of both personalized layers and barely to the others: a personalized strategy can spend the
// bits where this user needs them, a strategy shared by everyone cannot.
//
// Finite differences: objectives are reduced to doubles; each check compares the norm of (fd - analytic)
// with the norm of analytic over the checked components (1e-2 relative plus a floor for float noise,
// the criterion of test_nn_grad.cpp). Components whose perturbation flips a ReLU of a hypernetwork are
// skipped (the function has a kink there).
// CHORD_TEST_NO_THREADS (cross builds): qemu-user hangs in pthread_create, so trainers use one thread.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "chord/core/quantizer.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/nn/linear.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/importance.hpp"
#include "chord/personalize/cloud/personalizer.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"
#include "chord/personalize/device/adaptation.hpp"
#include "chord/personalize/experiment/baselines.hpp"
#include "chord/personalize/training/backbone.hpp"
#include "chord/personalize/training/hypernet_trainer.hpp"
#include "chord/personalize/training/relaxation.hpp"
#include "planted_backbone.hpp"
#include "test_helpers.hpp"

using namespace chord;
using namespace chord::personalize;
using chord::test::PlantedConfig;
using chord::test::PlantedRecommender;

namespace {

using chord::test::kTestThreads;

// ---------------------------------------------------------------------------------------------------
// Finite differences.
// ---------------------------------------------------------------------------------------------------
struct GradientCheck {
  double error_norm = 0.0, analytic_norm = 0.0;
  std::size_t checked = 0, skipped = 0;
  bool passes(double relative = 1e-2, double floor = 1e-4) const {
    return error_norm <= relative * analytic_norm + floor * std::sqrt(double(checked));
  }
};

using Pattern = std::function<std::vector<std::uint8_t>()>;

// Central differences of objective() w.r.t. v[index] for each index, against analytic[index].
template <typename T>
GradientCheck check_gradient(T* v, const std::vector<std::size_t>& indices, const std::vector<double>& analytic,
                             const std::function<double()>& objective, T h, const Pattern& pattern = nullptr) {
  GradientCheck result;
  std::vector<std::uint8_t> base;
  if (pattern) {
    objective();
    base = pattern();
  }
  double diff2 = 0.0, norm2 = 0.0;
  for (std::size_t i : indices) {
    const T saved = v[i];
    v[i] = saved + h;
    const double up_at = double(v[i]);
    const double up = objective();
    const bool up_smooth = !pattern || pattern() == base;
    v[i] = saved - h;
    const double down_at = double(v[i]);
    const double down = objective();
    const bool down_smooth = !pattern || pattern() == base;
    v[i] = saved;
    if (!up_smooth || !down_smooth) {
      ++result.skipped;
      continue;
    }
    const double fd = (up - down) / (up_at - down_at);
    diff2 += (fd - analytic[i]) * (fd - analytic[i]);
    norm2 += analytic[i] * analytic[i];
    ++result.checked;
  }
  objective();  // leave any state the objective writes as it is at the unperturbed point
  result.error_norm = std::sqrt(diff2), result.analytic_norm = std::sqrt(norm2);
  return result;
}

std::vector<std::size_t> all_indices(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t(0));
  return v;
}
// Up to `count` indices of [0, n), spread evenly (a deterministic sample of a large tensor).
std::vector<std::size_t> some_indices(std::size_t n, std::size_t count) {
  if (n <= count) return all_indices(n);
  std::vector<std::size_t> v;
  for (std::size_t i = 0; i < count; ++i) v.push_back(i * n / count + (i * 7) % std::max<std::size_t>(1, n / count));
  return v;
}

std::vector<double> random_vector(std::size_t n, std::uint64_t seed) {
  nn::Rng rng(seed, 77);
  std::vector<double> v(n);
  for (double& x : v) x = rng.normal();
  return v;
}

// The ReLU masks of the three nets (their kinks).
std::vector<std::uint8_t> relu_pattern(const HypernetWorkspace& ws) {
  std::vector<std::uint8_t> p;
  for (const MlpWorkspace* m : {&ws.element, &ws.filter, &ws.layer})
    for (float v : m->pre) p.push_back(v > 0.0f);
  return p;
}

PlantedConfig small_config(std::uint64_t seed) {
  PlantedConfig c;
  c.seed = seed;
  c.users = 8;
  return c;
}

Hypernetworks make_nets(const PersonalizableBackbone& backbone, std::uint64_t seed, std::size_t hidden = 16,
                        std::size_t rank = 3) {
  Hypernetworks nets(layer_shapes(backbone.layers()), HypernetConfig{backbone.profile_dim(), hidden, rank});
  nets.init(seed);
  return nets;
}

// Pushes the init's near-zero output layers to O(1) outputs, so that gradient checks see a generic point.
void spread_outputs(Hypernetworks& nets, std::uint64_t seed) {
  nn::Rng rng(seed, 5);
  nn::Parameters& p = nets.params();
  for (const char* net : {"element", "filter", "layer"})
    for (const char* part : {".fc2.weight", ".fc2.bias"}) {
      const nn::ParamId id = p.id(std::string(net) + part);
      for (std::size_t i = 0; i < p.info(id).size; ++i) p.value(id)[i] = rng.normal(0.0f, 0.5f);
    }
  p.value(nets.sharpness_id())[0] += rng.normal(0.0f, 0.3f);
  for (std::size_t i = 0; i < 2; ++i) p.value(nets.rate_id())[i] += rng.normal(0.0f, 0.1f);
}

}  // namespace

// ===================================================================================================
TEST_CASE("quantization cache: the device's quantize_channel rows, errors, normalized level curves",
          "[personalize][layers]") {
  const PlantedRecommender backbone(small_config(3));
  const auto layers = backbone.layers();
  const QuantizationCache cache(layers);
  REQUIRE(cache.layer_count() == 2);
  REQUIRE(cache.total_channels() == 32 + 16);
  REQUIRE(cache.total_weights() == 2.0 * 32 * 16);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const QuantizedLayer& q = cache.layer(l);
    for (int bits : {2, 4, 8}) {
      std::vector<std::uint8_t> widths(layers[l].channels, std::uint8_t(bits));
      const auto device = fake_quantized(quantize_channels(layers[l].weight, layers[l].channels, layers[l].fan_in,
                                                           widths.data()));
      for (std::size_t c = 0; c < layers[l].channels; ++c)
        for (std::size_t j = 0; j < layers[l].fan_in; ++j)
          REQUIRE(q.row(bits, c)[j] == device[c * layers[l].fan_in + j]);  // bit for bit
    }
    REQUIRE(q.row(0, 0) == nullptr);
    for (std::size_t c = 0; c < q.channels; ++c) {
      double energy = 0.0, e2 = 0.0, sum_d2 = 0.0;
      for (std::size_t j = 0; j < q.fan_in; ++j) {
        const double w = layers[l].weight[c * q.fan_in + j];
        energy += w * w;
        e2 += (w - q.row(2, c)[j]) * (w - q.row(2, c)[j]);
        sum_d2 += q.q2_error2[c * q.fan_in + j];
      }
      REQUIRE(q.error2[c][0] == Approx(energy).epsilon(1e-12));
      REQUIRE(q.error2[c][1] == Approx(e2).epsilon(1e-12));
      REQUIRE(sum_d2 == Approx(e2).epsilon(1e-5));
      REQUIRE(q.error2[c][1] > q.error2[c][2]);  // more bits, less error
      REQUIRE(q.error2[c][2] > q.error2[c][3]);
      REQUIRE(q.error2[c][0] > q.error2[c][1]);
    }
  }
  // The solver's curves: r(2 bits) = 1, pruning = energy / Q2 error, non-increasing in the level.
  for (const Palette& palette : {kStandardPalette, Palette{2, 2, 4, 8}, Palette{0, 2, 4, 4}}) {
    const auto curves = cache.level_errors(palette);
    for (std::size_t l = 0; l < curves.size(); ++l)
      for (std::size_t c = 0; c < curves[l].size(); ++c) {
        for (int k = 0; k < kLevels; ++k) {
          if (palette[k] == 2) REQUIRE(curves[l][c][k] == 1.0);
          if (k > 0) REQUIRE(curves[l][c][k] <= curves[l][c][k - 1]);
        }
        if (palette[0] == 0)
          REQUIRE(curves[l][c][0] == Approx(cache.layer(l).error2[c][0] / cache.layer(l).error2[c][1]));
      }
  }
}

TEST_CASE("quantization cache: zero channels and bad layers", "[personalize][layers]") {
  std::vector<float> w(3 * 4, 0.0f);
  for (std::size_t j = 0; j < 4; ++j) w[4 + j] = 0.5f * float(j) - 0.7f;  // channel 1 nonzero
  const QuantizationCache cache({{"w", 3, 4, w.data()}});
  const auto curves = cache.level_errors(kStandardPalette);
  for (int k = 0; k < kLevels; ++k) REQUIRE(curves[0][0][k] == 0.0);  // an all-zero channel never wants bits
  REQUIRE(curves[0][1][1] == 1.0);
  REQUIRE_THROWS_WITH(QuantizationCache({{"empty", 0, 4, w.data()}}), Catch::Contains("empty"));
  REQUIRE_THROWS_WITH(QuantizationCache({{"null", 3, 4, nullptr}}), Catch::Contains("no weights"));
  w[5] = std::nanf("");
  REQUIRE_THROWS_WITH(QuantizationCache({{"nan", 3, 4, w.data()}}), Catch::Contains("not finite"));
}

TEST_CASE("planted backbone: its own backward matches finite differences", "[personalize][grad]") {
  const PlantedRecommender backbone(small_config(4));
  const auto layers = backbone.layers();
  std::vector<std::vector<float>> w;
  for (const auto& l : layers) w.emplace_back(l.weight, l.weight + l.channels * l.fan_in);
  auto ws = backbone.make_workspace();
  const UserLossRequest request{2, UserSplit::train, 0};
  const auto loss = [&] { return backbone.loss_and_weight_grads(request, {w[0].data(), w[1].data()}, nullptr, *ws); };
  for (std::size_t l = 0; l < 2; ++l) {
    std::vector<std::vector<float>> dw = {std::vector<float>(w[0].size()), std::vector<float>(w[1].size())};
    std::vector<float*> dp = {dw[0].data(), dw[1].data()};
    backbone.loss_and_weight_grads(request, {w[0].data(), w[1].data()}, &dp, *ws);
    const std::vector<double> analytic(dw[l].begin(), dw[l].end());
    const auto check = check_gradient<float>(w[l].data(), all_indices(w[l].size()), analytic, loss, 1e-2f);
    INFO("layer " << l << ": error " << check.error_norm << " of " << check.analytic_norm);
    REQUIRE(check.passes(1e-2, 1e-4));
  }
}

TEST_CASE("hypernetworks: layouts, names and every net's backward against finite differences",
          "[personalize][grad]") {
  const PlantedRecommender backbone(small_config(5));
  Hypernetworks nets = make_nets(backbone, 11, 12, 3);
  spread_outputs(nets, 12);
  REQUIRE(nets.total_channels() == 48);
  REQUIRE(nets.a_offset(0) == 0);
  REQUIRE(nets.b_offset(0) == 32 * 3);
  REQUIRE(nets.a_offset(1) == (32 + 16) * 3);
  REQUIRE(nets.channel_offset(1) == 32);
  for (const char* name : {"element.fc1.weight", "element.fc2.bias", "filter.fc1.bias", "filter.fc2.weight",
                           "layer.fc1.weight", "layer.fc2.weight", "relax.sharpness", "relax.rate"})
    REQUIRE(nets.params().find(name).has_value());
  REQUIRE(nets.params().info(nets.params().id("element.fc2.weight")).shape ==
          std::vector<std::size_t>{(32 + 16 + 16 + 32) * 3, 12});

  const std::vector<float> u = backbone.profile(1);
  HypernetWorkspace ws;
  nets.forward(u.data(), ws);
  const auto R_e = random_vector(ws.element.out.size(), 1), R_f = random_vector(ws.filter.out.size(), 2),
             R_l = random_vector(ws.layer.out.size(), 3);
  const auto objective = [&] {
    nets.forward(u.data(), ws);
    double f = 0.0;
    for (std::size_t i = 0; i < R_e.size(); ++i) f += R_e[i] * ws.element.out[i];
    for (std::size_t i = 0; i < R_f.size(); ++i) f += R_f[i] * ws.filter.out[i];
    for (std::size_t i = 0; i < R_l.size(); ++i) f += R_l[i] * ws.layer.out[i];
    return f;
  };
  objective();
  for (std::size_t i = 0; i < R_e.size(); ++i) ws.element.dout[i] = float(R_e[i]);
  for (std::size_t i = 0; i < R_f.size(); ++i) ws.filter.dout[i] = float(R_f[i]);
  for (std::size_t i = 0; i < R_l.size(); ++i) ws.layer.dout[i] = float(R_l[i]);
  nn::Parameters& p = nets.params();
  p.zero_grad();
  nets.backward(u.data(), ws, p.grads());
  for (std::size_t id = 0; id < p.count(); ++id) {
    const nn::ParamInfo& info = p.info(id);
    if (info.name.rfind("relax.", 0) == 0) continue;  // not used by the nets
    const std::vector<double> analytic(p.grad(id), p.grad(id) + info.size);
    const auto check = check_gradient<float>(p.value(id), some_indices(info.size, 80), analytic, objective, 1e-2f,
                                             [&] { return relu_pattern(ws); });
    INFO(info.name << ": error " << check.error_norm << " of " << check.analytic_norm << ", skipped "
                   << check.skipped);
    REQUIRE(check.analytic_norm > 0.0);
    REQUIRE(check.checked > check.skipped);
    REQUIRE(check.passes(1e-2, 1e-3));
  }
}

TEST_CASE("importance: the formula, and its backward against finite differences", "[personalize][grad]") {
  const PlantedRecommender backbone(small_config(6));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 21, 8, 2);
  spread_outputs(nets, 22);
  const std::vector<float> u = backbone.profile(3);
  HypernetWorkspace ws;
  nets.forward(u.data(), ws);
  ImportanceState st;
  importance_forward(nets, cache, ws, st);

  // The formula, written out naively: c = lambda g sum_j softplus(A_i . B_j) (w - Q2(w))^2.
  const std::size_t r = nets.rank();
  for (std::size_t l = 0; l < 2; ++l) {
    const QuantizedLayer& layer = cache.layer(l);
    for (std::size_t i = 0; i < layer.channels; ++i) {
      double e = 0.0;
      for (std::size_t j = 0; j < layer.fan_in; ++j) {
        double a = 0.0;
        for (std::size_t q = 0; q < r; ++q)
          a += double(ws.element.out[nets.a_offset(l) + i * r + q]) * ws.element.out[nets.b_offset(l) + j * r + q];
        const double w = layer.weight[i * layer.fan_in + j], q2 = layer.row(2, i)[j];
        e += std::log1p(std::exp(a)) * (w - q2) * (w - q2);
      }
      const double g = std::log1p(std::exp(double(ws.filter.out[nets.channel_offset(l) + i])));
      const double lambda = std::log1p(std::exp(double(ws.layer.out[l])));
      REQUIRE(st.c[nets.channel_offset(l) + i] == Approx(lambda * g * e).epsilon(1e-5));
      REQUIRE(st.c[nets.channel_offset(l) + i] >= 0.0);
    }
  }

  // Backward: f = sum R_c c_c w.r.t. every raw output.
  const auto R = random_vector(nets.total_channels(), 9);
  const auto objective = [&] {
    importance_forward(nets, cache, ws, st);
    double f = 0.0;
    for (std::size_t c = 0; c < R.size(); ++c) f += R[c] * st.c[c] * 1e3;  // c is O(1e-3): scale to O(1)
    return f;
  };
  objective();
  std::vector<double> dc(R.size());
  for (std::size_t c = 0; c < R.size(); ++c) dc[c] = R[c] * 1e3;
  importance_backward(nets, cache, st, dc, ws);
  for (MlpWorkspace* m : {&ws.element, &ws.filter, &ws.layer}) {
    const std::vector<double> analytic(m->dout.begin(), m->dout.end());
    const auto check = check_gradient<float>(m->out.data(), all_indices(m->out.size()), analytic, objective, 1e-3f);
    INFO("error " << check.error_norm << " of " << check.analytic_norm);
    REQUIRE(check.analytic_norm > 0.0);
    REQUIRE(check.passes(1e-2, 1e-4));
  }
  REQUIRE(channel_importance(nets, cache, u.data()) == per_layer(nets, st.c));
}

TEST_CASE("relaxation: soft Gumbel-softmax path and budget penalty against finite differences",
          "[personalize][grad]") {
  const PlantedRecommender backbone(small_config(7));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 31, 8, 2);
  spread_outputs(nets, 32);
  const std::vector<float> u = backbone.profile(5);
  std::vector<double> c;
  {
    HypernetWorkspace ws;
    nets.forward(u.data(), ws);
    ImportanceState st;
    importance_forward(nets, cache, ws, st);
    c = st.c;
  }
  auto bb_ws = backbone.make_workspace();
  const UserLossRequest request{5, UserSplit::train, 0};
  for (double budget : {2.0, 3.5, 6.0}) {
    RelaxationOptions opt;
    opt.straight_through = false;  // the soft sample: a smooth function of everything
    opt.tau = 0.7;
    opt.mu = 0.8;
    RelaxationState st;
    const auto objective = [&] {
      nn::Rng noise(99, 1);  // the same Gumbel draws in every evaluation
      relaxation_forward(nets, cache, c, budget, opt, noise, st);
      std::vector<const float*> w = {st.w_eff[0].data(), st.w_eff[1].data()};
      return backbone.loss_and_weight_grads(request, w, nullptr, *bb_ws) + st.penalty;
    };
    objective();
    REQUIRE(st.penalty == Approx(opt.mu * (st.expected_bits - budget) * (st.expected_bits - budget)));
    std::vector<std::vector<float>> dw = {std::vector<float>(st.w_eff[0].size()), std::vector<float>(st.w_eff[1].size())};
    std::vector<float*> dp = {dw[0].data(), dw[1].data()};
    backbone.loss_and_weight_grads(request, {st.w_eff[0].data(), st.w_eff[1].data()}, &dp, *bb_ws);
    nn::Parameters& p = nets.params();
    p.zero_grad();
    std::vector<double> dc;
    relaxation_backward(nets, cache, opt, c, st, dw, 1.0, dc, p.grads());

    // w.r.t. log c (importances span decades): d/dlog c = c dL/dc.
    std::vector<double> log_c(c.size()), analytic(c.size());
    for (std::size_t i = 0; i < c.size(); ++i) log_c[i] = std::log(c[i]), analytic[i] = dc[i] * c[i];
    const auto through_log = [&] {
      for (std::size_t i = 0; i < c.size(); ++i) c[i] = std::exp(log_c[i]);
      return objective();
    };
    const auto check_c = check_gradient<double>(log_c.data(), all_indices(c.size()), analytic, through_log, 1e-3);
    INFO("budget " << budget << ", log c: error " << check_c.error_norm << " of " << check_c.analytic_norm);
    REQUIRE(check_c.analytic_norm > 0.0);
    REQUIRE(check_c.passes(1e-2, 1e-5));
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = std::exp(log_c[i]);

    for (nn::ParamId id : {nets.sharpness_id(), nets.rate_id()}) {
      const std::size_t n = p.info(id).size;
      const std::vector<double> grad(p.grad(id), p.grad(id) + n);
      const auto check = check_gradient<float>(p.value(id), all_indices(n), grad, objective, 1e-3f);
      INFO("budget " << budget << ", " << p.info(id).name << ": error " << check.error_norm << " of "
                     << check.analytic_norm);
      REQUIRE(check.analytic_norm > 0.0);
      REQUIRE(check.passes(1e-2, 1e-5));
    }
  }
}

TEST_CASE("relaxation: the solver's choice, importance order, expected bits, the penalty alone",
          "[personalize][relax]") {
  const PlantedRecommender backbone(small_config(8));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 41, 8, 2);
  spread_outputs(nets, 42);
  const RelaxationCoefficients coef = nets.relaxation();
  REQUIRE(coef.sharpness > 0.0);
  std::vector<double> c(nets.total_channels());
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = 1e-3 * std::exp(0.4 * double(i % 17));
  RelaxationOptions opt;
  opt.mu = 2.0;
  RelaxationState st;
  const double budget = 3.0;
  nn::Rng noise(1, 2);
  relaxation_forward(nets, cache, c, budget, opt, noise, st);
  // Expected bits: the mean of the level distribution's widths, weighted by fan-in.
  double bits = 0.0;
  for (std::size_t l = 0; l < 2; ++l)
    for (std::size_t i = 0; i < cache.layer(l).channels; ++i)
      for (int k = 0; k < kLevels; ++k)
        bits += double(cache.layer(l).fan_in) * st.p[nets.channel_offset(l) + i][k] * kStandardPalette[k];
  REQUIRE(st.expected_bits == Approx(bits / cache.total_weights()));

  // The most likely level of every channel is the solver's Lagrangian choice for the multiplier the
  // relaxation implies: argmin_k c r(k) + lambda fan_in palette[k], lambda = mean-normalizer / rate.
  const auto curves = cache.level_errors(kStandardPalette);
  double mean_log = 0.0;
  for (std::size_t l = 0; l < 2; ++l)
    for (std::size_t i = 0; i < cache.layer(l).channels; ++i)
      mean_log += std::log(c[nets.channel_offset(l) + i] / double(cache.layer(l).fan_in)) / double(c.size());
  const double lambda = std::exp(mean_log - coef.log_rate(budget));
  for (std::size_t l = 0; l < 2; ++l)
    for (std::size_t i = 0; i < cache.layer(l).channels; ++i) {
      const std::size_t ch = nets.channel_offset(l) + i;
      int solver = 0, relaxed = 0;
      double best = HUGE_VAL;
      for (int k = 0; k < kLevels; ++k) {
        const double lagrangian = c[ch] * curves[l][i][k] + lambda * double(cache.layer(l).fan_in) * kStandardPalette[k];
        if (lagrangian < best) best = lagrangian, solver = k;
        if (st.p[ch][k] > st.p[ch][relaxed]) relaxed = k;
      }
      REQUIRE(relaxed == solver);
    }

  // A channel made more important leans to higher levels: its expected level grows.
  const auto expected_level = [&](std::size_t ch) {
    double e = 0.0;
    for (int k = 0; k < kLevels; ++k) e += k * st.p[ch][k];
    return e;
  };
  std::vector<double> levels;
  for (double factor : {1e-4, 1e-2, 1.0, 1e2, 1e4}) {
    std::vector<double> scaled = c;
    scaled[5] = c[5] * factor;
    nn::Rng n2(1, 2);
    relaxation_forward(nets, cache, scaled, budget, opt, n2, st);
    levels.push_back(expected_level(5));
  }
  for (std::size_t i = 1; i < levels.size(); ++i) REQUIRE(levels[i] >= levels[i - 1]);
  REQUIRE(levels.front() < 0.5);  // unimportant: pruned
  REQUIRE(levels.back() > 2.5);   // very important: 8 bits

  // The penalty alone (zero rec gradient): above the budget it pushes the rate down, below it up.
  for (double b : {2.0, 6.0}) {
    nn::Rng n3(1, 2);
    relaxation_forward(nets, cache, c, b, opt, n3, st);
    std::vector<std::vector<float>> zero = {std::vector<float>(st.w_eff[0].size()), std::vector<float>(st.w_eff[1].size())};
    std::vector<double> dc;
    nets.params().zero_grad();
    relaxation_backward(nets, cache, opt, c, st, zero, 1.0, dc, nets.params().grads());
    REQUIRE(std::fabs(st.expected_bits - b) > 1e-3);
    const double sign = st.expected_bits > b ? 1.0 : -1.0;
    INFO("budget " << b << ", expected bits " << st.expected_bits);
    REQUIRE(sign * nets.params().grad(nets.rate_id())[0] > 0.0);
  }
}

TEST_CASE("relaxation: straight-through forward is one-hot and samples levels from softmax(z)",
          "[personalize][relax]") {
  const PlantedRecommender backbone(small_config(9));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 51, 8, 2);
  spread_outputs(nets, 52);
  std::vector<double> c(nets.total_channels());
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = std::exp(0.3 * double(i % 5));
  RelaxationOptions opt;
  opt.straight_through = true;
  RelaxationState st;
  const int draws = 3000;
  std::vector<std::array<double, 4>> freq(c.size());
  std::size_t not_one_hot = 0, not_the_row = 0;  // counted, then checked once: 3000 draws x 1024 weights
  for (int d = 0; d < draws; ++d) {
    nn::Rng noise(7, std::uint64_t(d));
    relaxation_forward(nets, cache, c, 3.0, opt, noise, st);
    for (std::size_t l = 0; l < 2; ++l) {
      const QuantizedLayer& layer = cache.layer(l);
      for (std::size_t i = 0; i < layer.channels; ++i) {
        const std::size_t ch = nets.channel_offset(l) + i;
        const int level = st.level[ch];
        freq[ch][level] += 1.0 / draws;
        double ones = 0.0;
        for (int k = 0; k < kLevels; ++k) ones += st.pi[ch][k];
        not_one_hot += ones != 1.0 || st.pi[ch][level] != 1.0;
        const float* q = layer.row(kStandardPalette[level], i);
        for (std::size_t j = 0; j < layer.fan_in; ++j)
          not_the_row += st.w_eff[l][i * layer.fan_in + j] != (q == nullptr ? 0.0f : q[j]);
      }
    }
  }
  REQUIRE(not_one_hot == 0);
  REQUIRE(not_the_row == 0);
  // Gumbel-max: the hard level's frequency is softmax(z) (the p the penalty uses). 3000 draws: 4 sigma < 0.037.
  for (std::size_t ch = 0; ch < c.size(); ++ch)
    for (int k = 0; k < kLevels; ++k) REQUIRE(std::fabs(freq[ch][k] - st.p[ch][k]) < 0.037);
}

TEST_CASE("user_objective: the whole chain (soft) against finite differences in every parameter tensor",
          "[personalize][grad]") {
  const PlantedRecommender backbone(small_config(10));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 61, 10, 2);
  spread_outputs(nets, 62);
  const std::vector<float> u = backbone.profile(6);
  RelaxationOptions opt;
  opt.straight_through = false;
  opt.tau = 0.8;
  opt.mu = 0.5;
  UserPass pass;
  const UserLossRequest request{6, UserSplit::train, 0};
  const auto objective = [&] {
    nn::Rng noise(5, 5);
    return user_objective(backbone, nets, cache, u.data(), request, 3.0, opt, noise, pass, nullptr).total();
  };
  nn::Parameters& p = nets.params();
  p.zero_grad();
  {
    nn::Rng noise(5, 5);
    const double scale = 0.5;  // the gradient is scaled, the loss is not
    const UserObjective r = user_objective(backbone, nets, cache, u.data(), request, 3.0, opt, noise, pass, &p.grads(), scale);
    REQUIRE(r.total() == Approx(objective()));
    for (std::size_t i = 0; i < p.grads().size(); ++i) p.grads().data()[i] /= float(scale);
  }
  for (std::size_t id = 0; id < p.count(); ++id) {
    const nn::ParamInfo& info = p.info(id);
    const std::vector<double> analytic(p.grad(id), p.grad(id) + info.size);
    const auto check = check_gradient<float>(p.value(id), some_indices(info.size, 40), analytic, objective, 2e-3f,
                                             [&] { return relu_pattern(pass.hyper); });
    INFO(info.name << ": error " << check.error_norm << " of " << check.analytic_norm << ", skipped " << check.skipped);
    REQUIRE(check.analytic_norm > 0.0);
    REQUIRE(check.passes(2e-2, 1e-4));
  }
}

// ===================================================================================================
namespace {

ProfileMessage sample_profile(std::size_t dim, std::uint64_t seed) {
  nn::Rng rng(seed, 3);
  ProfileMessage m;
  m.fingerprint = 0x0123456789abcdefull ^ seed;
  m.budget = 3.25f;
  m.palette = Palette{2, 2, 4, 8};
  for (std::size_t i = 0; i < dim; ++i) m.profile.push_back(rng.normal());
  return m;
}

ProfileExpectation expectation_of(const ProfileMessage& m) { return {m.fingerprint, m.profile.size()}; }

// Re-seals a modified message with a valid checksum (to reach the contents checks).
std::vector<std::uint8_t> reseal(std::vector<std::uint8_t> bytes) {
  const std::uint32_t crc = crc32(bytes.data(), bytes.size() - 4);
  for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
  return bytes;
}

}  // namespace

TEST_CASE("profile message: byte layout follows the spec", "[personalize][profile]") {
  ProfileMessage m = sample_profile(3, 1);
  m.profile = {1.0f, -2.5f, 0.0f};
  const auto bytes = encode_profile(m);
  REQUIRE(bytes.size() == profile_message_size(3));
  REQUIRE(bytes.size() == 28 + 12 + 4);
  REQUIRE(std::string(bytes.begin(), bytes.begin() + 4) == "CHRP");
  REQUIRE(bytes[4] == 1);
  REQUIRE(bytes[5] == 0);
  REQUIRE((bytes[6] | bytes[7]) == 0);
  REQUIRE(bytes[8] == std::uint8_t(m.fingerprint));       // little-endian
  REQUIRE(bytes[15] == std::uint8_t(m.fingerprint >> 56));
  REQUIRE(bytes::bits_float(std::uint32_t(bytes[16] | bytes[17] << 8 | bytes[18] << 16 | std::uint32_t(bytes[19]) << 24)) ==
          3.25f);
  REQUIRE(std::vector<std::uint8_t>(bytes.begin() + 20, bytes.begin() + 24) == std::vector<std::uint8_t>{2, 2, 4, 8});
  REQUIRE(bytes[24] == 3);
  REQUIRE(bytes[28 + 3] == 0x3f);  // 1.0f = 0x3f800000
  REQUIRE(bytes[28 + 4 + 3] == 0xc0);  // -2.5f = 0xc0200000
  const std::uint32_t crc = crc32(bytes.data(), bytes.size() - 4);
  REQUIRE(bytes[bytes.size() - 4] == std::uint8_t(crc));
}

TEST_CASE("profile message: round trip, and every corruption and truncation is rejected", "[personalize][profile]") {
  for (std::size_t dim : {0, 1, 7, 64}) {
    const ProfileMessage m = sample_profile(dim, dim + 1);
    const auto bytes = encode_profile(m);
    const ProfileMessage back = decode_profile(bytes, expectation_of(m), "test");
    REQUIRE(back.fingerprint == m.fingerprint);
    REQUIRE(back.budget == m.budget);
    REQUIRE(back.palette == m.palette);
    REQUIRE(back.profile == m.profile);
    // Every single-byte corruption (three different flips per byte).
    for (std::size_t i = 0; i < bytes.size(); ++i)
      for (std::uint8_t flip : {std::uint8_t(0x01), std::uint8_t(0x80), std::uint8_t(0xff)}) {
        auto bad = bytes;
        bad[i] ^= flip;
        INFO("dim " << dim << ", byte " << i << " ^ " << int(flip));
        REQUIRE_THROWS_AS(decode_profile(bad, expectation_of(m), "corrupt"), Error);
      }
    // Every truncation, and one trailing byte.
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO("dim " << dim << ", truncated to " << n);
      REQUIRE_THROWS_AS(decode_profile(bytes.data(), n, expectation_of(m), "short"), Error);
    }
    auto longer = bytes;
    longer.push_back(0);
    REQUIRE_THROWS_WITH(decode_profile(longer, expectation_of(m), "long"), Catch::Contains("trailing"));
  }
}

TEST_CASE("profile message: errors name the source, byte and field", "[personalize][profile]") {
  const ProfileMessage m = sample_profile(4, 9);
  const auto bytes = encode_profile(m);
  const auto expect = expectation_of(m);
  auto bad = bytes;
  bad[30] ^= 1;
  REQUIRE_THROWS_WITH(decode_profile(bad, expect, "net"),
                      Catch::StartsWith("profile message 'net': byte 44 (checksum): checksum mismatch"));
  REQUIRE_THROWS_WITH(decode_profile(bytes.data(), 10, expect, "net"),
                      Catch::StartsWith("profile message 'net': byte 8 (model fingerprint): truncated"));
  bad = bytes;
  bad[0] = 'X';
  REQUIRE_THROWS_WITH(decode_profile(bad, expect, "net"), Catch::Contains("not a profile message"));
  bad = bytes;
  bad[4] = 2;
  REQUIRE_THROWS_WITH(decode_profile(bad, expect, "net"), Catch::Contains("unsupported version 2"));
  REQUIRE_THROWS_WITH(decode_profile(bytes, {m.fingerprint + 1, 4}, "net"), Catch::Contains("(model fingerprint)"));
  REQUIRE_THROWS_WITH(decode_profile(bytes, {m.fingerprint, 5}, "net"), Catch::Contains("dimension mismatch"));
  bad = bytes;
  bad[6] = 1;
  REQUIRE_THROWS_WITH(decode_profile(reseal(bad), expect, "net"), Catch::Contains("(reserved)"));
  bad = bytes;
  bad[20] = 4, bad[21] = 2;  // {4, 2, 4, 8}: decreasing
  REQUIRE_THROWS_WITH(decode_profile(reseal(bad), expect, "net"), Catch::Contains("byte 20 (palette)"));
  bad = bytes;
  const std::uint32_t nan_bits = bytes::float_bits(std::nanf(""));
  for (int i = 0; i < 4; ++i) bad[16 + std::size_t(i)] = std::uint8_t(nan_bits >> (8 * i));
  REQUIRE_THROWS_WITH(decode_profile(reseal(bad), expect, "net"), Catch::Contains("byte 16 (budget)"));
  bad = bytes;
  for (int i = 0; i < 4; ++i) bad[28 + 4 + std::size_t(i)] = std::uint8_t(nan_bits >> (8 * i));
  REQUIRE_THROWS_WITH(decode_profile(reseal(bad), expect, "net"), Catch::Contains("byte 32 (profile)"));
  bad = bytes;
  bad[27] = 0xff;  // a dimension of billions: refused before any allocation
  REQUIRE_THROWS_WITH(decode_profile(bad, expect, "net"), Catch::Contains("exceeds the limit"));

  ProfileMessage wrong = m;
  wrong.budget = 9.0f;
  REQUIRE_THROWS_WITH(encode_profile(wrong), Catch::Contains("budget"));
  wrong = m;
  wrong.profile[2] = INFINITY;
  REQUIRE_THROWS_WITH(encode_profile(wrong), Catch::Contains("profile value 2"));
  wrong = m;
  wrong.palette = Palette{0, 3, 4, 8};
  REQUIRE_THROWS_AS(encode_profile(wrong), Error);
}

TEST_CASE("profile message: file round trip, errors name the file", "[personalize][profile][file]") {
  const std::string path = "test_personalize_profile.bin";
  const ProfileMessage m = sample_profile(16, 4);
  save_profile(path, m);
  REQUIRE(load_profile(path, expectation_of(m)).profile == m.profile);
  REQUIRE_THROWS_WITH(load_profile(path, {m.fingerprint ^ 1, 16}), Catch::Contains(path));
  std::remove(path.c_str());
  REQUIRE_THROWS_WITH(load_profile(path, expectation_of(m)), Catch::Contains(path));
}

TEST_CASE("cloud -> strategy packet -> device: levels, widths and quantized weights agree", "[personalize][cloud]") {
  const PlantedRecommender backbone(small_config(12));
  const auto layers = backbone.layers();
  const QuantizationCache cache(layers);
  Hypernetworks nets = make_nets(backbone, 71);
  spread_outputs(nets, 72);
  const std::uint64_t fingerprint = backbone_fingerprint(backbone);
  const CloudPersonalizer cloud(nets, cache, fingerprint);
  const PacketExpectation device_expects{fingerprint, layer_shapes(layers)};
  const FrozenChannelCodes device_codes(layer_shapes(layers), original_weights(layers));

  for (std::size_t user = 0; user < 4; ++user)
    for (const Palette& palette : {kStandardPalette, Palette{2, 2, 4, 8}, Palette{0, 2, 4, 4}})
      for (float budget : {2.0f, 3.0f, 4.0f}) {
        // Device: profile message.
        ProfileMessage request;
        request.fingerprint = fingerprint;
        request.budget = budget;
        request.palette = palette;
        request.profile = backbone.profile(user);
        const auto request_bytes = encode_profile(request);
        // Cloud: strict decode, hypernetworks, solver, packet.
        const auto answer = cloud.respond(request_bytes.data(), request_bytes.size(), "device");
        REQUIRE(answer.size() == strategy_packet_size(cloud.strategy(request.profile, budget, palette).strategy));
        // Device: strict decode, its own palette, quantize its frozen weights.
        const StrategyPacket packet = decode_strategy(answer, device_expects, "cloud");
        REQUIRE(packet.palette == palette);
        REQUIRE(packet.budget == budget);
        const BudgetSolution expected = cloud.strategy(request.profile, budget, palette);
        REQUIRE(packet.strategy.levels == expected.strategy.levels);
        const double bits = average_bits(packet.strategy, cache.shapes(), palette);
        INFO("user " << user << ", budget " << budget);
        REQUIRE(bits <= budget + 1e-9);
        REQUIRE(bits == Approx(expected.average_bits));
        if (palette[0] == 2) REQUIRE(bits >= 2.0);
        // Device: the one adaptation path (decode once, widths from the packet's palette, cached codes).
        const DecodedStrategy decoded = decode_for_device(answer, device_expects, "cloud");
        REQUIRE(decoded.packet.strategy.levels == packet.strategy.levels);
        REQUIRE(decoded.average_bits == bits);
        const auto device = device_codes.select(decoded.bits);
        const auto cloud_view = strategy_weights(cache, packet.strategy, palette);
        for (std::size_t l = 0; l < layers.size(); ++l) REQUIRE(fake_quantized(device[l]) == cloud_view[l]);
      }

  // A profile of another model is refused by the cloud, with the field named.
  ProfileMessage other;
  other.fingerprint = fingerprint ^ 1;
  other.budget = 3.0f;
  other.profile = backbone.profile(0);
  const auto other_bytes = encode_profile(other);
  REQUIRE_THROWS_WITH(cloud.respond(other_bytes.data(), other_bytes.size(), "device"),
                      Catch::Contains("(model fingerprint)"));
}

TEST_CASE("personalized strategies differ across clusters, and more budget never lowers a level",
          "[personalize][cloud]") {
  const PlantedRecommender backbone(small_config(13));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 81);
  spread_outputs(nets, 82);
  const CloudPersonalizer cloud(nets, cache, backbone_fingerprint(backbone));
  const auto a = cloud.strategy(backbone.profile(0), 3.0, kStandardPalette).strategy;
  const auto b = cloud.strategy(backbone.profile(1), 3.0, kStandardPalette).strategy;
  REQUIRE(a.levels != b.levels);  // users of different clusters, different profiles
  // The solver's greedy order does not depend on the budget: a larger budget only continues it.
  const auto low = cloud.strategy(backbone.profile(2), 2.0, kStandardPalette).strategy;
  const auto high = cloud.strategy(backbone.profile(2), 4.0, kStandardPalette).strategy;
  for (std::size_t l = 0; l < low.levels.size(); ++l)
    for (std::size_t c = 0; c < low.levels[l].size(); ++c) REQUIRE(high.levels[l][c] >= low.levels[l][c]);
}

TEST_CASE("baselines: through the same solver at the same budget; uniform strategies", "[personalize][baselines]") {
  const PlantedRecommender backbone(small_config(14));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 91);
  spread_outputs(nets, 92);
  std::vector<std::vector<float>> profiles;
  for (std::size_t u = 0; u < backbone.user_count(); ++u) profiles.push_back(backbone.profile(u));
  const Importances population = population_importance(nets, cache, profiles);
  // The population importance is the mean of the users' importances.
  const CloudPersonalizer cloud(nets, cache, backbone_fingerprint(backbone));
  double sum = 0.0;
  for (const auto& u : profiles) sum += cloud.importance(u)[1][3];
  REQUIRE(population[1][3] == Approx(sum / double(profiles.size())));
  const double granularity = 8.0 * 32 / cache.total_weights();  // the widest single upgrade
  for (double budget : {2.0, 3.0, 5.0}) {
    for (const Importances& c : {population, q2_energy_importance(cache), random_importance(cache, 5)}) {
      const BudgetSolution s = solve_strategy(cache, c, budget, kStandardPalette);
      REQUIRE(s.average_bits <= budget + 1e-9);
      REQUIRE(s.average_bits >= budget - granularity);
    }
  }
  REQUIRE(random_importance(cache, 5) == random_importance(cache, 5));
  REQUIRE(random_importance(cache, 5) != random_importance(cache, 6));
  const Strategy four = uniform_strategy(cache.shapes(), 4.0, kStandardPalette);
  REQUIRE(average_bits(four, cache.shapes(), kStandardPalette) == 4.0);
  REQUIRE(four.levels[0][0] == 2);
  REQUIRE(uniform_strategy(cache.shapes(), 2.0, Palette{2, 2, 4, 8}).levels[1][0] == 1);  // the highest level of width 2
  REQUIRE_THROWS_WITH(uniform_strategy(cache.shapes(), 3.0, kStandardPalette), Catch::Contains("not a width"));
}

TEST_CASE("hypernetworks file: round trip, and files of other models or configs are refused",
          "[personalize][file]") {
  const PlantedRecommender backbone(small_config(15));
  Hypernetworks nets = make_nets(backbone, 101);
  spread_outputs(nets, 102);
  const std::uint64_t fingerprint = backbone_fingerprint(backbone);
  const std::string path = "test_personalize_hypernetworks.safetensors";
  save_hypernetworks(path, nets, fingerprint);
  Hypernetworks loaded = make_nets(backbone, 999);
  load_hypernetworks(path, loaded, fingerprint);
  for (std::size_t id = 0; id < nets.params().count(); ++id)
    REQUIRE(std::equal(nets.params().value(id), nets.params().value(id) + nets.params().info(id).size,
                       loaded.params().value(id)));
  Hypernetworks untouched = make_nets(backbone, 999);
  REQUIRE_THROWS_WITH(load_hypernetworks(path, untouched, fingerprint ^ 1), Catch::Contains("chord.model_fingerprint"));
  Hypernetworks wider = make_nets(backbone, 999, 20);
  REQUIRE_THROWS_WITH(load_hypernetworks(path, wider, fingerprint), Catch::Contains("chord.hidden"));
  // Nothing was half-loaded by the refusals.
  const Hypernetworks fresh = make_nets(backbone, 999);
  REQUIRE(std::equal(fresh.params().values(), fresh.params().values() + fresh.params().flat_size(),
                     untouched.params().values()));
  SafetensorsFile file = hypernetworks_file(nets, fingerprint);
  file.tensors.pop_back();
  REQUIRE_THROWS_WITH(read_hypernetworks(file, untouched, fingerprint, "mem"), Catch::Contains("tensors"));
  file = hypernetworks_file(nets, fingerprint);
  file.tensors[0].shape = {file.tensors[0].values.size()};
  REQUIRE_THROWS_WITH(read_hypernetworks(file, untouched, fingerprint, "mem"), Catch::Contains("another shape"));
  std::remove(path.c_str());
}

TEST_CASE("trainer: deterministic per seed, and the thread count changes only the summation order",
          "[personalize][trainer]") {
  const PlantedRecommender backbone(small_config(16));
  const QuantizationCache cache(backbone.layers());
  std::vector<std::size_t> users = all_indices(backbone.user_count());
  TrainOptions options;
  options.steps = 6;
  options.users_per_step = 5;  // not a multiple of the threads, crosses an epoch
  options.progress = false;
  options.relaxation.straight_through = true;  // the hard-forward path trains too
  const auto run = [&](std::size_t threads) {
    Hypernetworks nets = make_nets(backbone, 111);
    TrainOptions o = options;
    o.threads = threads;
    HypernetTrainer trainer(backbone, nets, cache, users, o);
    const auto history = trainer.train();
    REQUIRE(history.size() == 6);
    for (const StepStats& s : history) {
      REQUIRE(std::isfinite(s.rec_loss));
      REQUIRE(s.budget >= 2.0);
      REQUIRE(s.budget <= 6.0);
    }
    return std::vector<float>(nets.params().values(), nets.params().values() + nets.params().flat_size());
  };
  const auto one = run(1);
  REQUIRE(run(1) == one);
  const auto two = run(kTestThreads);
  REQUIRE(two.size() == one.size());
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < one.size(); ++i) diff += std::fabs(one[i] - two[i]), norm += std::fabs(one[i]);
  REQUIRE(diff <= 1e-4 * norm);
  const Hypernetworks start = make_nets(backbone, 111);
  REQUIRE(!std::equal(one.begin(), one.end(), start.params().values()));  // it did train
}

TEST_CASE("trainer: the budget penalty drives expected bits to each device class", "[personalize][trainer]") {
  const PlantedRecommender backbone(small_config(17));
  const QuantizationCache cache(backbone.layers());
  Hypernetworks nets = make_nets(backbone, 121);
  TrainOptions options;
  options.steps = 100;
  options.users_per_step = 8;
  options.threads = kTestThreads;
  options.relaxation.mu = 4.0;
  options.progress = false;
  HypernetTrainer trainer(backbone, nets, cache, all_indices(backbone.user_count()), options);
  trainer.train();
  // After training, for every budget class the relaxation's expected bits are near the budget.
  for (double budget : options.budget_classes) {
    double worst = 0.0;
    for (std::size_t u = 0; u < backbone.user_count(); ++u) {
      UserPass pass;
      nn::Rng noise(1, u);
      const UserObjective r = user_objective(backbone, nets, cache, trainer.profiles()[u].data(), {u}, budget,
                                             options.relaxation, noise, pass, nullptr);
      worst = std::max(worst, std::fabs(r.expected_bits - budget));
    }
    INFO("budget " << budget << ": worst |E[bits] - budget| " << worst);
    REQUIRE(worst < 0.5);
  }
}

// ===================================================================================================
// End to end: train the hypernetworks on the planted backbone (64 training users), then compare on 32
// held-out users (never seen in training) the validation loss of their personalized strategies with the
// strategies every user gets alike, all from the same solver at the same budget:
//   population  the user-agnostic strategy: the trained nets' mean importance over the training users
//   q2 energy   the data-free criterion ||W_c - Q2(W_c)||^2 (also what the untrained nets give)
//   random      random importances
// The loss is the cross-entropy to the planted next-item distribution, whose minimum is the fp32 model:
// "excess" below is a strategy's loss minus the fp32 loss (the damage quantization does).
namespace {

struct EndToEnd {
  double fp32 = 0.0, chord = 0.0, population = 0.0, q2_energy = 0.0, random = 0.0;  // mean validation losses
  double chord_bits_min = 8.0, chord_bits_max = 0.0, population_bits = 0.0;       // achieved average bits
};

double validation_loss(const PlantedRecommender& backbone, std::size_t user, const std::vector<std::vector<float>>& w,
                       PersonalizableBackbone::Workspace& ws) {
  return backbone.loss_and_weight_grads({user, UserSplit::validation, 0}, {w[0].data(), w[1].data()}, nullptr, ws);
}

std::vector<EndToEnd> run_end_to_end(std::uint64_t seed, const std::vector<double>& budgets) {
  PlantedConfig config;
  config.seed = seed;
  config.users = 96;
  const PlantedRecommender backbone(config);
  const auto layers = backbone.layers();
  const QuantizationCache cache(layers);
  const std::size_t train_users = 64;
  Hypernetworks nets(layer_shapes(layers), HypernetConfig{backbone.profile_dim(), 32, 4});
  nets.init(seed);
  TrainOptions options;  // the defaults: soft relaxation, tau 1, mu 1, budgets {2, 3, 4, 6}, Adam lr 1e-2
  options.steps = 300;
  options.users_per_step = 8;
  options.threads = kTestThreads;
  options.seed = seed;
  options.progress = false;
  HypernetTrainer trainer(backbone, nets, cache, all_indices(train_users), options);
  trainer.train();

  const Palette palette = kStandardPalette;
  std::vector<std::vector<float>> fp32_w;
  for (const auto& l : layers) fp32_w.emplace_back(l.weight, l.weight + l.channels * l.fan_in);
  const Importances population = population_importance(nets, cache, trainer.profiles());
  const CloudPersonalizer cloud(nets, cache, backbone_fingerprint(backbone));
  auto ws = backbone.make_workspace();
  const double held_out = double(config.users - train_users);
  std::vector<EndToEnd> results;
  for (double budget : budgets) {
    const auto agnostic = solve_strategy(cache, population, budget, palette);
    const auto agnostic_w = strategy_weights(cache, agnostic.strategy, palette);
    const auto q2_w = strategy_weights(cache, solve_strategy(cache, q2_energy_importance(cache), budget, palette).strategy, palette);
    const auto random_w = strategy_weights(cache, solve_strategy(cache, random_importance(cache, seed), budget, palette).strategy, palette);
    EndToEnd r;
    r.population_bits = agnostic.average_bits;
    for (std::size_t user = train_users; user < config.users; ++user) {
      const BudgetSolution mine = cloud.strategy(backbone.profile(user), budget, palette);
      r.chord_bits_min = std::min(r.chord_bits_min, mine.average_bits);
      r.chord_bits_max = std::max(r.chord_bits_max, mine.average_bits);
      r.chord += validation_loss(backbone, user, strategy_weights(cache, mine.strategy, palette), *ws) / held_out;
      r.population += validation_loss(backbone, user, agnostic_w, *ws) / held_out;
      r.q2_energy += validation_loss(backbone, user, q2_w, *ws) / held_out;
      r.random += validation_loss(backbone, user, random_w, *ws) / held_out;
      r.fp32 += validation_loss(backbone, user, fp32_w, *ws) / held_out;
    }
    results.push_back(r);
  }
  return results;
}

}  // namespace

// Margins: over seeds 1..12 (measured while writing this test, docs/chord.md) the personalized strategies
// removed at least 56% / 46% / 29% of the population strategy's excess loss at 2 / 3 / 4 bits, and
// 67% / 46% / 8% of the q2-energy strategy's. The thresholds below sit well under those minima and hold
// on every seed tested, not on one. Under qemu (CHORD_TEST_NO_THREADS: cross builds, where emulated
// floating point makes training ~35x slower) only seed 1 runs; natively seeds 1, 2 and 3.
TEST_CASE("end to end: personalized strategies beat the user-agnostic strategy at the same bits",
          "[personalize][e2e]") {
  const std::vector<double> budgets = {2.0, 3.0, 4.0};
  const double granularity = 8.0 * 32 / 1024.0;  // the widest single upgrade of the solver, in average bits
#ifdef CHORD_TEST_NO_THREADS
  const std::vector<std::uint64_t> seeds = {1};
#else
  const std::vector<std::uint64_t> seeds = {1, 2, 3};
#endif
  double recovered_sum = 0.0;
  int cases = 0;
  for (std::uint64_t seed : seeds) {
    const auto results = run_end_to_end(seed, budgets);
    for (std::size_t i = 0; i < budgets.size(); ++i) {
      const EndToEnd& r = results[i];
      const double chord = r.chord - r.fp32, population = r.population - r.fp32, q2 = r.q2_energy - r.fp32,
                   random = r.random - r.fp32;
      INFO("seed " << seed << ", budget " << budgets[i] << ": excess loss chord " << chord << ", population "
                   << population << ", q2 energy " << q2 << ", random " << random << "; bits chord "
                   << r.chord_bits_min << ".." << r.chord_bits_max << ", population " << r.population_bits);
      // Same bits: every strategy meets the budget from below, to within one channel's upgrade.
      REQUIRE(r.chord_bits_max <= budgets[i] + 1e-9);
      REQUIRE(r.chord_bits_min >= budgets[i] - granularity);
      REQUIRE(r.population_bits <= budgets[i] + 1e-9);
      REQUIRE(r.population_bits >= budgets[i] - granularity);
      REQUIRE(chord >= 0.0);  // sanity: fp32 is the minimum of this loss
      // Personalized beats user-agnostic: by a wide margin where bits are scarce, at all at 4 bits.
      const double margin = budgets[i] < 4.0 ? 0.25 : 0.0;
      REQUIRE(population - chord > margin * population);
      REQUIRE(q2 - chord > margin * q2);
      REQUIRE(random - chord > 0.5 * random);
      recovered_sum += (population - chord) / population;
      ++cases;
    }
  }
  REQUIRE(recovered_sum / cases >= 0.3);  // on average, well over a third of the agnostic damage removed
}
