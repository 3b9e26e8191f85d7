// chord/core/quantizer.hpp: per-output-channel symmetric quantization with a clip search.
//
// One channel (a row of a linear layer's weight, one convolution filter, one embedding row) of n
// weights w gets one fp32 scale s and signed codes q_j = clamp(round(w_j / s), code_min, code_max).
// Its dequantized ("fake-quantized") value is float(q_j) * s: the packed kernels and the training graph
// use this very function, so the integer weights and their fp32 image never disagree.
//
// Clip search (DESIGN section 3): max-abs scaling (s = max|w| / code_max) wastes levels on outliers.
// We try scales s = alpha * max|w| / code_max for `steps` values of alpha evenly spaced in
// [min_ratio, 1], keep the one with the least squared error, then refine it with Lloyd steps
// (best scale for fixed codes, s = <w, q> / <q, q>; then re-round). alpha = 1 is always a candidate and
// every step keeps the best scale seen, so the result is never worse than max-abs scaling.
// Sums run in double so that huge weights (1e38) and denormals neither overflow nor vanish.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/precision.hpp"

namespace chord {

struct ClipSearch {
  int steps = 32;           // grid points for alpha in [min_ratio, 1]; 1 means max-abs scaling only
  double min_ratio = 0.25;  // smallest clip ratio tried
  int refinements = 2;      // Lloyd steps after the grid
};

namespace detail {

// Codes of w for scale s (s > 0), written to `codes` when not null; returns the squared error.
inline double round_channel(const float* w, std::size_t n, int bits, double s, std::int8_t* codes) {
  // Codes whose dequantized value q * s would overflow fp32 are excluded (only matters near 3e38).
  const double limit = std::floor(static_cast<double>(std::numeric_limits<float>::max()) / s);
  const double lo = std::fmax(code_min(bits), -limit), hi = std::fmin(code_max(bits), limit);
  double error = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double q = std::fmin(hi, std::fmax(lo, std::nearbyint(static_cast<double>(w[j]) / s)));
    const double e = static_cast<double>(w[j]) - q * s;
    error += e * e;
    if (codes != nullptr) codes[j] = static_cast<std::int8_t>(q);
  }
  return error;
}

}  // namespace detail

// Quantizes one channel of n weights to `bits` (0, 2, 4 or 8). Writes n codes; returns the scale.
// bits = 0, an all-zero channel, or a scale that underflows fp32 give codes 0 and scale 0.
// Throws chord::Error on a non-finite weight (a NaN in a model is a bug upstream, not data).
inline float quantize_channel(const float* w, std::size_t n, int bits, std::int8_t* codes,
                              const ClipSearch& search = {}) {
  check_weight_bits(bits, "quantize_channel");
  double max_abs = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    CHORD_CHECK(std::isfinite(w[j]), "quantize_channel: weight ", j, " is not finite (", w[j], ")");
    max_abs = std::fmax(max_abs, std::fabs(static_cast<double>(w[j])));
  }
  const auto zero = [&] {
    for (std::size_t j = 0; j < n; ++j) codes[j] = 0;
    return 0.0f;
  };
  if (bits == 0 || max_abs == 0.0) return zero();

  const double max_abs_scale = max_abs / code_max(bits);
  double best_scale = max_abs_scale;
  double best_error = detail::round_channel(w, n, bits, best_scale, nullptr);
  const int steps = search.steps < 1 ? 1 : search.steps;
  for (int i = 1; i < steps; ++i) {  // i = 0 is alpha = 1, done above
    const double alpha = 1.0 - (1.0 - search.min_ratio) * i / (steps - 1);
    const double error = detail::round_channel(w, n, bits, alpha * max_abs_scale, nullptr);
    if (error < best_error) best_error = error, best_scale = alpha * max_abs_scale;
  }
  std::vector<std::int8_t> trial(n);
  for (int r = 0; r < search.refinements; ++r) {
    detail::round_channel(w, n, bits, best_scale, trial.data());
    double wq = 0.0, qq = 0.0;
    for (std::size_t j = 0; j < n; ++j) wq += static_cast<double>(w[j]) * trial[j], qq += double(trial[j]) * trial[j];
    if (qq == 0.0 || wq <= 0.0) break;
    const double scale = wq / qq;
    const double error = detail::round_channel(w, n, bits, scale, nullptr);
    if (!(error < best_error)) break;
    best_error = error, best_scale = scale;
  }

  // The codes must be the rounding for the fp32 scale actually stored, not the double one.
  const float scale = static_cast<float>(best_scale);
  if (!(scale > 0.0f) || !std::isfinite(scale)) return zero();
  detail::round_channel(w, n, bits, static_cast<double>(scale), codes);
  return scale;
}

// The dequantized value of a code: what every kernel multiplies by.
inline float dequantize(std::int8_t code, float scale) { return static_cast<float>(code) * scale; }

// A matrix of n channels x k weights quantized channel by channel, each to its own width.
struct QuantizedChannels {
  std::size_t n = 0, k = 0;
  std::vector<std::int8_t> codes;  // [n, k] row-major
  std::vector<float> scales;       // [n]
  std::vector<std::uint8_t> bits;  // [n], each in {0, 2, 4, 8}
};

// w: [n, k] row-major fp32; bits: [n]. Each row gets its own clip search.
inline QuantizedChannels quantize_channels(const float* w, std::size_t n, std::size_t k,
                                           const std::uint8_t* bits, const ClipSearch& search = {}) {
  QuantizedChannels q;
  q.n = n, q.k = k;
  q.codes.resize(n * k);
  q.scales.resize(n);
  q.bits.assign(bits, bits + n);
  for (std::size_t i = 0; i < n; ++i) {
    CHORD_CHECK(is_weight_bits(bits[i]), "quantize_channels: channel ", i, " has bit-width ", int(bits[i]),
                ", expected 0, 2, 4 or 8");
    q.scales[i] = quantize_channel(w + i * k, k, bits[i], q.codes.data() + i * k, search);
  }
  return q;
}

// The fake-quantized fp32 image of quantized channels: [n, k], out[i][j] = codes[i][j] * scales[i].
inline std::vector<float> fake_quantized(const QuantizedChannels& q) {
  std::vector<float> out(q.n * q.k);
  for (std::size_t i = 0; i < q.n; ++i)
    for (std::size_t j = 0; j < q.k; ++j) out[i * q.k + j] = dequantize(q.codes[i * q.k + j], q.scales[i]);
  return out;
}

}  // namespace chord
