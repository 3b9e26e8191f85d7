// chord/ops/linear.hpp: LinearLayer layers (y = x W^T + b) run through a KernelTable.
//
// The same struct as the reference (ref/linear.hpp runs it too), so a model switches between the
// oracle and the kernels by namespace plus a table argument:
//   dense_f32   nn::gemm_nt (nn/gemm_f32.hpp): the cache-blocked fp32 product the trainer runs, not
//               the reference's triple loop (ref::gemm_f32: 4x slower at 200:64:64, 6x at 200:256:256;
//               but at m = 1 the blocked gemm, which packs W on every call, is 1.3-1.7x slower than it:
//               bench/bench_ops.cpp, linear/dense_f32 rows). Not through the table: that gemm is plain
//               C++ compiled for the includer's flags (README, layering). ref::gemm_f32's outputs bit
//               for bit (the same sums in the same order, then the bias) without FMA contraction.
//   mixed_f32   ops::mixed_gemm_f32 (weights dequantized in registers)
//   mixed_s8    ops::quantize_rows (SIMD) + ops::mixed_gemm_s8: exactly ref::linear_forward's outputs
// The int8 activations live in the thread's Workspace (workspace.hpp, slot `rows`).
#pragma once

#include <cstddef>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/layer_weights.hpp"
#include "chord/nn/gemm_f32.hpp"
#include "chord/ops/quantize_rows.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ops/kernel_table.hpp"
#include "chord/ops/workspace.hpp"

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
      nn::gemm_nt(m, layer.out, layer.in, x, ldx, layer.weight.data(), layer.in, layer.bias_or_null(), y, ldy,
                  /*accumulate=*/false);
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
