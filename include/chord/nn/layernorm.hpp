// chord/nn/layernorm.hpp: layer normalization over the last dimension (PyTorch nn.LayerNorm).
//
//   mean = sum_j x_j / d,  var = sum_j (x_j - mean)^2 / d  (biased, as PyTorch and the ref op),
//   rstd = 1 / sqrt(var + eps),  xhat = (x - mean) * rstd,  y = xhat * gamma + beta.
// Two passes (mean, then centred squares) rather than E[x^2] - E[x]^2, which cancels badly when
// |mean| >> std. Forward saves mean and rstd per row; backward recomputes xhat from x.
// eps: PyTorch's default is 1e-5; the SASRec reference uses 1e-8 (a model chooses).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "chord/nn/init.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {

// x: [m, d], gamma: [d], beta: [d]  ->  y: [m, d], mean: [m], rstd: [m] (saved for backward)
inline void layernorm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean,
                              float* rstd, std::size_t m, std::size_t d, float eps) {
  for (std::size_t i = 0; i < m; ++i) {
    const float* xi = x + i * d;
    float sum = 0.0f;
    for (std::size_t j = 0; j < d; ++j) sum += xi[j];
    const float mu = sum / static_cast<float>(d);
    float squares = 0.0f;
    for (std::size_t j = 0; j < d; ++j) squares += (xi[j] - mu) * (xi[j] - mu);
    const float r = 1.0f / std::sqrt(squares / static_cast<float>(d) + eps);
    float* yi = y + i * d;
    for (std::size_t j = 0; j < d; ++j) yi[j] = (xi[j] - mu) * r * gamma[j] + beta[j];
    mean[i] = mu;
    rstd[i] = r;
  }
}

// dy: [m, d], x: [m, d], gamma: [d], mean/rstd: [m] from forward
//   dx: [m, d] += rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)),  g = dy * gamma
//   dgamma: [d] += sum_i dy * xhat,   dbeta: [d] += sum_i dy        (null: skipped)
inline void layernorm_backward(const float* dy, const float* x, const float* gamma, const float* mean,
                               const float* rstd, float* dx, float* dgamma, float* dbeta, std::size_t m,
                               std::size_t d) {
  for (std::size_t i = 0; i < m; ++i) {
    const float* xi = x + i * d;
    const float* dyi = dy + i * d;
    const float mu = mean[i], r = rstd[i];
    float mean_g = 0.0f, mean_g_xhat = 0.0f;
    for (std::size_t j = 0; j < d; ++j) {
      const float xhat = (xi[j] - mu) * r;
      const float g = dyi[j] * gamma[j];
      mean_g += g;
      mean_g_xhat += g * xhat;
      if (dgamma != nullptr) dgamma[j] += dyi[j] * xhat;
      if (dbeta != nullptr) dbeta[j] += dyi[j];
    }
    mean_g /= static_cast<float>(d);
    mean_g_xhat /= static_cast<float>(d);
    if (dx == nullptr) continue;
    float* dxi = dx + i * d;
    for (std::size_t j = 0; j < d; ++j) {
      const float xhat = (xi[j] - mu) * r;
      dxi[j] += r * (dyi[j] * gamma[j] - mean_g - xhat * mean_g_xhat);
    }
  }
}

// "<name>.weight" (gamma) [d] and "<name>.bias" (beta) [d], PyTorch's names; no weight decay.
struct LayerNorm {
  std::size_t d = 0;
  float eps = 1e-5f;
  ParamId gamma = 0, beta = 0;

  static LayerNorm create(Parameters& p, const std::string& name, std::size_t d, float eps = 1e-5f) {
    CHORD_CHECK(d > 0, "LayerNorm '", name, "': zero dimension");
    CHORD_CHECK(eps > 0.0f, "LayerNorm '", name, "': eps must be positive, got ", eps);
    LayerNorm ln;
    ln.d = d, ln.eps = eps;
    ln.gamma = p.add(name + ".weight", {d}, /*weight_decay=*/false);
    ln.beta = p.add(name + ".bias", {d}, /*weight_decay=*/false);
    return ln;
  }
  void init(Parameters& p) const {
    fill_constant(p.value(gamma), d, 1.0f);
    fill_constant(p.value(beta), d, 0.0f);
  }

  // x: [m, d] -> y: [m, d]; mean, rstd: [m] saved
  void forward(const Parameters& p, const float* x, float* y, float* mean, float* rstd, std::size_t m) const {
    layernorm_forward(x, p.value(gamma), p.value(beta), y, mean, rstd, m, d, eps);
  }
  // dy: [m, d] -> dx: [m, d] +=; g += dgamma, dbeta
  void backward(const Parameters& p, GradientBuffer& g, const float* x, const float* mean, const float* rstd,
                const float* dy, float* dx, std::size_t m) const {
    layernorm_backward(dy, x, p.value(gamma), mean, rstd, dx, g.of(gamma), g.of(beta), m, d);
  }
};

}  // namespace chord::nn
