// chord/personalize/training/relaxation.hpp: the differentiable level assignment used to train the hypernetworks.
//
// The budget solver (budget_solver.hpp) is a discrete greedy: no gradient flows through it. In training
// (docs/design.md#chord-training, backbone frozen) each channel c instead draws its level from a distribution
// driven by its importance, relaxed with Gumbel-softmax, and shaped like the solver's own choice:
//   x_c     = log(c_c / fan_in_c + 1e-30) - mean over ALL personalized channels   (per-weight importance,
//             centred: like the solver, the assignment ignores a common scale of the importances)
//   a_c     = exp(x_c + log_rate(B))          the predicted loss of channel c at 2 bits, per weight, in bits
//   cost    = a_c r_c(k) + palette[k]         k = level 0..3; r_c the channel's solver curve (cloud/quantization_cache.hpp:
//             its squared error at that width over its 2-bit error, so a_c r_c(k) is the predicted loss)
//   z_{c,k} = -sharpness * cost_{c,k}
//   y_c     = softmax((z_c + G_c) / tau)      G_{c,k} ~ Gumbel(0, 1), seeded
//   pi_c    = y_c (default), or one_hot(argmax_k y_{c,k}) in the forward pass and y_c in the backward pass
//             (straight-through, RelaxationOptions::straight_through)
//   W_eff_c = sum_k pi_{c,k} Q_{palette[k]}(W_c)   the precomputed rows (cloud/quantization_cache.hpp); Q_0 = 0
//   loss    = L_rec(W_eff) + mu (E[bits] - B)^2,   E[bits] = sum_c fan_in_c sum_k p_{c,k} palette[k] / sum_c fan_in_c
// Why this cost: the solver minimizes sum_c c_c r_c(k_c) subject to the budget; its greedy reaches the
// Lagrangian optimum, which picks per channel the k minimizing c_c r_c(k) + lambda fan_in_c palette[k],
// i.e. (after dividing by lambda fan_in_c) exactly argmin_k cost_{c,k} with exp(log_rate) = 1 / lambda.
// So the noise-free argmax of the relaxation IS the solver's strategy for some budget, and the
// importances the nets learn here are calibrated for the solver that uses them at inference: their
// ratios, not only their order, mean predicted loss. A larger importance raises the cost of the low
// levels most (r_c is non-increasing), so a more important channel leans to higher levels.
// The learned coefficients (hypernetwork.hpp): sharpness > 0, and log_rate(B) = rate0 + rate1 B, the
// exchange rate between loss and bits at budget B, which the penalty trains: budgets are sampled per
// user ({2, 3, 4, 6} bits), so one set of nets serves every device class.
// p_c = softmax(z_c): by the Gumbel-max property the hard sample's level IS distributed as p_c, so E[bits]
// is the exact expected average bits of the sampled assignment, noise-free and smooth (the penalty needs
// no straight-through). The rec loss's gradient dL/dW_eff comes from the backbone's own backward pass;
// the chain rule here takes it to pi (dL/dpi_{c,k} = <dL/dW_eff_c, Q_k(W_c)>), to z, to the coefficients
// and to the importances c (importance.hpp takes it further).
#pragma once
#define CHORD_TRAINING_CODE 1  // training-only code: tests/device_only.cpp refuses to compile with it

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"

namespace chord::personalize {

struct RelaxationOptions {
  double tau = 1.0;                    // Gumbel-softmax temperature (> 0)
  double mu = 1.0;                     // weight of the budget penalty
  // false (default): the forward pass uses the soft sample y, W_eff a mixture of the levels' rows;
  // true: the one-hot of the hard sample (straight-through: hard forward, soft backward), as docs/design.md#chord-training
  // words it. Soft is the default because it trains markedly better strategies; docs/chord.md has the
  // measurements and the reason (the gradient at a hard point is first-order in the loss change of a
  // level switch, blind to the curvature that makes coarse levels costly near a good model).
  bool straight_through = false;
  Palette palette = kStandardPalette;  // level -> bit-width in training
};

// One user's relaxed assignment: what forward computed and backward reuses. Flat channel index as in
// Hypernetworks::channel_offset.
struct RelaxationState {
  using Levels = std::array<double, kLevels>;
  double budget = 0.0;
  RelaxationCoefficients coef;
  std::vector<double> x, a;         // [C] centred log per-weight importance, exp(x + log_rate)
  std::vector<Levels> cost;         // [C] a r(k) + palette[k]
  std::vector<Levels> y, p, pi;     // [C] soft sample, level distribution softmax(z), what forward used
  std::vector<std::uint8_t> level;  // [C] the hard sample argmax(z + G)
  double expected_bits = 0.0;       // under p (the penalty's)
  double sampled_bits = 0.0;        // of the hard sample
  double penalty = 0.0;             // mu (expected_bits - budget)^2
  std::vector<std::vector<float>> w_eff;  // [layers][channels * fan_in]
};

namespace detail {
inline void softmax_levels(const std::array<double, kLevels>& z, std::array<double, kLevels>& out) {
  double top = z[0];
  for (int k = 1; k < kLevels; ++k) top = std::fmax(top, z[k]);
  double sum = 0.0;
  for (int k = 0; k < kLevels; ++k) sum += out[k] = std::exp(z[k] - top);
  for (int k = 0; k < kLevels; ++k) out[k] /= sum;
}
// A standard Gumbel draw: -log(-log U), U uniform in (0, 1) (the half step keeps U off 0).
inline double gumbel(nn::Rng& rng) {
  const double u = double(rng.uniform()) + 0x1.0p-25;
  return -std::log(-std::log(u));
}
inline constexpr double kLogFloor = 1e-30;  // keeps log(0) out of a channel whose importance is 0
}  // namespace detail

// c: [C] importances (>= 0) of one user; budget: bits per weight; noise: this user's Gumbel stream.
inline void relaxation_forward(const Hypernetworks& nets, const QuantizationCache& cache, const std::vector<double>& c,
                               double budget, const RelaxationOptions& opt, nn::Rng& noise, RelaxationState& st) {
  const std::size_t C = nets.total_channels();
  CHORD_CHECK(c.size() == C, "relaxation_forward: ", c.size(), " importances for ", C, " channels");
  CHORD_CHECK(opt.tau > 0.0 && std::isfinite(opt.tau), "relaxation_forward: temperature ", opt.tau, " must be > 0");
  CHORD_CHECK(std::isfinite(budget) && budget >= 0.0 && budget <= 8.0, "relaxation_forward: budget ", budget,
              " is not in [0, 8]");
  check_palette(opt.palette, "relaxation_forward");
  st.budget = budget;
  st.coef = nets.relaxation();
  st.x.resize(C), st.a.resize(C), st.cost.resize(C), st.y.resize(C), st.p.resize(C), st.pi.resize(C);
  st.level.resize(C);
  double mean = 0.0;
  for (std::size_t l = 0; l < cache.layer_count(); ++l)
    for (std::size_t i = 0; i < cache.layer(l).channels; ++i) {
      const std::size_t ch = nets.channel_offset(l) + i;
      CHORD_CHECK(std::isfinite(c[ch]) && c[ch] >= 0.0, "relaxation_forward: importance of channel ", i,
                  " of layer '", cache.layer(l).name, "' is ", c[ch]);
      st.x[ch] = std::log(c[ch] / double(cache.layer(l).fan_in) + detail::kLogFloor);
      mean += st.x[ch];
    }
  mean /= double(C);

  const auto curves = cache.level_errors(opt.palette);
  const double log_rate = st.coef.log_rate(budget);
  st.w_eff.resize(cache.layer_count());
  double expected = 0.0, sampled = 0.0;
  const double weights = cache.total_weights();
  for (std::size_t l = 0; l < cache.layer_count(); ++l) {
    const QuantizedLayer& layer = cache.layer(l);
    st.w_eff[l].assign(layer.channels * layer.fan_in, 0.0f);
    for (std::size_t i = 0; i < layer.channels; ++i) {
      const std::size_t ch = nets.channel_offset(l) + i;
      st.x[ch] -= mean;
      st.a[ch] = std::exp(st.x[ch] + log_rate);
      RelaxationState::Levels z{}, noisy{};
      int best = 0;
      for (int k = 0; k < kLevels; ++k) {
        st.cost[ch][k] = st.a[ch] * curves[l][i][k] + opt.palette[k];
        z[k] = -st.coef.sharpness * st.cost[ch][k];
        noisy[k] = (z[k] + detail::gumbel(noise)) / opt.tau;
        if (noisy[k] > noisy[best]) best = k;
      }
      detail::softmax_levels(z, st.p[ch]);
      detail::softmax_levels(noisy, st.y[ch]);
      st.level[ch] = std::uint8_t(best);
      for (int k = 0; k < kLevels; ++k)
        st.pi[ch][k] = opt.straight_through ? (k == best ? 1.0 : 0.0) : st.y[ch][k];
      float* out = st.w_eff[l].data() + i * layer.fan_in;
      for (int k = 0; k < kLevels; ++k) {
        const float* q = layer.row(opt.palette[k], i);
        const float w = float(st.pi[ch][k]);
        if (q == nullptr || w == 0.0f) continue;
        for (std::size_t j = 0; j < layer.fan_in; ++j) out[j] += w * q[j];
      }
      for (int k = 0; k < kLevels; ++k) expected += double(layer.fan_in) * st.p[ch][k] * opt.palette[k];
      sampled += double(layer.fan_in) * opt.palette[best];
    }
  }
  st.expected_bits = expected / weights;
  st.sampled_bits = sampled / weights;
  st.penalty = opt.mu * (st.expected_bits - budget) * (st.expected_bits - budget);
}

// c: the importances forward saw; dw_eff: [layers][channels * fan_in] dL_rec/dW_eff from the backbone;
// scale: the weight of this user's loss (rec + penalty) in the batch objective (1 / users per step).
//   -> dc: [C] dL/dc (overwritten), g += dL/d relaxation parameters
inline void relaxation_backward(const Hypernetworks& nets, const QuantizationCache& cache, const RelaxationOptions& opt,
                                const std::vector<double>& c, const RelaxationState& st,
                                const std::vector<std::vector<float>>& dw_eff, double scale, std::vector<double>& dc,
                                nn::GradientBuffer& g) {
  const std::size_t C = nets.total_channels();
  CHORD_CHECK(dw_eff.size() == cache.layer_count(), "relaxation_backward: ", dw_eff.size(),
              " weight gradients for ", cache.layer_count(), " layers");
  const double weights = cache.total_weights();
  const double d_expected = scale * 2.0 * opt.mu * (st.expected_bits - st.budget);
  const auto curves = cache.level_errors(opt.palette);
  RelaxationCoefficients dcoef;
  dcoef.sharpness = 0.0;
  double d_log_rate = 0.0;
  std::vector<double> dx(C, 0.0);
  for (std::size_t l = 0; l < cache.layer_count(); ++l) {
    const QuantizedLayer& layer = cache.layer(l);
    CHORD_CHECK(dw_eff[l].size() == layer.channels * layer.fan_in, "relaxation_backward: layer '", layer.name,
                "' has ", dw_eff[l].size(), " weight gradients for ", layer.channels * layer.fan_in, " weights");
    for (std::size_t i = 0; i < layer.channels; ++i) {
      const std::size_t ch = nets.channel_offset(l) + i;
      const float* dw = dw_eff[l].data() + i * layer.fan_in;
      RelaxationState::Levels dpi{}, dp{}, dz{};
      for (int k = 0; k < kLevels; ++k) {
        const float* q = layer.row(opt.palette[k], i);
        double s = 0.0;
        if (q != nullptr)
          for (std::size_t j = 0; j < layer.fan_in; ++j) s += double(dw[j]) * q[j];
        dpi[k] = scale * s;
        dp[k] = d_expected * double(layer.fan_in) * opt.palette[k] / weights;
      }
      // Softmax backward, twice: the sample y (temperature tau) carries the rec loss, p carries the penalty.
      double y_dot = 0.0, p_dot = 0.0;
      for (int k = 0; k < kLevels; ++k) y_dot += st.y[ch][k] * dpi[k], p_dot += st.p[ch][k] * dp[k];
      double da = 0.0;
      for (int k = 0; k < kLevels; ++k) {
        dz[k] = st.y[ch][k] * (dpi[k] - y_dot) / opt.tau + st.p[ch][k] * (dp[k] - p_dot);
        dcoef.sharpness -= dz[k] * st.cost[ch][k];             // z = -sharpness * cost
        da -= dz[k] * st.coef.sharpness * curves[l][i][k];     // cost = a r(k) + palette[k]
      }
      dx[ch] = da * st.a[ch];  // a = exp(x + log_rate)
      d_log_rate += da * st.a[ch];
    }
  }
  dcoef.rate0 = d_log_rate;
  dcoef.rate1 = d_log_rate * st.budget;
  nets.relaxation_backward(dcoef, g);
  // Through the centring (x_c - mean) and the log of the per-weight importance.
  double dx_mean = 0.0;
  for (double v : dx) dx_mean += v;
  dx_mean /= double(C);
  dc.assign(C, 0.0);
  for (std::size_t l = 0; l < cache.layer_count(); ++l)
    for (std::size_t i = 0; i < cache.layer(l).channels; ++i) {
      const std::size_t ch = nets.channel_offset(l) + i;
      const double fan_in = double(cache.layer(l).fan_in);
      dc[ch] = (dx[ch] - dx_mean) / (c[ch] + detail::kLogFloor * fan_in);
    }
}

}  // namespace chord::personalize
