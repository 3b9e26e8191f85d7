// chord/core/layer_weights.hpp: the weights of the layers a strategy quantizes, in the form every
// engine runs them (the reference in ref/, the kernels in ops/, the models and the device).
//
// Every layer that a strategy can quantize (attention projections, Caser's convolution filters, the
// FC layers) is a linear layer with [out, in] weights, one output channel per row. A model runs the
// same layer three ways: fp32 (the unquantized model), mixed-precision weights with fp32 activations
// (accuracy comparison), and mixed-precision weights with int8 per-row activations (the integer path
// the device runs). `LinearLayer` holds the weights of one of these forms plus the bias;
// ref::linear_forward runs it on the oracle, ops::linear_forward on a KernelTable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"

namespace chord {

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
struct LinearLayer {
  LinearMode mode = LinearMode::dense_f32;
  std::size_t out = 0, in = 0;
  std::vector<float> weight;  // [out, in] fp32; used (and required) only when mode == dense_f32
  MixedMatrix mixed;          // [out, in] quantized; used only by mixed_f32 and mixed_s8
  std::vector<float> bias;    // [out], or empty for a layer without bias

  // A dense fp32 layer. weight: [out, in]; bias: [out] or empty.
  static LinearLayer dense(std::size_t out, std::size_t in, std::vector<float> weight, std::vector<float> bias = {}) {
    LinearLayer layer;
    layer.mode = LinearMode::dense_f32;
    layer.out = out, layer.in = in;
    layer.weight = std::move(weight);
    layer.bias = std::move(bias);
    layer.validate("LinearLayer::dense");
    return layer;
  }

  // A quantized layer; its shape is the mixed matrix's. mode: mixed_f32 or mixed_s8.
  static LinearLayer quantized(MixedMatrix weights, std::vector<float> bias = {},
                          LinearMode mode = LinearMode::mixed_s8) {
    CHORD_CHECK(mode != LinearMode::dense_f32, "LinearLayer::quantized: mode must be mixed_f32 or mixed_s8");
    LinearLayer layer;
    layer.mode = mode;
    layer.out = weights.rows(), layer.in = weights.cols();
    layer.mixed = std::move(weights);
    layer.bias = std::move(bias);
    layer.validate("LinearLayer::quantized");
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
inline LinearLayer quantize_linear(const LinearLayer& dense, const std::uint8_t* bits, LinearMode mode,
                              const ClipSearch& search = {}) {
  CHORD_CHECK(dense.mode == LinearMode::dense_f32, "quantize_linear: the source layer is ",
              to_string(dense.mode), ", expected dense_f32");
  dense.validate("quantize_linear");
  return LinearLayer::quantized(MixedMatrix(dense.weight.data(), dense.out, dense.in, bits, search), dense.bias,
                           mode);
}

// The four projections of one attention layer, each a [d, d] linear layer (dense or quantized; the
// modes may differ per projection, e.g. a strategy that prunes channels in only one of them).
struct AttentionLayer {
  std::size_t heads = 1;
  LinearLayer query, key, value, output;

  std::size_t dim() const { return query.out; }

  // Throws chord::Error naming the projection whose shape is wrong.
  void validate(const char* where) const {
    const std::size_t d = dim();
    const LinearLayer* parts[4] = {&query, &key, &value, &output};
    const char* names[4] = {"query", "key", "value", "output"};
    for (int i = 0; i < 4; ++i) {
      const std::string name = std::string(where) + ": " + names[i] + " projection";
      parts[i]->validate(name.c_str());
      CHORD_CHECK(parts[i]->out == d && parts[i]->in == d, name, " is ", parts[i]->out, " x ", parts[i]->in,
                  ", expected ", d, " x ", d);
    }
    CHORD_CHECK(heads > 0, where, ": the number of heads must be positive");
    CHORD_CHECK(d % heads == 0, where, ": model dimension ", d, " is not divisible by ", heads, " heads");
  }
};

// Both kinds of filters of one Caser layer.
struct CaserFilters {
  std::vector<LinearLayer> horizontal;  // L banks, [nh, h*d] for h = 1..L
  LinearLayer vertical;                 // [nv, L]

  std::size_t output_size(std::size_t length, std::size_t d) const {
    return vertical.out * d + length * (horizontal.empty() ? 0 : horizontal[0].out);
  }
};

}  // namespace chord
