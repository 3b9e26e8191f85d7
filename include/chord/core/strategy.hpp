// chord/core/strategy.hpp: a user's bit-width strategy: one 2-bit level per output channel.
//
// Level 0..3 ranks how much a channel matters for this user (3 = most). A palette maps levels to
// bit-widths; the standard palette is {0, 2, 4, 8}. Because only the ranking crosses the network, a
// device can decode the same levels with another monotone palette ({2, 2, 4, 8} keeps every channel,
// {0, 2, 4, 4} caps memory) to follow its own resource budget without asking the cloud again.
//
// Budget accounting: average bits per weight, weights counted per channel: a channel of fan-in k at
// b bits costs k * b bits. The average is over every weight of every personalized layer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/core/error.hpp"
#include "chord/core/precision.hpp"

namespace chord {

inline constexpr int kLevels = 4;  // 2 bits per channel

// palette[level] = bit-width of a channel at that level.
using Palette = std::array<std::uint8_t, kLevels>;
inline constexpr Palette kStandardPalette = {0, 2, 4, 8};

// A palette is valid when every entry is a weight width and the entries never decrease.
inline bool is_valid_palette(const Palette& palette) {
  for (int l = 0; l < kLevels; ++l) {
    if (!is_weight_bits(palette[l])) return false;
    if (l > 0 && palette[l] < palette[l - 1]) return false;
  }
  return true;
}

inline void check_palette(const Palette& palette, const std::string& where) {
  CHORD_CHECK(is_valid_palette(palette), where, ": palette {", int(palette[0]), ", ", int(palette[1]), ", ",
              int(palette[2]), ", ", int(palette[3]),
              "} is not a non-decreasing list of widths from {0, 2, 4, 8}");
}

// One personalized layer as the strategy sees it: how many channels, how many weights each.
struct LayerShape {
  std::string name;
  std::uint32_t channels = 0;
  std::uint32_t fan_in = 0;  // weights per channel
};

// Names a model by its architecture and its personalized layers (name, channels, fan-in), so that a
// strategy computed for another model, or another version of this one, is refused. Every piece is
// hashed with its length first, so ("ab", "c") and ("a", "bc") differ; numbers are hashed as
// little-endian bytes, so cloud and device agree whatever their byte order.
inline std::uint64_t model_fingerprint(const std::vector<LayerShape>& layers, std::string_view architecture) {
  auto add_u64 = [](std::uint64_t value, std::uint64_t hash) {
    std::uint8_t bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = std::uint8_t(value >> (8 * i));
    return fnv1a64(bytes, sizeof(bytes), hash);
  };
  std::uint64_t hash = kFnv1a64Basis;
  hash = add_u64(architecture.size(), hash);
  hash = fnv1a64(architecture, hash);
  hash = add_u64(layers.size(), hash);
  for (const LayerShape& layer : layers) {
    hash = add_u64(layer.name.size(), hash);
    hash = fnv1a64(layer.name, hash);
    hash = add_u64(layer.channels, hash);
    hash = add_u64(layer.fan_in, hash);
  }
  return hash;
}

// levels[l][c] in 0..3 for layer l, channel c.
struct Strategy {
  std::vector<std::vector<std::uint8_t>> levels;
};

inline void check_strategy_shape(const Strategy& s, const std::vector<LayerShape>& layers) {
  CHORD_CHECK(s.levels.size() == layers.size(), "strategy has ", s.levels.size(), " layers, the model has ",
              layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    CHORD_CHECK(s.levels[l].size() == layers[l].channels, "strategy layer ", l, " (", layers[l].name, ") has ",
                s.levels[l].size(), " channels, the model has ", layers[l].channels);
    for (std::size_t c = 0; c < s.levels[l].size(); ++c)
      CHORD_CHECK(s.levels[l][c] < kLevels, "strategy layer ", l, " channel ", c, ": level ",
                  int(s.levels[l][c]), " is not in 0..3");
  }
}

// Bit-widths of one layer's channels under a palette.
inline std::vector<std::uint8_t> decode_levels(const std::vector<std::uint8_t>& levels, const Palette& palette) {
  check_palette(palette, "decode_levels");
  std::vector<std::uint8_t> bits(levels.size());
  for (std::size_t c = 0; c < levels.size(); ++c) {
    CHORD_CHECK(levels[c] < kLevels, "decode_levels: channel ", c, " has level ", int(levels[c]));
    bits[c] = palette[levels[c]];
  }
  return bits;
}

// Device side: the bit-width of every channel, decoded with the device's own palette (which may differ
// from the cloud's: {2, 2, 4, 8} keeps every channel, {0, 2, 4, 4} caps memory). bits[layer][channel].
inline std::vector<std::vector<std::uint8_t>> strategy_bits(const Strategy& strategy, const Palette& device_palette) {
  check_palette(device_palette, "strategy_bits");
  std::vector<std::vector<std::uint8_t>> bits;
  bits.reserve(strategy.levels.size());
  for (const auto& layer : strategy.levels) bits.push_back(decode_levels(layer, device_palette));
  return bits;
}

// Average bits per weight of a whole strategy under a palette (0 when there are no weights).
inline double average_bits(const Strategy& s, const std::vector<LayerShape>& layers, const Palette& palette) {
  check_strategy_shape(s, layers);
  check_palette(palette, "average_bits");
  double bits = 0.0, weights = 0.0;
  for (std::size_t l = 0; l < layers.size(); ++l)
    for (std::uint8_t level : s.levels[l]) {
      bits += double(palette[level]) * layers[l].fan_in;
      weights += layers[l].fan_in;
    }
  return weights == 0.0 ? 0.0 : bits / weights;
}

// Bytes of the packed weights a strategy leaves on the device (scales not included).
inline std::size_t weight_bytes(const Strategy& s, const std::vector<LayerShape>& layers, const Palette& palette) {
  check_strategy_shape(s, layers);
  std::size_t bits = 0;
  for (std::size_t l = 0; l < layers.size(); ++l)
    for (std::uint8_t level : s.levels[l]) bits += std::size_t(palette[level]) * layers[l].fan_in;
  return (bits + 7) / 8;
}

}  // namespace chord
