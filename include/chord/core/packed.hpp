// chord/core/packed.hpp: the packed weight format shared by every kernel and ISA.
//
// A homogeneous packed matrix holds n channels x k weights, all at one width b in {2, 4, 8}.
// Channels go in tiles of kTileN = 16 (one int32 lane per channel in a zmm register, four NEON
// registers); k goes in dot groups of kDot = 4 (the 4 bytes that vpdpbusd / sdot sum into one lane).
//
//   tile t (channels 16t .. 16t+15), one 64-byte "panel" per k-group:
//     byte  4*c + j  of sub-block s  =  weight (channel 16t + c, k = group_k0 + 4*s + j)
//   a panel stacks 8/b sub-blocks in bit planes: sub-block s sits in bits [s*b, s*b + b) of each byte,
//     int8: 1 sub-block  (k-group of  4), u = byte
//     int4: 2 sub-blocks (k-group of  8), u = (byte >> 4s) & 0xF     low nibble: k+0..3, high: k+4..7
//     int2: 4 sub-blocks (k-group of 16), u = (byte >> 2s) & 0x3
//   so unpacking is AND + shift and yields exactly the 16 x 4 byte layout of an int8 panel
//   (ggml's "low nibble j, high nibble j+16", with the 64-byte panel as the block).
//
// Stored values are unsigned: u = q + 2^(b-1) (see precision.hpp). An unsigned-by-signed dot product
// (vpdpbusd with u8 weights, s8 activations) then gives  sum(u*a) = sum(q*a) + 2^(b-1) * sum(a),  and
// the kernel subtracts 2^(b-1) * rowsum(a) once per output: no per-weight fix-up in the inner loop.
// Per-channel code sums (sum of q) are kept for the opposite convention (u8 activations with a
// zero-point, as oneDNN and gemmlowp use): there the correction is zero_point * code_sum.
//
// Padding: channels up to a multiple of 16 (scale 0, code 0), k up to a multiple of the k-group
// (code 0). The kernels read whole panels; activations must be zero past k (QuantizedRows does this).
// Full picture with diagrams: docs/packing.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"
#include "chord/core/precision.hpp"

namespace chord {

inline constexpr std::size_t kTileN = 16;      // channels per tile
inline constexpr std::size_t kDot = 4;         // k values summed into one int32 lane
inline constexpr std::size_t kPanelBytes = 64; // one panel: kTileN * kDot bytes
inline constexpr std::size_t kMaxGroupK = 16;  // the longest k-group (int2); activations pad to it

// k values covered by one panel at width `bits`: 4, 8, 16 for b = 8, 4, 2.
constexpr std::size_t group_k(int bits) { return kDot * (8 / static_cast<std::size_t>(bits)); }

class PackedMatrix {
 public:
  PackedMatrix() = default;

  // codes: [n, k] row-major signed codes in [code_min(bits), code_max(bits)]; scales: [n].
  // Throws chord::Error on a bad width or a code out of range (naming the channel and column).
  PackedMatrix(int bits, const std::int8_t* codes, const float* scales, std::size_t n, std::size_t k)
      : bits_(bits), n_(n), k_(k) {
    CHORD_CHECK(is_packed_bits(bits), "PackedMatrix: bit-width ", bits, " cannot be packed (2, 4 or 8)");
    n_padded_ = round_up(n, kTileN);
    k_padded_ = round_up(k, group_k(bits));
    data_.assign(n_padded_ / kTileN * tile_bytes(), 0);
    scales_.assign(n_padded_, 0.0f);
    code_sums_.assign(n_padded_, 0);
    for (std::size_t row = 0; row < n; ++row) {
      scales_[row] = scales[row];
      std::int32_t sum = 0;
      for (std::size_t col = 0; col < k; ++col) {
        const int q = codes[row * k + col];
        CHORD_CHECK(q >= code_min(bits) && q <= code_max(bits), "PackedMatrix: code ", q, " at channel ",
                    row, ", column ", col, " is out of range for ", bits, " bits");
        sum += q;
      }
      code_sums_[row] = sum;
    }
    // Panel by panel, each channel's 4 bytes gathered from its k-group (the layout above); padding rows
    // and columns take the stored value of code 0 so that they decode to 0. No per-weight division
    // (the old put()-per-weight loop was a quarter of the device's adaptation time).
    const std::size_t gk = group_k(bits), sub_blocks = 8 / static_cast<std::size_t>(bits);
    const int offset = code_offset(bits);
    std::uint8_t* out = data_.data();
    for (std::size_t tile = 0; tile < tiles(); ++tile)
      for (std::size_t k0 = 0; k0 < k_padded_; k0 += gk, out += kPanelBytes)
        for (std::size_t c = 0; c < kTileN; ++c) {
          const std::size_t row = tile * kTileN + c;
          const std::int8_t* channel = row < n ? codes + row * k : nullptr;
          for (std::size_t j = 0; j < kDot; ++j) {
            unsigned byte = 0;
            for (std::size_t s = 0; s < sub_blocks; ++s) {
              const std::size_t col = k0 + s * kDot + j;
              const int stored = (channel != nullptr && col < k ? channel[col] : 0) + offset;
              byte |= static_cast<unsigned>(stored) << (s * static_cast<std::size_t>(bits));
            }
            out[c * kDot + j] = static_cast<std::uint8_t>(byte);
          }
        }
  }

  int bits() const { return bits_; }
  std::size_t rows() const { return n_; }             // channels
  std::size_t cols() const { return k_; }             // weights per channel
  std::size_t rows_padded() const { return n_padded_; }
  std::size_t cols_padded() const { return k_padded_; }
  std::size_t tiles() const { return n_padded_ / kTileN; }
  std::size_t groups() const { return k_padded_ / group_k(bits_); }  // panels per tile
  std::size_t tile_bytes() const { return groups() * kPanelBytes; }
  std::size_t bytes() const { return data_.size(); }  // packed weights only

  const std::uint8_t* data() const { return data_.data(); }
  const std::uint8_t* tile(std::size_t t) const { return data_.data() + t * tile_bytes(); }
  const float* scales() const { return scales_.data(); }        // [rows_padded]
  const std::int32_t* code_sums() const { return code_sums_.data(); }  // [rows_padded]

  // The signed code at (channel, column); columns and channels past the end read as 0.
  int code(std::size_t row, std::size_t col) const {
    const Place p = place(row, col);
    return ((data_[p.byte] >> p.shift) & mask()) - code_offset(bits_);
  }

 private:
  struct Place {
    std::size_t byte;
    int shift;
  };
  Place place(std::size_t row, std::size_t col) const {
    const std::size_t gk = group_k(bits_);
    const std::size_t within = col % gk;
    const std::size_t byte = (row / kTileN) * tile_bytes() + (col / gk) * kPanelBytes +
                             (row % kTileN) * kDot + within % kDot;
    return {byte, static_cast<int>(within / kDot) * bits_};
  }
  int mask() const { return (1 << bits_) - 1; }

  int bits_ = 8;
  std::size_t n_ = 0, k_ = 0, n_padded_ = 0, k_padded_ = 0;
  AlignedVector<std::uint8_t> data_;
  AlignedVector<float> scales_;
  AlignedVector<std::int32_t> code_sums_;
};

}  // namespace chord
