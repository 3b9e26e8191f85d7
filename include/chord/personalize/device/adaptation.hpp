// chord/personalize/device/adaptation.hpp: the one device adaptation path.
//
//   packet bytes --decode_for_device--> per-channel widths (the packet's own palette, or the device's)
//                --FrozenChannelCodes::select--> each channel's cached codes at its width
//                --install_personalized--> the engine's personalized layers, packed for the kernels
// DeviceModel (device_model.hpp), the experiment's evaluators and device builders all take this path,
// so what the experiment measures is what a device runs.
// Why codes are cached: the clip search of core/quantizer.hpp costs ~30x the packing (1.6 ms against
// ~0.07 ms for SASRec d = 64 on one core), and the frozen weights never change, so quantizing each
// channel at 2, 4 and 8 bits once, at install, answers every later strategy with a selection and a
// pack. The cache holds 3 bytes per weight (int8 codes) and 3 scales per channel: less than the fp32
// weights themselves. select() returns exactly what quantize_channels(frozen, bits) would.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/layer_weights.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/runtime_layers.hpp"
#include "chord/personalize/device/plan.hpp"

namespace chord::personalize {

// A strategy packet as the device reads it: decoded once, strictly, for its model.
struct DecodedStrategy {
  StrategyPacket packet;
  Palette palette{};          // the palette the levels were mapped through
  Widths bits;                // [personalized layer][channel] widths
  double average_bits = 0.0;  // per weight of the personalized layers
};

// The levels map through the packet's own palette (the one the device asked with, carried back),
// unless the device overrides it with `device_palette`.
inline DecodedStrategy decode_for_device(const std::uint8_t* bytes, std::size_t size, const PacketExpectation& expect,
                                         const std::string& source, const std::optional<Palette>& device_palette = {}) {
  DecodedStrategy d;
  d.packet = decode_strategy(bytes, size, expect, source);
  d.palette = device_palette ? *device_palette : d.packet.palette;
  check_palette(d.palette, "decode_for_device");
  d.bits = strategy_bits(d.packet.strategy, d.palette);
  d.average_bits = average_bits(d.packet.strategy, expect.layers, d.palette);
  return d;
}
inline DecodedStrategy decode_for_device(const std::vector<std::uint8_t>& bytes, const PacketExpectation& expect,
                                         const std::string& source, const std::optional<Palette>& device_palette = {}) {
  return decode_for_device(bytes.data(), bytes.size(), expect, source, device_palette);
}

// The frozen personalized matrices, each channel quantized at 2, 4 and 8 bits, once.
class FrozenChannelCodes {
 public:
  FrozenChannelCodes() = default;
  // layers[l]: [channels, fan_in] of frozen[l] (row-major fp32; the pointers are kept only to
  // recognize the frozen matrices in select(bits, weights)).
  FrozenChannelCodes(const std::vector<LayerShape>& layers, const std::vector<const float*>& frozen)
      : layers_(layers), frozen_(frozen) {
    CHORD_CHECK(frozen.size() == layers.size(), "FrozenChannelCodes: ", frozen.size(), " matrices for ", layers.size(),
                " layers");
    codes_.resize(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l)
      for (int bits : {2, 4, 8}) {
        const std::vector<std::uint8_t> width(layers[l].channels, std::uint8_t(bits));
        codes_[l][index(bits)] = quantize_channels(frozen[l], layers[l].channels, layers[l].fan_in, width.data());
      }
  }

  std::size_t layer_count() const { return layers_.size(); }
  const std::vector<LayerShape>& layers() const { return layers_; }

  // Layer l with channel c at bits[c] in {0, 2, 4, 8} (0: pruned, codes and scale 0).
  QuantizedChannels select(std::size_t l, const std::vector<std::uint8_t>& bits) const {
    CHORD_CHECK(l < layers_.size(), "FrozenChannelCodes: layer ", l, " of ", layers_.size());
    const std::size_t n = layers_[l].channels, k = layers_[l].fan_in;
    check_widths(l, bits);
    QuantizedChannels q;
    q.n = n, q.k = k, q.bits = bits;
    q.codes.assign(n * k, 0);
    q.scales.assign(n, 0.0f);
    for (std::size_t c = 0; c < n; ++c) {
      if (bits[c] == 0) continue;
      const QuantizedChannels& from = codes_[l][index(bits[c])];
      std::copy(from.codes.begin() + std::ptrdiff_t(c * k), from.codes.begin() + std::ptrdiff_t((c + 1) * k),
                q.codes.begin() + std::ptrdiff_t(c * k));
      q.scales[c] = from.scales[c];
    }
    return q;
  }

  // Every layer at bits[l]. weights (optional, one [channels, fan_in] matrix per layer): a layer whose
  // matrix is not the frozen one (e.g. fine-tuned on the device) is quantized afresh by the same
  // function, so equal weights give equal codes either way.
  std::vector<QuantizedChannels> select(const Widths& bits, const std::vector<const float*>& weights = {}) const {
    CHORD_CHECK(bits.size() == layers_.size(), "device: widths for ", bits.size(), " layers, the model has ",
                layers_.size(), " personalized layers");
    CHORD_CHECK(weights.empty() || weights.size() == layers_.size(), "device: ", weights.size(),
                " weight matrices for ", layers_.size(), " personalized layers");
    std::vector<QuantizedChannels> out;
    out.reserve(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      if (weights.empty() || weights[l] == frozen_[l]) {
        out.push_back(select(l, bits[l]));
        continue;
      }
      CHORD_CHECK(weights[l] != nullptr, "device: layer ", l, " ('", layers_[l].name, "') has no weights");
      check_widths(l, bits[l]);
      out.push_back(quantize_channels(weights[l], layers_[l].channels, layers_[l].fan_in, bits[l].data()));
    }
    return out;
  }

 private:
  static std::size_t index(int bits) { return bits == 2 ? 0 : bits == 4 ? 1 : 2; }
  void check_widths(std::size_t l, const std::vector<std::uint8_t>& bits) const {
    CHORD_CHECK(bits.size() == layers_[l].channels, "FrozenChannelCodes: layer '", layers_[l].name, "' has ",
                layers_[l].channels, " channels, ", bits.size(), " widths given");
    for (std::uint8_t b : bits)
      CHORD_CHECK(b == 0 || b == 2 || b == 4 || b == 8, "FrozenChannelCodes: layer '", layers_[l].name, "': width ",
                  int(b), " is not 0, 2, 4 or 8");
  }
  std::vector<LayerShape> layers_;
  std::vector<const float*> frozen_;
  std::vector<std::array<QuantizedChannels, 3>> codes_;  // [layer][2, 4, 8 bits]
};

// Installs quantized channels as an engine's personalized tensors (SasrecInference, CaserInference:
// the strategy's order; tables and linear layers alike: models/engine_slots.hpp), packed for the kernels.
template <class Engine>
void install_personalized(Engine& engine, const std::vector<QuantizedChannels>& channels, LinearMode mode,
                          const KernelTable* kernels) {
  engine.install_personalized(channels, mode, kernels);
}

}  // namespace chord::personalize
