// chord/backends/scalar/rowops.hpp: the portable row kernels (quantize_rows, layernorm, softmax, ReLU,
// GELU, residual add) of the `Isa::scalar` table: see the Fn types in chord/ops/kernel_table.hpp.
//
// They compute what the SIMD kernels compute, in the same order where it matters (fp32 two-pass
// layernorm, fp32 exp and sum for softmax, the GELU scheme of backends/shared/gelu_polynomial.hpp), one element at a
// time: the readable template for a new ISA and the fallback on CPUs without one. The oracle stays
// ref/ (double accumulations, exact erfc), which the tests compare against within derived bounds.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "chord/ops/kernel_table.hpp"
#include "chord/backends/shared/gelu_polynomial.hpp"

namespace chord::backends::scalar {

// quantize_rows' passes, one value at a time: the shared driver's tails from the row's start.
struct QuantizeRowsPolicy {
  static std::int32_t max_magnitude_bits(const float* x, std::size_t k);
  static std::int32_t quantize_row(const float* x, std::size_t k, float inv, std::int8_t* codes, std::size_t stride);
};

#define CHORD_QUANTIZE_ATTR
#include "chord/backends/shared/quantize_rows_driver-inl.hpp"
#undef CHORD_QUANTIZE_ATTR

inline std::int32_t QuantizeRowsPolicy::max_magnitude_bits(const float* x, std::size_t k) {
  return tail_max_magnitude_bits<QuantizeRowsPolicy>(x, 0, k, 0);
}
inline std::int32_t QuantizeRowsPolicy::quantize_row(const float* x, std::size_t k, float inv, std::int8_t* codes,
                                                     std::size_t stride) {
  return quantize_tail<QuantizeRowsPolicy>(x, 0, k, inv, codes, stride);
}

// See QuantizeRowsFn: core/quantize_rows.hpp's steps, without the exception (a non-finite value is
// reported by returning its row).
inline std::size_t quantize_rows(const float* x, std::size_t ldx, std::size_t m, std::size_t k, std::int8_t* codes,
                                 std::size_t stride, float* scales, std::int32_t* sums) {
  return quantize_rows_driver<QuantizeRowsPolicy>(x, ldx, m, k, codes, stride, scales, sums);
}

// See LayerNormFn. fp32, two passes (mean, then squared deviations), as the SIMD kernels.
inline void layernorm(const float* x, std::size_t m, std::size_t d, const float* gamma, const float* beta, float eps,
                      float* y) {
  for (std::size_t i = 0; i < m; ++i) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    float sum = 0.0f;
    for (std::size_t j = 0; j < d; ++j) sum += xr[j];
    const float mean = sum / static_cast<float>(d);
    float squares = 0.0f;
    for (std::size_t j = 0; j < d; ++j) squares += (xr[j] - mean) * (xr[j] - mean);
    const float inv_std = 1.0f / std::sqrt(squares / static_cast<float>(d) + eps);
    for (std::size_t j = 0; j < d; ++j) {
      const float z = (xr[j] - mean) * inv_std;
      yr[j] = z * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
    }
  }
}

// One row of softmax over n entries, in place allowed: weights exp(x - max) / sum (fp32), -inf -> 0,
// no finite entry -> zeros; otherwise a NaN makes every weight NaN (through the sum), as in ref/.
inline void softmax_row(const float* x, std::size_t n, float* y) {
  float max = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < n; ++j) max = std::fmax(max, x[j]);
  if (max == -std::numeric_limits<float>::infinity()) {
    for (std::size_t j = 0; j < n; ++j) y[j] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (std::size_t j = 0; j < n; ++j) {
    y[j] = std::exp(x[j] - max);
    sum += y[j];
  }
  const float inv = 1.0f / sum;
  for (std::size_t j = 0; j < n; ++j) y[j] *= inv;
}

// See SoftmaxFn.
inline void softmax(const float* x, std::size_t m, std::size_t n, bool causal, float* y) {
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t count = causal && i + 1 < n ? i + 1 : n;
    softmax_row(x + i * n, count, y + i * n);
    for (std::size_t j = count; j < n; ++j) y[i * n + j] = 0.0f;
  }
}

// ReLU that keeps NaN (ref::relu): x <= 0 -> +0, anything else (NaN included) passes.
inline void relu(const float* x, std::size_t n, float* y) {
  for (std::size_t j = 0; j < n; ++j) y[j] = x[j] <= 0.0f ? 0.0f : x[j];
}

// T(a) = Phi(-a) for a = |x| >= 0, the scheme of backends/shared/gelu_polynomial.hpp. Without FMA hardware (the
// x86-64 baseline this table is compiled for) std::fma is a slow library call: Horner runs with a
// multiply and an add, and exp(-a^2/2) in double, where a^2 is exact (what the SIMD kernels get from
// their fused multiply-add split).
inline float normal_tail(float a) {
  namespace nt = chord::backends::gelu_polynomial;
  if (a >= nt::kTailZero) return 0.0f;
  if (a < nt::kSmallLimit) {
    const float u = a * a;
    float p = nt::kP[0];
    for (int i = 1; i < nt::kPCount; ++i) p = p * u + nt::kP[i];
    return 0.5f - a * p;
  }
  const float t = 1.0f / (1.0f + nt::kTScale * a);
  float q = nt::kQ[0];
  for (int i = 1; i < nt::kQCount; ++i) q = q * t + nt::kQ[i];
  return static_cast<float>(std::exp(-0.5 * static_cast<double>(a) * static_cast<double>(a)) * (t * q));
}

// GELU (erf form) through the normal tail: x * T(|x|) for x < 0, x * (1 - T(|x|)) otherwise.
inline void gelu(const float* x, std::size_t n, float* y) {
  for (std::size_t j = 0; j < n; ++j) {
    const float v = x[j], tail = normal_tail(std::fabs(v));
    y[j] = v < 0.0f ? v * tail : v * (1.0f - tail);
  }
}

// Residual add: y = x + r.
inline void add(const float* x, const float* r, std::size_t n, float* y) {
  for (std::size_t j = 0; j < n; ++j) y[j] = x[j] + r[j];
}

}  // namespace chord::backends::scalar
