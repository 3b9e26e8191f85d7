// chord/nn/elementwise.hpp: ReLU, GELU and the residual add, forward and backward.
//
// All shapes are flat [n] (any tensor, element by element). Backward adds into dx (see linear.hpp).
// GELU is the exact erf form, x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's default nn.GELU
// and the ref op (not the tanh approximation), evaluated like the ref op as 0.5 x erfc(-x / sqrt 2):
// 1 + erf(.) cancels for negative x, erfc keeps the small tail.
// ReLU passes NaN through (as the ref op): a diverging run shows NaN instead of silent zeros.
#pragma once

#include <cmath>
#include <cstddef>

namespace chord::nn {

// x: [n] -> y: [n] = max(x, 0)   (in place allowed)
inline void relu_forward(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = (x[i] > 0.0f || std::isnan(x[i])) ? x[i] : 0.0f;
}
// x: [n] (forward input; the output works too: same sign), dy: [n] -> dx: [n] += dy * [x > 0]
// The subgradient at 0 is 0, as in PyTorch.
inline void relu_backward(const float* x, const float* dy, float* dx, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

// x: [n] -> y: [n] = x Phi(x), Phi the standard normal CDF   (in place allowed)
inline void gelu_forward(const float* x, float* y, std::size_t n) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  for (std::size_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * std::erfc(-x[i] * kInvSqrt2);
}
// x: [n] (forward input), dy: [n] -> dx: [n] += dy * (Phi(x) + x phi(x))
inline void gelu_backward(const float* x, const float* dy, float* dx, std::size_t n) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  constexpr float kInvSqrt2Pi = 0.39894228040143268f;
  for (std::size_t i = 0; i < n; ++i) {
    const float cdf = 0.5f * std::erfc(-x[i] * kInvSqrt2);
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x[i] * x[i]);
    dx[i] += dy[i] * (cdf + x[i] * pdf);
  }
}

// a: [n], b: [n] -> y: [n] = a + b   (y may alias a or b)
inline void residual_forward(const float* a, const float* b, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
// dy: [n] -> da: [n] += dy, db: [n] += dy   (null: skipped)
inline void residual_backward(const float* dy, float* da, float* db, std::size_t n) {
  if (da != nullptr)
    for (std::size_t i = 0; i < n; ++i) da[i] += dy[i];
  if (db != nullptr)
    for (std::size_t i = 0; i < n; ++i) db[i] += dy[i];
}

}  // namespace chord::nn
