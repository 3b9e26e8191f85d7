// chord/io/strategy_packet.hpp: the strategy packet, what crosses the network from cloud to device.
//
// The cloud ranks every output channel of every personalized layer for one user (a 2-bit level, see
// core/strategy.hpp) and sends only those levels: about channels/4 bytes, against 32 bits per weight for
// shipping the weights themselves. The device decodes the levels with its own palette.
//
// Layout (little-endian, byte exact; the full table with examples is in docs/strategy-packet.md):
//
//   offset        size          field
//   0             4             magic "CHRS"
//   4             2             version u16 = 1
//   6             2             reserved u16 = 0
//   8             8             model fingerprint u64 (core/strategy.hpp model_fingerprint)
//   16            4             budget f32: average bits per weight the cloud aimed at, finite, in [0, 8]
//   20            4             palette u8[4]: the cloud's palette (non-decreasing, widths from {0, 2, 4, 8})
//   24            4             layer count L u32
//   28            4 L           channels u32, one per layer
//   28 + 4L       ceil(C / 4)   levels, C = total channels: 2 bits per channel, channel i of the flattened
//                               list in bits [2 (i % 4), 2 (i % 4) + 2) of byte i / 4; unused high bits of
//                               the last byte are zero
//   ...           4             CRC-32 u32 of all preceding bytes (core/checksum.hpp)
//
// Bytes 0..24 and the checksum are the envelope both wire formats share (io/envelope.hpp: written, read
// and judged there). The decoder is strict: every problem is a chord::Error of the form
//   strategy packet '<source>': byte <offset> (<field>): <what is wrong>
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/bytes.hpp"
#include "chord/io/envelope.hpp"

namespace chord {

inline constexpr std::size_t kStrategyHeaderBytes = kEnvelopeHeaderBytes + 4;  // the envelope + layer count
inline constexpr float kMaxStrategyBudget = kMaxEnvelopeBudget;

// What the cloud sends: which model, what it aimed at, its palette, and one level per channel.
struct StrategyPacket {
  std::uint64_t fingerprint = 0;
  float budget = 0.0f;  // average bits per weight under `palette`
  Palette palette = kStandardPalette;
  Strategy strategy;  // levels[layer][channel] in 0..3
};

// What the device knows before it reads a packet: its model's fingerprint and personalized layers.
struct PacketExpectation {
  std::uint64_t fingerprint = 0;
  std::vector<LayerShape> layers;
};

namespace detail {

inline void check_packet_contents(const StrategyPacket& packet, const std::string& where) {
  check_envelope({packet.fingerprint, packet.budget, packet.palette}, where);
  const auto& levels = packet.strategy.levels;
  CHORD_CHECK(levels.size() <= std::numeric_limits<std::uint32_t>::max(), where, ": ", levels.size(),
              " layers do not fit the u32 layer count");
  for (std::size_t l = 0; l < levels.size(); ++l) {
    CHORD_CHECK(levels[l].size() <= std::numeric_limits<std::uint32_t>::max(), where, ": layer ", l, " has ",
                levels[l].size(), " channels, more than the u32 channel count holds");
    for (std::size_t c = 0; c < levels[l].size(); ++c)
      CHORD_CHECK(levels[l][c] < kLevels, where, ": layer ", l, " channel ", c, ": level ", int(levels[l][c]),
                  " is not in 0..3");
  }
}

}  // namespace detail

// Bytes of the packet for a strategy: header + channel table + ceil(channels / 4) + checksum.
inline std::size_t strategy_packet_size(const Strategy& strategy) {
  std::size_t channels = 0;
  for (const auto& layer : strategy.levels) channels += layer.size();
  return kStrategyHeaderBytes + 4 * strategy.levels.size() + (channels + 3) / 4 + kEnvelopeChecksumBytes;
}

// Serializes a packet. Validates what it writes: levels 0..3, a valid palette, a finite budget in [0, 8].
inline std::vector<std::uint8_t> encode_strategy(const StrategyPacket& packet) {
  detail::check_packet_contents(packet, "encode_strategy");
  const auto& levels = packet.strategy.levels;

  std::vector<std::uint8_t> out;
  out.reserve(strategy_packet_size(packet.strategy));
  put_envelope_header(out, kStrategyFormat, {packet.fingerprint, packet.budget, packet.palette});
  bytes::put_u32(out, std::uint32_t(levels.size()));
  for (const auto& layer : levels) bytes::put_u32(out, std::uint32_t(layer.size()));

  // Levels of all layers as one flattened list, 4 per byte, first channel in the low bits.
  std::size_t i = 0;
  for (const auto& layer : levels)
    for (std::uint8_t level : layer) {
      if (i % 4 == 0) out.push_back(0);
      out.back() = std::uint8_t(out.back() | (level << (2 * (i % 4))));
      ++i;
    }
  put_envelope_checksum(out);
  return out;
}

// Reads a packet strictly against what the device expects; throws chord::Error naming `source`, the
// byte offset and the field for any problem (see the header comment for the message form).
//
// Order of checks, and why:
//  1. Framing: magic, version, layer count, channel table, level bytes, checksum, nothing after it.
//     The checksum's position depends on the channel table, so the table must be read (bounds-checked)
//     before the checksum can be found. A short packet is thus reported as "truncated" at the field it
//     cuts, which says more than "checksum mismatch"; another file type or format version is reported
//     as such, since its bytes mean something else and there may be no checksum where v1 puts it.
//  2. Checksum, before any field is interpreted: a byte corrupted in transit is then reported as
//     corruption, not as a misleading "this strategy is for another model" or "budget out of range".
//  3. Contents against the expectation and the format rules: reserved, fingerprint, layer and channel
//     counts, palette, budget, padding bits. A packet that passes the checksum but fails here was
//     written for something else (or by a broken writer), and the message says exactly what.
// Every single-byte corruption is rejected, whatever field it hits: if framing passes, the checksum is
// the last 4 bytes (nothing may follow it), so it covers exactly the bytes the encoder covered, and CRC-32
// detects any error burst of up to 32 bits among them or in the checksum itself. tests/test_strategy.cpp
// flips every byte of several packets to show it.
inline StrategyPacket decode_strategy(const std::uint8_t* data, std::size_t size, const PacketExpectation& expect,
                                      const std::string& source) {
  CHORD_CHECK(data != nullptr || size == 0, "strategy packet '", source, "': null data");
  bytes::Reader in(data, size, "strategy packet", source);

  // --- 1. framing -------------------------------------------------------------------------------
  const EnvelopeHeader header = read_envelope_header(in, kStrategyFormat);
  const std::size_t layer_count_at = in.offset();
  const auto layer_count = std::uint32_t(in.read_le(4, "layer count"));

  const std::size_t table_at = in.offset();
  // One bounds check for the whole table before reading it: a corrupted layer count of 4 billion must
  // not make us allocate or loop before we know the bytes are there.
  if (4 * std::size_t(layer_count) > in.size() - in.offset())
    in.fail(table_at, "channel table", "truncated: ", layer_count, " layers need a channel table of ",
            4 * std::size_t(layer_count), " bytes, the packet has ", in.size() - in.offset(), " left (packet size ",
            in.size(), ")");
  std::vector<std::uint32_t> channels(layer_count);
  std::uint64_t total_channels = 0;  // < 2^32 * (size / 4): cannot overflow 64 bits
  for (std::uint32_t l = 0; l < layer_count; ++l) {
    channels[l] = std::uint32_t(in.read_le(4, "channel table"));
    total_channels += channels[l];
  }
  const std::size_t levels_at = in.offset();
  const std::uint64_t level_bytes = (total_channels + 3) / 4;
  if (level_bytes > in.size() - in.offset())
    in.fail(levels_at, "levels", "truncated: ", total_channels, " channels need ", level_bytes,
            " bytes of levels, the packet has ", in.size() - in.offset(), " left (packet size ", in.size(), ")");
  const std::uint8_t* packed_levels = in.take(std::size_t(level_bytes), "levels");
  // --- 2. checksum ------------------------------------------------------------------------------
  read_envelope_checksum(in, data, "a packet of ", layer_count, " layers and ", total_channels, " channels");

  // --- 3. contents ------------------------------------------------------------------------------
  const Envelope envelope = check_envelope_header(in, header, kStrategyFormat.version, expect.fingerprint,
                                                  "strategy is for model ", ", this model is ");
  if (layer_count != expect.layers.size())
    in.fail(layer_count_at, "layer count", "layer count mismatch: the packet has ", layer_count,
            " layers, this model has ", expect.layers.size());
  for (std::uint32_t l = 0; l < layer_count; ++l)
    if (channels[l] != expect.layers[l].channels)
      in.fail(table_at + 4 * std::size_t(l), "channel table",
              "channel count mismatch in layer ", l, " '", expect.layers[l].name, "': the packet has ",
              channels[l], " channels, this model has ", expect.layers[l].channels);

  StrategyPacket packet;
  packet.fingerprint = envelope.fingerprint, packet.budget = envelope.budget, packet.palette = envelope.palette;

  const std::size_t used_in_last = std::size_t(total_channels % 4);
  if (used_in_last != 0) {
    const std::uint8_t last = packed_levels[level_bytes - 1];
    const auto padding = std::uint8_t(last >> (2 * used_in_last));
    if (padding != 0)
      in.fail(levels_at + std::size_t(level_bytes) - 1, "levels", "nonzero padding bits in last level byte ",
              bytes::hex_bytes(&last, 1), ": the bits past the ", total_channels, " channels must be zero");
  }

  packet.strategy.levels.resize(layer_count);
  std::size_t i = 0;
  for (std::uint32_t l = 0; l < layer_count; ++l) {
    auto& layer = packet.strategy.levels[l];
    layer.resize(channels[l]);
    for (auto& level : layer) {
      level = std::uint8_t((packed_levels[i / 4] >> (2 * (i % 4))) & 0x3u);
      ++i;
    }
  }
  return packet;
}

inline StrategyPacket decode_strategy(const std::vector<std::uint8_t>& bytes, const PacketExpectation& expect,
                                      const std::string& source) {
  return decode_strategy(bytes.data(), bytes.size(), expect, source);
}

// Writes a packet to a file atomically (io/atomic_file.hpp). Errors name the file.
inline void save_strategy(const std::string& path, const StrategyPacket& packet) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = encode_strategy(packet);
  } catch (const Error& e) {
    throw Error(detail::error_message("cannot save strategy '", path, "': ", e.what()));
  }
  write_file_atomic(path, bytes);
}

// Reads and strictly decodes a packet file; errors name the file.
inline StrategyPacket load_strategy(const std::string& path, const PacketExpectation& expect) {
  const std::vector<std::uint8_t> bytes = read_file(path);
  return decode_strategy(bytes.data(), bytes.size(), expect, path);
}

}  // namespace chord
