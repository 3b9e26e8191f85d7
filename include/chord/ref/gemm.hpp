// chord/ref/gemm.hpp: reference matrix products: the oracle every gemm/gemv kernel is tested against.
//
// Convention (all products in the library): weights are [n, k], one output channel per row, as in a
// PyTorch Linear; activations are [m, k], one token per row; outputs are [m, n]:
//   y[i][c] = sum_j x[i][j] * w[c][j] + bias[c]          (y = x W^T + b)
// Written as plain loops for clarity, not speed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/mixed_matrix.hpp"

namespace chord::ref {

// Dense fp32.  x: [m, k] (row stride ldx), w: [n, k], bias: [n] or null, y: [m, n] (row stride ldy).
inline void gemm_f32(const float* x, std::size_t ldx, const float* w, const float* bias, float* y,
                     std::size_t ldy, std::size_t m, std::size_t n, std::size_t k) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t c = 0; c < n; ++c) {
      float sum = 0.0f;
      for (std::size_t j = 0; j < k; ++j) sum += x[i * ldx + j] * w[c * k + j];
      y[i * ldy + c] = sum + (bias ? bias[c] : 0.0f);
    }
}

// Mixed weights, fp32 activations: each weight is dequantized (code * channel scale) and multiplied
// in fp32.  x: [m, w.cols()] (stride ldx), bias: [n] or null, y: [m, w.rows()] (stride ldy).
inline void mixed_gemm_f32(const float* x, std::size_t ldx, const MixedMatrix& w, const float* bias, float* y,
                           std::size_t ldy, std::size_t m) {
  const std::size_t n = w.rows(), k = w.cols();
  for (std::size_t c = 0; c < n; ++c) {
    const float scale = w.scale(c);
    for (std::size_t i = 0; i < m; ++i) {
      float sum = 0.0f;
      for (std::size_t j = 0; j < k; ++j)
        sum += x[i * ldx + j] * dequantize(static_cast<std::int8_t>(w.code(c, j)), scale);
      y[i * ldy + c] = sum + (bias ? bias[c] : 0.0f);
    }
  }
}

// Mixed weights, int8 activations, integer accumulators (exact):
//   acc[i][c] = sum_j a[i][j] * q[c][j]       a: quantized rows [m, k], acc: [m, w.rows()]
inline void mixed_gemm_s8_acc(const QuantizedRows& a, const MixedMatrix& w, std::int32_t* acc) {
  CHORD_CHECK(a.k() == w.cols(), "mixed_gemm_s8_acc: activations have ", a.k(), " columns, weights ", w.cols());
  const std::size_t n = w.rows(), k = w.cols();
  for (std::size_t i = 0; i < a.m(); ++i)
    for (std::size_t c = 0; c < n; ++c) {
      std::int32_t sum = 0;
      for (std::size_t j = 0; j < k; ++j) sum += std::int32_t(a.row(i)[j]) * w.code(c, j);
      acc[i * n + c] = sum;
    }
}

// The int8 path's fp32 epilogue, the one formula every kernel follows (same order of operations):
//   y = float(acc) * a_scale * w_scale + bias
inline float dequantize_acc(std::int32_t acc, float a_scale, float w_scale, float bias) {
  return static_cast<float>(acc) * a_scale * w_scale + bias;
}

// Mixed weights, int8 activations, fp32 outputs.  y: [a.m(), w.rows()] (stride ldy), bias: [n] or null.
inline void mixed_gemm_s8(const QuantizedRows& a, const MixedMatrix& w, const float* bias, float* y,
                          std::size_t ldy) {
  const std::size_t n = w.rows();
  std::vector<std::int32_t> acc(a.m() * n);
  mixed_gemm_s8_acc(a, w, acc.data());
  for (std::size_t i = 0; i < a.m(); ++i)
    for (std::size_t c = 0; c < n; ++c)
      y[i * ldy + c] = dequantize_acc(acc[i * n + c], a.scales()[i], w.scale(c), bias ? bias[c] : 0.0f);
}

// gemv: the m = 1 cases, named for the callers that decode one token at a time.
inline void mixed_gemv_f32(const float* x, const MixedMatrix& w, const float* bias, float* y) {
  mixed_gemm_f32(x, w.cols(), w, bias, y, w.rows(), 1);
}
inline void mixed_gemv_s8(const QuantizedRows& a, const MixedMatrix& w, const float* bias, float* y) {
  CHORD_CHECK(a.m() == 1, "mixed_gemv_s8: expected one activation row, got ", a.m());
  mixed_gemm_s8(a, w, bias, y, w.rows());
}

}  // namespace chord::ref
