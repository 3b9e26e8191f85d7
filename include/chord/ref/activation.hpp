// chord/ref/activation.hpp: reference element-wise ops: ReLU, GELU, residual add.
//
// Element-wise over flat arrays of n floats: a [m, d] tensor is just n = m * d. Every op allows y to
// alias its input (the models apply them in place).
#pragma once

#include <cmath>
#include <cstddef>

namespace chord::ref {

// ReLU: y = max(x, 0). x: [n], y: [n]. NaN stays NaN (a comparison-based max would hide it).
inline float relu(float x) { return std::isnan(x) || x > 0.0f ? x : 0.0f; }
inline void relu(const float* x, std::size_t n, float* y) {
  for (std::size_t j = 0; j < n; ++j) y[j] = relu(x[j]);
}

// GELU, the exact (erf) form, PyTorch's default (approximate='none'):
//   gelu(x) = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))).
// Evaluated as 0.5 * x * erfc(-x / sqrt(2)) in double: the same function, but 1 + erf(x / sqrt 2)
// cancels catastrophically for negative x, while erfc keeps the small tail (x = -6 gives -5.9e-9, not 0).
// Note that GELU is not monotonic: it decreases down to its minimum near x = -0.7518, then increases.
// x: [n], y: [n].
inline float gelu(float x) {
  const double kInvSqrt2 = 0.70710678118654752440;
  const double xd = static_cast<double>(x);
  return static_cast<float>(0.5 * xd * std::erfc(-xd * kInvSqrt2));
}
inline void gelu(const float* x, std::size_t n, float* y) {
  for (std::size_t j = 0; j < n; ++j) y[j] = gelu(x[j]);
}

// Residual connection: y = x + r. x, r, y: [n]; y may alias x or r.
inline void residual_add(const float* x, const float* r, std::size_t n, float* y) {
  for (std::size_t j = 0; j < n; ++j) y[j] = x[j] + r[j];
}

}  // namespace chord::ref
