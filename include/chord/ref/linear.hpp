// chord/ref/linear.hpp: one linear layer (y = x W^T + b) that runs dense or quantized: the reference.
//
// Every layer that a strategy can quantize (attention projections, Caser's convolution filters, the
// FC layers) is "a linear layer" with [out, in] weights, one output channel per row. The models run the
// same layer three ways: fp32 (the unquantized reference), mixed-precision weights with fp32
// activations (accuracy comparison), and mixed-precision weights with int8 per-row activations (the
// integer path the device runs). `Linear` holds the weights of one of these forms plus the bias, and
// `linear_forward` dispatches to the reference gemm of ref/gemm.hpp, so layers built on it (attention,
// convolution) get all three paths for free. An ops/ version can take the same struct and dispatch
// through a KernelTable instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "chord/core/activations.hpp"
#include "chord/core/error.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/ref/gemm.hpp"

namespace chord::ref {

// How a linear layer computes its product.
enum class LinearMode {
  dense_f32,  // fp32 weights x fp32 activations: the unquantized reference
  mixed_f32,  // MixedMatrix weights (dequantized) x fp32 activations: W{0,2,4,8} A32
  mixed_s8,   // MixedMatrix weights x int8 activations quantized per row: W{0,2,4,8} A8
};

inline const char* to_string(LinearMode mode) {
  switch (mode) {
    case LinearMode::dense_f32: return "dense_f32";
    case LinearMode::mixed_f32: return "mixed_f32";
    case LinearMode::mixed_s8: return "mixed_s8";
  }
  return "unknown";
}

// Weights [out, in] in one of two forms (which one `mode` says), and an optional bias [out].
struct Linear {
  LinearMode mode = LinearMode::dense_f32;
  std::size_t out = 0, in = 0;
  std::vector<float> weight;  // [out, in] fp32; used (and required) only when mode == dense_f32
  MixedMatrix mixed;          // [out, in] quantized; used only by mixed_f32 and mixed_s8
  std::vector<float> bias;    // [out], or empty for a layer without bias

  // A dense fp32 layer. weight: [out, in]; bias: [out] or empty.
  static Linear dense(std::size_t out, std::size_t in, std::vector<float> weight, std::vector<float> bias = {}) {
    Linear layer;
    layer.mode = LinearMode::dense_f32;
    layer.out = out, layer.in = in;
    layer.weight = std::move(weight);
    layer.bias = std::move(bias);
    layer.validate("Linear::dense");
    return layer;
  }

  // A quantized layer; its shape is the mixed matrix's. mode: mixed_f32 or mixed_s8.
  static Linear quantized(MixedMatrix weights, std::vector<float> bias = {},
                          LinearMode mode = LinearMode::mixed_s8) {
    CHORD_CHECK(mode != LinearMode::dense_f32, "Linear::quantized: mode must be mixed_f32 or mixed_s8");
    Linear layer;
    layer.mode = mode;
    layer.out = weights.rows(), layer.in = weights.cols();
    layer.mixed = std::move(weights);
    layer.bias = std::move(bias);
    layer.validate("Linear::quantized");
    return layer;
  }

  const float* bias_or_null() const { return bias.empty() ? nullptr : bias.data(); }

  // Throws chord::Error, naming `where` (e.g. "attention.query"), when the parts disagree on the shape.
  void validate(const char* where) const {
    CHORD_CHECK(bias.empty() || bias.size() == out, where, ": bias has ", bias.size(), " values, expected ",
                out, " (one per output channel) or none");
    if (mode == LinearMode::dense_f32) {
      CHORD_CHECK(weight.size() == out * in, where, ": dense weight has ", weight.size(), " values, expected ",
                  out, " x ", in);
    } else {
      CHORD_CHECK(mixed.rows() == out && mixed.cols() == in, where, ": mixed weight is ", mixed.rows(), " x ",
                  mixed.cols(), ", expected ", out, " x ", in);
    }
  }
};

// The quantized twin of a dense layer: each output channel c quantized to bits[c] in {0, 2, 4, 8}
// (bits: [out]); the bias stays fp32. This is what the device does with its frozen weights.
inline Linear quantize_linear(const Linear& dense, const std::uint8_t* bits, LinearMode mode,
                              const ClipSearch& search = {}) {
  CHORD_CHECK(dense.mode == LinearMode::dense_f32, "quantize_linear: the source layer is ",
              to_string(dense.mode), ", expected dense_f32");
  dense.validate("quantize_linear");
  return Linear::quantized(MixedMatrix(dense.weight.data(), dense.out, dense.in, bits, search), dense.bias,
                           mode);
}

// x: [m, layer.in] (row stride ldx) -> y: [m, layer.out] (row stride ldy >= out).
// Input rows may overlap (ldx < in): Caser's convolution windows are rows of length h*d at stride d
// of the same [L, d] matrix. y must not overlap x. In mixed_s8 mode each row of x gets its own int8
// scale (per-token dynamic quantization), so a row's result never depends on the other rows.
inline void linear_forward(const Linear& layer, const float* x, std::size_t ldx, float* y, std::size_t ldy,
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
inline std::vector<float> linear_forward(const Linear& layer, const float* x, std::size_t m) {
  std::vector<float> y(m * layer.out);
  linear_forward(layer, x, layer.in, y.data(), layer.out, m);
  return y;
}

}  // namespace chord::ref
