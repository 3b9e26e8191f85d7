// chord/nn/dropout.hpp: inverted dropout, seeded.
//
// Training: each element is kept with probability 1 - p and scaled by 1 / (1 - p), so the expected
// output equals the input and evaluation needs no rescaling; evaluation is the identity.
// The keep/drop decisions come from the caller's Rng: give each training sequence its own stream
// (Rng(seed, step * batch + sequence)) and a run is reproducible whatever thread runs what.
// Each decision uses 32 random bits (two per draw): P(drop) = floor(p * 2^32) / 2^32.
// Forward may run in place (x == y); backward adds into dx, which therefore must not alias dy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "chord/core/error.hpp"
#include "chord/nn/random.hpp"

namespace chord::nn {

struct Dropout {
  float p = 0.0f;  // drop probability, in [0, 1)

  explicit Dropout(float drop_probability = 0.0f) : p(drop_probability) {
    CHORD_CHECK(p >= 0.0f && p < 1.0f, "Dropout: probability must be in [0, 1), got ", p);
  }

  bool active(bool training) const { return training && p > 0.0f; }
  float keep_scale() const { return 1.0f / (1.0f - p); }

  // x: [n] -> y: [n], keep: [n] (1 = kept; saved for backward, untouched when inactive)
  void forward(const float* x, float* y, std::uint8_t* keep, std::size_t n, Rng& rng, bool training) const {
    if (!active(training)) {
      if (y != x)
        for (std::size_t i = 0; i < n; ++i) y[i] = x[i];
      return;
    }
    const auto threshold = static_cast<std::uint32_t>(static_cast<double>(p) * 4294967296.0);
    const float scale = keep_scale();
    for (std::size_t i = 0; i < n; i += 2) {
      const std::uint64_t bits = rng.next_u64();
      const bool keep0 = static_cast<std::uint32_t>(bits) >= threshold;
      keep[i] = keep0;
      y[i] = keep0 ? x[i] * scale : 0.0f;
      if (i + 1 < n) {
        const bool keep1 = static_cast<std::uint32_t>(bits >> 32) >= threshold;
        keep[i + 1] = keep1;
        y[i + 1] = keep1 ? x[i + 1] * scale : 0.0f;
      }
    }
  }

  // dy: [n], keep: [n] from forward -> dx: [n] += dy * keep / (1 - p)   (dx += dy when inactive)
  void backward(const float* dy, const std::uint8_t* keep, float* dx, std::size_t n, bool training) const {
    if (!active(training)) {
      for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i];
      return;
    }
    const float scale = keep_scale();
    for (std::size_t i = 0; i < n; ++i) dx[i] += keep[i] ? dy[i] * scale : 0.0f;
  }
};

}  // namespace chord::nn
