// tests/quantizer_reference.hpp: the channel quantizer as it was before its fast path (commit 518e3a4
// of include/chord/core/quantizer.hpp, verbatim but for the names): the oracle that test_quantizer
// compares chord::quantize_channel with, code for code and scale bit for bit. Slow on purpose: every
// candidate clip divides, rounds with std::nearbyint and sums its squared error in one sequential chain.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/precision.hpp"
#include "chord/core/quantizer.hpp"

namespace chord::test {

namespace reference_detail {

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

}  // namespace reference_detail

// Quantizes one channel of n weights to `bits` (0, 2, 4 or 8). Writes n codes; returns the scale.
// bits = 0, an all-zero channel, or a scale that underflows fp32 give codes 0 and scale 0.
// Throws chord::Error on a non-finite weight (a NaN in a model is a bug upstream, not data).
inline float reference_quantize_channel(const float* w, std::size_t n, int bits, std::int8_t* codes,
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
  double best_error = reference_detail::round_channel(w, n, bits, best_scale, nullptr);
  const int steps = search.steps < 1 ? 1 : search.steps;
  for (int i = 1; i < steps; ++i) {  // i = 0 is alpha = 1, done above
    const double alpha = 1.0 - (1.0 - search.min_ratio) * i / (steps - 1);
    const double error = reference_detail::round_channel(w, n, bits, alpha * max_abs_scale, nullptr);
    if (error < best_error) best_error = error, best_scale = alpha * max_abs_scale;
  }
  std::vector<std::int8_t> trial(n);
  for (int r = 0; r < search.refinements; ++r) {
    reference_detail::round_channel(w, n, bits, best_scale, trial.data());
    double wq = 0.0, qq = 0.0;
    for (std::size_t j = 0; j < n; ++j) wq += static_cast<double>(w[j]) * trial[j], qq += double(trial[j]) * trial[j];
    if (qq == 0.0 || wq <= 0.0) break;
    const double scale = wq / qq;
    const double error = reference_detail::round_channel(w, n, bits, scale, nullptr);
    if (!(error < best_error)) break;
    best_error = error, best_scale = scale;
  }

  // The codes must be the rounding for the fp32 scale actually stored, not the double one.
  const float scale = static_cast<float>(best_scale);
  if (!(scale > 0.0f) || !std::isfinite(scale)) return zero();
  reference_detail::round_channel(w, n, bits, static_cast<double>(scale), codes);
  return scale;
}

}  // namespace chord::test
