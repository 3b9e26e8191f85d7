// chord/ops/elementwise.hpp: ReLU, GELU and the residual add through a KernelTable (the reference:
// ref/activation.hpp). Element-wise over flat arrays of n floats ([m, d] is n = m * d); y may alias
// the inputs.
//   relu           exact (NaN stays NaN, -0 -> +0, as ref::relu)
//   gelu           the erf form, in fp32 through the normal-tail polynomials of backends/shared/gelu_polynomial.hpp
//                  (a few ulp from the reference's double erfc; documented bound there)
//   residual_add   exact (one fp32 addition, as the reference)
#pragma once

#include <cstddef>

#include "chord/ops/quantize_rows.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::ops {

// x: [n] -> y: [n].
inline void relu(const KernelTable& kernels, const float* x, std::size_t n, float* y) {
  detail::require(kernels.relu, kernels, "relu")(x, n, y);
}

// x: [n] -> y: [n].
inline void gelu(const KernelTable& kernels, const float* x, std::size_t n, float* y) {
  detail::require(kernels.gelu, kernels, "gelu")(x, n, y);
}

// y = x + r. x, r, y: [n].
inline void residual_add(const KernelTable& kernels, const float* x, const float* r, std::size_t n, float* y) {
  detail::require(kernels.add, kernels, "add")(x, r, n, y);
}

}  // namespace chord::ops
