// chord/ops/linear.hpp: LinearLayer layers (y = x W^T + b) run through a KernelTable.
//
// The same struct as the reference (ref/linear.hpp), so a model switches between the oracle and the
// kernels by namespace plus a table argument:
//   dense_f32   the unquantized reference: ref::gemm_f32 (dense fp32 weights are what the device
//               replaces, not a path the kernels serve)
//   mixed_f32   ops::mixed_gemm_f32 (weights dequantized in registers)
//   mixed_s8    ops::quantize_rows (SIMD) + ops::mixed_gemm_s8: exactly ref::linear_forward's outputs
// The int8 activations live in the thread's Workspace (workspace.hpp, slot `rows`).
#pragma once

#include <cstddef>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/ops/quantize_rows.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ops/kernel_table.hpp"
#include "chord/ops/workspace.hpp"
#include "chord/ref/gemm.hpp"
#include "chord/ref/linear.hpp"

namespace chord::ops {

// x: [m, layer.in] (row stride ldx; rows may overlap, ldx < in) -> y: [m, layer.out] (row stride
// ldy >= out). y must not overlap x. Each row of x gets its own int8 scale in mixed_s8 mode.
inline void linear_forward(const KernelTable& kernels, const LinearLayer& layer, const float* x, std::size_t ldx,
                           float* y, std::size_t ldy, std::size_t m) {
  layer.validate("linear_forward");
  CHORD_CHECK(ldy >= layer.out, "linear_forward: output row stride ", ldy, " is shorter than the ", layer.out,
              " outputs");
  if (m == 0) return;
  switch (layer.mode) {
    case LinearMode::dense_f32:
      ref::gemm_f32(x, ldx, layer.weight.data(), layer.bias_or_null(), y, ldy, m, layer.out, layer.in);
      return;
    case LinearMode::mixed_f32:
      mixed_gemm_f32(kernels, x, ldx, m, layer.mixed, layer.bias_or_null(), y, ldy);
      return;
    case LinearMode::mixed_s8: {
      QuantizedRows& a = Workspace::local().rows;
      quantize_rows(kernels, x, m, layer.in, ldx, a);
      mixed_gemm_s8(kernels, a, layer.mixed, layer.bias_or_null(), y, ldy);
      return;
    }
  }
}

// Convenience: x: [m, in] contiguous -> returns [m, out].
inline std::vector<float> linear_forward(const KernelTable& kernels, const LinearLayer& layer, const float* x,
                                         std::size_t m) {
  std::vector<float> y(m * layer.out);
  linear_forward(kernels, layer, x, layer.in, y.data(), layer.out, m);
  return y;
}

}  // namespace chord::ops
