// chord/ref/linear.hpp: the reference run of one linear layer (y = x W^T + b), dense or quantized.
//
// The layer's weights are a LinearLayer (core/layer_weights.hpp); this runs them on the reference gemm
// of ref/gemm.hpp in each of its three modes, so the reference layers built on it (attention,
// convolution) get all three paths. ops::linear_forward runs the same struct on a KernelTable and must
// give these outputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/error.hpp"
#include "chord/core/layer_weights.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/ref/gemm.hpp"

namespace chord::ref {

// x: [m, layer.in] (row stride ldx) -> y: [m, layer.out] (row stride ldy >= out).
// Input rows may overlap (ldx < in): Caser's convolution windows are rows of length h*d at stride d
// of the same [L, d] matrix. y must not overlap x. In mixed_s8 mode each row of x gets its own int8
// scale (per-token dynamic quantization), so a row's result never depends on the other rows.
inline void linear_forward(const LinearLayer& layer, const float* x, std::size_t ldx, float* y, std::size_t ldy,
                           std::size_t m) {
  layer.validate("linear_forward");
  CHORD_CHECK(ldy >= layer.out, "linear_forward: output row stride ", ldy, " is shorter than the ", layer.out,
              " outputs");
  if (m == 0) return;
  switch (layer.mode) {
    case LinearMode::dense_f32:
      gemm_f32(x, ldx, layer.weight.data(), layer.bias_or_null(), y, ldy, m, layer.out, layer.in);
      return;
    case LinearMode::mixed_f32:
      mixed_gemm_f32(x, ldx, layer.mixed, layer.bias_or_null(), y, ldy, m);
      return;
    case LinearMode::mixed_s8: {
      QuantizedRows a;
      quantize_rows(x, m, layer.in, ldx, a);
      mixed_gemm_s8(a, layer.mixed, layer.bias_or_null(), y, ldy);
      return;
    }
  }
}

// Convenience: x: [m, in] contiguous -> returns [m, out].
inline std::vector<float> linear_forward(const LinearLayer& layer, const float* x, std::size_t m) {
  std::vector<float> y(m * layer.out);
  linear_forward(layer, x, layer.in, y.data(), layer.out, m);
  return y;
}

}  // namespace chord::ref
