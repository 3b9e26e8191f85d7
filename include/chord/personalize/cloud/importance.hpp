// chord/personalize/cloud/importance.hpp: multi-granularity sensitivity -> one importance per channel.
//
// docs/design.md#chord-importance, from the raw outputs of the three hypernetworks (hypernetwork.hpp) for one user:
//   element:  s_ij = softplus(A_i . B_j)                       (>= 0, a user-specific diagonal Hessian)
//             e_i  = sum_j s_ij (w_ij - Q_2(w_ij))^2           reconstructed filter importance
//   filter:   g_i  = softplus(filter_raw_i)
//   layer:    lambda_l = softplus(layer_raw_l)
//   channel importance  c_{l,i} = lambda_l * g_{l,i} * e_{l,i}  (>= 0)
// e_i is the second-order Taylor estimate of the loss increase when channel i is quantized to 2 bits,
// with s as the Hessian's diagonal (the gradient term vanishes at a trained optimum); g and lambda let
// the nets re-weight whole channels and layers where the diagonal model is too crude.
// The rank-r factorization keeps the element net's output at r (channels + fan_in) per layer instead
// of channels * fan_in. s is recomputed in backward (r multiply-adds per weight) rather than stored.
// Sums run in double: e adds up to fan_in small terms and feeds a log in the relaxation.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"

namespace chord::personalize {

inline double softplus_d(double x) { return std::fmax(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }
inline double sigmoid_d(double x) {
  const double e = std::exp(-std::fabs(x));
  return x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

// One user's importances, flat over layers (channel_offset(l) + i), and what backward needs.
struct ImportanceState {
  std::vector<double> e, g, c;   // [total channels]
  std::vector<double> lambda;    // [layers]
  std::vector<float> sigmoid;    // [total weights]: sigmoid(A_i . B_j), layer after layer (0 where d2 = 0)
};

namespace detail {
inline double dot_rank(const float* a, const float* b, std::size_t r) {
  double s = 0.0;
  for (std::size_t t = 0; t < r; ++t) s += double(a[t]) * b[t];
  return s;
}
inline void check_importance_inputs(const Hypernetworks& nets, const QuantizationCache& cache, const char* where) {
  CHORD_CHECK(nets.layers().size() == cache.layer_count(), where, ": the hypernetworks have ", nets.layers().size(),
              " layers, the quantization cache ", cache.layer_count());
  for (std::size_t l = 0; l < cache.layer_count(); ++l)
    CHORD_CHECK(nets.layers()[l].channels == cache.layer(l).channels && nets.layers()[l].fan_in == cache.layer(l).fan_in,
                where, ": layer ", l, " ('", cache.layer(l).name, "') has another shape in the hypernetworks");
}
}  // namespace detail

// ws: the hypernetworks' forward outputs for this user -> st.e, st.g, st.lambda, st.c
inline void importance_forward(const Hypernetworks& nets, const QuantizationCache& cache, const HypernetWorkspace& ws,
                               ImportanceState& st) {
  detail::check_importance_inputs(nets, cache, "importance_forward");
  const std::size_t r = nets.rank(), total = nets.total_channels();
  st.e.assign(total, 0.0), st.g.assign(total, 0.0), st.c.assign(total, 0.0);
  st.lambda.assign(cache.layer_count(), 0.0);
  st.sigmoid.resize(std::size_t(cache.total_weights()));
  std::size_t at = 0;  // first weight of the layer in st.sigmoid
  for (std::size_t l = 0; l < cache.layer_count(); ++l) {
    const QuantizedLayer& layer = cache.layer(l);
    const float* A = ws.element.out.data() + nets.a_offset(l);  // [channels, r]
    const float* B = ws.element.out.data() + nets.b_offset(l);  // [fan_in, r]
    const std::size_t base = nets.channel_offset(l);
    st.lambda[l] = softplus_d(ws.layer.out[l]);
    for (std::size_t i = 0; i < layer.channels; ++i, at += layer.fan_in) {
      const float* d2 = layer.q2_error2.data() + i * layer.fan_in;
      float* sig = st.sigmoid.data() + at;
      double e = 0.0;
      for (std::size_t j = 0; j < layer.fan_in; ++j) {
        sig[j] = 0.0f;
        if (d2[j] == 0.0f) continue;
        const double a = detail::dot_rank(A + i * r, B + j * r, r);
        const double t = std::exp(-std::fabs(a));  // softplus and sigmoid from one exp
        e += (std::fmax(a, 0.0) + std::log1p(t)) * d2[j];
        sig[j] = float(a >= 0.0 ? 1.0 / (1.0 + t) : t / (1.0 + t));
      }
      st.e[base + i] = e;
      st.g[base + i] = softplus_d(ws.filter.out[base + i]);
      st.c[base + i] = st.lambda[l] * st.g[base + i] * e;
    }
  }
}

// dc: [total channels] dL/dc -> ws.element.dout, ws.filter.dout, ws.layer.dout (overwritten), ready for
// Hypernetworks::backward.
inline void importance_backward(const Hypernetworks& nets, const QuantizationCache& cache, const ImportanceState& st,
                                const std::vector<double>& dc, HypernetWorkspace& ws) {
  detail::check_importance_inputs(nets, cache, "importance_backward");
  CHORD_CHECK(dc.size() == nets.total_channels(), "importance_backward: ", dc.size(), " gradients for ",
              nets.total_channels(), " channels");
  CHORD_CHECK(st.sigmoid.size() == std::size_t(cache.total_weights()), "importance_backward: no forward state");
  const std::size_t r = nets.rank();
  std::vector<double> dA, dB;
  std::size_t at = 0;  // first weight of the channel in st.sigmoid
  for (std::size_t l = 0; l < cache.layer_count(); ++l) {
    const QuantizedLayer& layer = cache.layer(l);
    const float* A = ws.element.out.data() + nets.a_offset(l);
    const float* B = ws.element.out.data() + nets.b_offset(l);
    const std::size_t base = nets.channel_offset(l);
    dA.assign(layer.channels * r, 0.0);
    dB.assign(layer.fan_in * r, 0.0);
    double dlambda = 0.0;
    for (std::size_t i = 0; i < layer.channels; ++i, at += layer.fan_in) {
      const double dci = dc[base + i];
      const double de = dci * st.lambda[l] * st.g[base + i];
      const double dg = dci * st.lambda[l] * st.e[base + i];
      dlambda += dci * st.g[base + i] * st.e[base + i];
      ws.filter.dout[base + i] = float(dg * sigmoid_d(ws.filter.out[base + i]));
      if (de == 0.0) continue;
      const float* d2 = layer.q2_error2.data() + i * layer.fan_in;
      const float* sig = st.sigmoid.data() + at;
      for (std::size_t j = 0; j < layer.fan_in; ++j) {
        if (d2[j] == 0.0f) continue;
        const float* a = A + i * r;
        const float* b = B + j * r;
        const double t = de * d2[j] * double(sig[j]);  // dL/d(A_i . B_j)
        for (std::size_t q = 0; q < r; ++q) dA[i * r + q] += t * b[q], dB[j * r + q] += t * a[q];
      }
    }
    ws.layer.dout[l] = float(dlambda * sigmoid_d(ws.layer.out[l]));
    float* dA_out = ws.element.dout.data() + nets.a_offset(l);
    float* dB_out = ws.element.dout.data() + nets.b_offset(l);
    for (std::size_t t = 0; t < dA.size(); ++t) dA_out[t] = float(dA[t]);
    for (std::size_t t = 0; t < dB.size(); ++t) dB_out[t] = float(dB[t]);
  }
}

// A flat [total channels] vector cut into layers: the budget solver's [layer][channel] form.
inline std::vector<std::vector<double>> per_layer(const Hypernetworks& nets, const std::vector<double>& flat) {
  CHORD_CHECK(flat.size() == nets.total_channels(), "per_layer: ", flat.size(), " values for ",
              nets.total_channels(), " channels");
  std::vector<std::vector<double>> out(nets.layers().size());
  for (std::size_t l = 0; l < out.size(); ++l) {
    const auto first = flat.begin() + std::ptrdiff_t(nets.channel_offset(l));
    out[l].assign(first, first + nets.layers()[l].channels);
  }
  return out;
}

// The whole cloud-side forward for one profile: u -> importance [layer][channel].
inline std::vector<std::vector<double>> channel_importance(const Hypernetworks& nets, const QuantizationCache& cache,
                                                           const float* u) {
  HypernetWorkspace ws;
  nets.forward(u, ws);
  ImportanceState st;
  importance_forward(nets, cache, ws, st);
  return per_layer(nets, st.c);
}

}  // namespace chord::personalize
