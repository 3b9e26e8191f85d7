// chord/nn/init.hpp: deterministic parameter initialization, with PyTorch's formulas.
//
// Same seed -> same model on every platform (Rng is ours, not <random>'s). The formulas are
// PyTorch's so a model trained here starts like its PyTorch twin (not with the same numbers):
//   nn.Linear:      weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))  (kaiming_uniform, a = sqrt(5))
//   nn.Embedding:   N(0, 1)
//   nn.LayerNorm:   gamma = 1, beta = 0
//   xavier_uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
//   xavier_normal:  N(0, s),  s = gain * sqrt(2 / (fan_in + fan_out))   (what the SASRec reference uses)
// Fans follow torch.nn.init: fan_in = shape[1] * receptive, fan_out = shape[0] * receptive, with
// receptive the product of shape[2:]; tensors with fewer than 2 dimensions have no fans.
#pragma once

#include <cmath>
#include <cstddef>

#include "chord/core/error.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/nn/random.hpp"

namespace chord::nn {

inline void fill_constant(float* v, std::size_t n, float value) {
  for (std::size_t i = 0; i < n; ++i) v[i] = value;
}
inline void fill_uniform(float* v, std::size_t n, float lo, float hi, Rng& rng) {
  for (std::size_t i = 0; i < n; ++i) v[i] = rng.uniform(lo, hi);
}
inline void fill_normal(float* v, std::size_t n, float mean, float stddev, Rng& rng) {
  for (std::size_t i = 0; i < n; ++i) v[i] = rng.normal(mean, stddev);
}

struct Fans {
  std::size_t in = 0, out = 0;
};

inline Fans fans_of(const ParamInfo& info) {
  CHORD_CHECK(info.shape.size() >= 2, "init: parameter '", info.name, "' has ", info.shape.size(),
              " dimension(s); fan-in/fan-out need at least 2");
  std::size_t receptive = 1;
  for (std::size_t i = 2; i < info.shape.size(); ++i) receptive *= info.shape[i];
  return {info.shape[1] * receptive, info.shape[0] * receptive};
}

inline void xavier_uniform(float* v, std::size_t n, Fans fans, Rng& rng, float gain = 1.0f) {
  const float a = gain * std::sqrt(6.0f / static_cast<float>(fans.in + fans.out));
  fill_uniform(v, n, -a, a, rng);
}
inline void xavier_normal(float* v, std::size_t n, Fans fans, Rng& rng, float gain = 1.0f) {
  fill_normal(v, n, 0.0f, gain * std::sqrt(2.0f / static_cast<float>(fans.in + fans.out)), rng);
}

// Registry forms: fans from the registered shape.
inline void xavier_uniform(Parameters& p, ParamId id, Rng& rng, float gain = 1.0f) {
  xavier_uniform(p.value(id), p.info(id).size, fans_of(p.info(id)), rng, gain);
}
inline void xavier_normal(Parameters& p, ParamId id, Rng& rng, float gain = 1.0f) {
  xavier_normal(p.value(id), p.info(id).size, fans_of(p.info(id)), rng, gain);
}

// nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for a weight [out, in] and its bias [out].
inline void pytorch_linear_init(float* weight, float* bias, std::size_t in, std::size_t out, Rng& rng) {
  const float bound = in > 0 ? 1.0f / std::sqrt(static_cast<float>(in)) : 0.0f;
  fill_uniform(weight, out * in, -bound, bound, rng);
  if (bias != nullptr) fill_uniform(bias, out, -bound, bound, rng);
}

}  // namespace chord::nn
