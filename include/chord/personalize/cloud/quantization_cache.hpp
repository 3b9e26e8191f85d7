// chord/personalize/cloud/quantization_cache.hpp: the personalized layers of a backbone, and their precomputed quantizations.
//
// CHORD personalizes output channels of some of a backbone's weight matrices (docs/design.md#chord). The
// backbone is frozen, so everything the cloud needs about a channel's quantization is computed ONCE:
//   - q[b]: the fake-quantized row Q_b(W_c) for b = 2, 4, 8 (Q_0 is the zero row and is not stored),
//     made by chord::quantize_channel, the very function the device runs on the same fp32 weights, so
//     the rows the cloud trains with are the rows the device will run (tested bit for bit);
//   - q2_error2: the element-wise squared error (w_ij - Q_2(w_ij))^2, the input of the reconstructed
//     filter importance e_i = sum_j s_ij (w_ij - Q_2(w_ij))^2 (importance.hpp);
//   - error2[b]: the channel's total squared error at each width, Q_0's being the channel's energy.
// The budget solver takes per-channel LevelErrors; level_errors() normalizes them by the channel's
// Q_2 error, so that importance * r(level) is the loss increase predicted for the channel at that level
// (the importance itself predicts the increase at 2 bits: r(2 bits) = 1). See docs/chord.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/core/strategy.hpp"
#include "chord/personalize/cloud/budget_solver.hpp"

namespace chord::personalize {

// One personalized weight matrix as a backbone exposes it: `channels` output channels of `fan_in`
// weights, row-major, owned by the backbone (frozen: the pointer stays valid and the values fixed).
struct PersonalizedLayer {
  std::string name;  // e.g. "blocks.0.attn.q.weight": the backbone's parameter name
  std::size_t channels = 0;
  std::size_t fan_in = 0;
  const float* weight = nullptr;  // [channels, fan_in]
};

inline std::vector<LayerShape> layer_shapes(const std::vector<PersonalizedLayer>& layers) {
  std::vector<LayerShape> shapes;
  shapes.reserve(layers.size());
  for (const PersonalizedLayer& l : layers)
    shapes.push_back(LayerShape{l.name, static_cast<std::uint32_t>(l.channels), static_cast<std::uint32_t>(l.fan_in)});
  return shapes;
}

// The fp32 weights themselves (as w_eff: the unquantized reference loss).
inline std::vector<const float*> original_weights(const std::vector<PersonalizedLayer>& layers) {
  std::vector<const float*> w;
  for (const PersonalizedLayer& l : layers) w.push_back(l.weight);
  return w;
}

// Index of a width in {2, 4, 8} for the stored rows (0 has none).
inline int stored_width_index(int bits) { return bits == 2 ? 0 : bits == 4 ? 1 : 2; }

// The precomputed quantizations of one layer.
struct QuantizedLayer {
  std::string name;
  std::size_t channels = 0, fan_in = 0;
  const float* weight = nullptr;                 // [channels, fan_in], the backbone's
  std::array<std::vector<float>, 3> q;           // [channels, fan_in] each: Q_2, Q_4, Q_8 (stored_width_index)
  std::vector<float> q2_error2;                  // [channels, fan_in]: (w - Q_2(w))^2
  std::vector<std::array<double, 4>> error2;     // [channels][width index of kWeightBits]: ||w - Q_b(w)||^2

  // Q_b(W_c) for b in {2, 4, 8}; nullptr for b = 0 (the zero row).
  const float* row(int bits, std::size_t channel) const {
    check_weight_bits(bits, "QuantizedLayer::row");
    if (bits == 0) return nullptr;
    return q[std::size_t(stored_width_index(bits))].data() + channel * fan_in;
  }
};

// Index of a width in kWeightBits = {0, 2, 4, 8}.
inline std::size_t width_index(int bits) { return bits == 0 ? 0 : bits == 2 ? 1 : bits == 4 ? 2 : 3; }

// All personalized layers, quantized at every width: built once per frozen backbone.
class QuantizationCache {
 public:
  QuantizationCache() = default;

  explicit QuantizationCache(const std::vector<PersonalizedLayer>& layers, const ClipSearch& search = {}) {
    shapes_ = layer_shapes(layers);
    layers_.resize(layers.size());
    std::vector<std::int8_t> codes;
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const PersonalizedLayer& in = layers[l];
      CHORD_CHECK(in.channels > 0 && in.fan_in > 0, "QuantizationCache: layer ", l, " ('", in.name,
                  "') has a zero dimension (", in.channels, " x ", in.fan_in, ")");
      CHORD_CHECK(in.weight != nullptr, "QuantizationCache: layer ", l, " ('", in.name, "') has no weights");
      QuantizedLayer& out = layers_[l];
      out.name = in.name, out.channels = in.channels, out.fan_in = in.fan_in, out.weight = in.weight;
      const std::size_t k = in.fan_in, n = in.channels * k;
      for (auto& rows : out.q) rows.resize(n);
      out.q2_error2.resize(n);
      out.error2.resize(in.channels);
      codes.resize(k);
      for (std::size_t c = 0; c < in.channels; ++c) {
        const float* w = in.weight + c * k;
        double energy = 0.0;
        for (std::size_t j = 0; j < k; ++j) energy += double(w[j]) * w[j];
        out.error2[c][0] = energy;
        for (int b : {2, 4, 8}) {
          float* row = out.q[std::size_t(stored_width_index(b))].data() + c * k;
          const float scale = quantize_channel(w, k, b, codes.data(), search);
          double error = 0.0;
          for (std::size_t j = 0; j < k; ++j) {
            row[j] = dequantize(codes[j], scale);
            const double d = double(w[j]) - row[j];
            error += d * d;
            if (b == 2) out.q2_error2[c * k + j] = float(d * d);
          }
          out.error2[c][width_index(b)] = error;
        }
      }
    }
  }

  std::size_t layer_count() const { return layers_.size(); }
  const QuantizedLayer& layer(std::size_t l) const { return layers_.at(l); }
  const std::vector<LayerShape>& shapes() const { return shapes_; }
  std::size_t total_channels() const {
    std::size_t n = 0;
    for (const LayerShape& s : shapes_) n += s.channels;
    return n;
  }
  double total_weights() const {
    double n = 0.0;
    for (const LayerShape& s : shapes_) n += double(s.channels) * s.fan_in;
    return n;
  }

  // The solver's error curves for a palette: r(level) = ||w - Q_palette[level](w)||^2 / ||w - Q_2(w)||^2.
  // A channel that 2 bits represent exactly (Q_2 error 0) is normalized by its energy instead, and an
  // all-zero channel gets all-zero curves (no level changes anything, so it never takes bits from others).
  std::vector<std::vector<LevelErrors>> level_errors(const Palette& palette) const {
    check_palette(palette, "level_errors");
    std::vector<std::vector<LevelErrors>> out(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const QuantizedLayer& layer = layers_[l];
      out[l].resize(layer.channels);
      for (std::size_t c = 0; c < layer.channels; ++c) {
        const auto& e = layer.error2[c];
        const double norm = e[width_index(2)] > 0.0 ? e[width_index(2)] : e[0];
        for (int level = 0; level < kLevels; ++level)
          out[l][c][std::size_t(level)] = norm > 0.0 ? e[width_index(palette[std::size_t(level)])] / norm : 0.0;
      }
    }
    return out;
  }

 private:
  std::vector<QuantizedLayer> layers_;
  std::vector<LayerShape> shapes_;
};

}  // namespace chord::personalize
