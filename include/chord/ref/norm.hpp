// chord/ref/norm.hpp: reference row normalizations: layernorm and softmax.
//
// Both reduce a row and rescale it, and both are where fp32 goes wrong first (cancellation in the
// variance, overflow in exp), so the references accumulate in double: the oracle should be closer to
// the exact result than any kernel it judges. Plain loops, one row at a time.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

#include "chord/core/error.hpp"

namespace chord::ref {

// Layer normalization over the last dimension, as torch.nn.LayerNorm:
//   y[i][j] = (x[i][j] - mean_i) / sqrt(var_i + eps) * gamma[j] + beta[j]
// with the biased variance var_i = mean_j (x[i][j] - mean_i)^2 (divide by d, not d - 1).
// x: [m, d], gamma: [d] or null (1), beta: [d] or null (0), y: [m, d]; y may alias x.
// eps > 0 is required: with eps = 0 a constant row would compute 0 / 0.
inline void layernorm(const float* x, std::size_t m, std::size_t d, const float* gamma, const float* beta,
                      float eps, float* y) {
  CHORD_CHECK(d > 0, "layernorm: rows have no elements (d = 0)");
  CHORD_CHECK(eps > 0.0f && std::isfinite(eps), "layernorm: eps must be positive and finite, got ", eps);
  for (std::size_t i = 0; i < m; ++i) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels when
    // the mean is large compared with the spread.
    double mean = 0.0;
    for (std::size_t j = 0; j < d; ++j) mean += xr[j];
    mean /= static_cast<double>(d);
    double var = 0.0;
    for (std::size_t j = 0; j < d; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= static_cast<double>(d);
    const double inv_std = 1.0 / std::sqrt(var + static_cast<double>(eps));
    for (std::size_t j = 0; j < d; ++j) {
      const double z = (xr[j] - mean) * inv_std;
      yr[j] = static_cast<float>(z * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f));
    }
  }
}

// Softmax of one row: y[j] = exp(x[j] - max) / sum_k exp(x[k] - max).
// x: [n], y: [n]; y may alias x.
// Subtracting the row's max keeps every exp in (0, 1], so large logits cannot overflow.
// -infinity means "masked": its weight is exactly 0. A row with no finite entry (n = 0, or every entry
// masked, e.g. a query whose keys are all padding) gives all zeros instead of 0 / 0 = NaN, so one
// empty row cannot poison the rows after it. NaN in gives NaN out.
inline void softmax_row(const float* x, std::size_t n, float* y) {
  float max = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < n; ++j) max = std::fmax(max, x[j]);
  if (max == -std::numeric_limits<float>::infinity()) {
    for (std::size_t j = 0; j < n; ++j) y[j] = 0.0f;
    return;
  }
  // exp is evaluated twice rather than stored, so each output is rounded to fp32 once; x[j] is read
  // before y[j] is written, so in-place use is safe. exp(-inf) = 0: masked entries drop out.
  double sum = 0.0;
  for (std::size_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(x[j]) - max);
  for (std::size_t j = 0; j < n; ++j) y[j] = static_cast<float>(std::exp(static_cast<double>(x[j]) - max) / sum);
}

// Row-wise softmax. x: [m, n], y: [m, n]; y may alias x.
inline void softmax(const float* x, std::size_t m, std::size_t n, float* y) {
  for (std::size_t i = 0; i < m; ++i) softmax_row(x + i * n, n, y + i * n);
}

}  // namespace chord::ref
