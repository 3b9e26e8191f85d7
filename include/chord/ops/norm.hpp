// chord/ops/norm.hpp: layernorm and softmax through a KernelTable (the reference: ref/norm.hpp).
//
// Same arguments, checks and semantics as the reference: -infinity is "masked" in a softmax row, a row
// with no finite entry gives zeros. The kernels work in fp32 (the reference accumulates in double):
// results agree within the rounding bounds tests/test_kernels_ops.cpp derives.
#pragma once

#include <cmath>
#include <cstddef>

#include "chord/core/error.hpp"
#include "chord/ops/quantize_rows.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::ops {

// y[i] = (x[i] - mean_i) / sqrt(var_i + eps) * gamma + beta (biased variance), as torch.nn.LayerNorm.
// x: [m, d], gamma, beta: [d] or null, eps > 0, y: [m, d]; y may alias x.
inline void layernorm(const KernelTable& kernels, const float* x, std::size_t m, std::size_t d, const float* gamma,
                      const float* beta, float eps, float* y) {
  const LayerNormFn kernel = detail::require(kernels.layernorm, kernels, "layernorm");
  CHORD_CHECK(d > 0, "layernorm: rows have no elements (d = 0)");
  CHORD_CHECK(eps > 0.0f && std::isfinite(eps), "layernorm: eps must be positive and finite, got ", eps);
  if (m > 0) kernel(x, m, d, gamma, beta, eps, y);
}

// One row: y[j] = exp(x[j] - max) / sum_k exp(x[k] - max). x, y: [n]; y may alias x.
inline void softmax_row(const KernelTable& kernels, const float* x, std::size_t n, float* y) {
  detail::require(kernels.softmax, kernels, "softmax")(x, 1, n, false, y);
}

// Row-wise. x, y: [m, n]; y may alias x.
inline void softmax(const KernelTable& kernels, const float* x, std::size_t m, std::size_t n, float* y) {
  const SoftmaxFn kernel = detail::require(kernels.softmax, kernels, "softmax");
  if (m > 0) kernel(x, m, n, false, y);
}

// Row-wise with the causal limit of an [L, L] score matrix: row i normalizes entries 0..i, and its
// entries after i are exactly 0 (as ref::attention_weights' rows). x, y: [m, n]; y may alias x.
inline void causal_softmax(const KernelTable& kernels, const float* x, std::size_t m, std::size_t n, float* y) {
  const SoftmaxFn kernel = detail::require(kernels.softmax, kernels, "softmax");
  if (m > 0) kernel(x, m, n, true, y);
}

}  // namespace chord::ops
