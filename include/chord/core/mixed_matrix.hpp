// chord/core/mixed_matrix.hpp: one weight matrix whose output channels have different bit-widths.
//
// This is the library's core idea. A layer's n output channels each get a width in {0, 2, 4, 8}
// (at runtime: a user's strategy decides). A kernel wants one width per loop, so the channels are
// permuted into homogeneous segments, 8-bit first, then 4, then 2; each segment is a PackedMatrix run
// by a kernel compiled for its width, padded to the 16-channel tile; pruned (0-bit) channels are in no
// segment and produce 0. `Segment::channels` maps each segment row back to its original channel, so
// outputs are written in the original order and callers never see the permutation.
//
//   original channels:   c0:4  c1:8  c2:2  c3:4  c4:0  c5:8
//   segments:            [8-bit: c1 c5] [4-bit: c0 c3] [2-bit: c2]      c4 pruned -> output 0
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/packed.hpp"
#include "chord/core/quantizer.hpp"

namespace chord {

class MixedMatrix {
 public:
  struct Segment {
    int bits = 8;
    std::vector<std::uint32_t> channels;  // [rows]: original channel of each segment row, ascending
    PackedMatrix packed;                  // [rows, k] at `bits`
  };

  MixedMatrix() = default;

  // From channels already quantized (each at its own width): the device path reuses precomputed codes.
  explicit MixedMatrix(const QuantizedChannels& q) : n_(q.n), k_(q.k), bits_(q.bits) {
    for (int b : kPackedBits) {
      Segment segment;
      segment.bits = b;
      std::vector<std::int8_t> codes;
      std::vector<float> scales;
      for (std::size_t i = 0; i < n_; ++i) {
        if (bits_[i] != b) continue;
        segment.channels.push_back(static_cast<std::uint32_t>(i));
        codes.insert(codes.end(), q.codes.begin() + i * k_, q.codes.begin() + (i + 1) * k_);
        scales.push_back(q.scales[i]);
      }
      if (segment.channels.empty()) continue;
      segment.packed = PackedMatrix(b, codes.data(), scales.data(), segment.channels.size(), k_);
      segments_.push_back(std::move(segment));
    }
  }

  // w: [n, k] fp32 row-major; bits: [n] in {0, 2, 4, 8}. Quantizes each channel at its width.
  MixedMatrix(const float* w, std::size_t n, std::size_t k, const std::uint8_t* bits,
              const ClipSearch& search = {})
      : MixedMatrix(quantize_channels(w, n, k, bits, search)) {}

  std::size_t rows() const { return n_; }  // output channels
  std::size_t cols() const { return k_; }  // inputs per channel
  int bits(std::size_t channel) const { return bits_[channel]; }
  const std::vector<std::uint8_t>& channel_bits() const { return bits_; }
  const std::vector<Segment>& segments() const { return segments_; }

  // Average bits per weight (pruned channels count as 0).
  double average_bits() const {
    if (n_ == 0) return 0.0;
    double sum = 0.0;
    for (std::uint8_t b : bits_) sum += b;
    return sum / static_cast<double>(n_);
  }
  // Bytes of packed weights plus per-channel scales actually stored.
  std::size_t bytes() const {
    std::size_t total = 0;
    for (const Segment& s : segments_) total += s.packed.bytes() + s.packed.rows_padded() * sizeof(float);
    return total;
  }

  // The code and scale of an original channel, through the permutation (for references and tests).
  int code(std::size_t channel, std::size_t col) const {
    const Located at = locate(channel);
    return at.segment == nullptr ? 0 : at.segment->packed.code(at.row, col);
  }
  float scale(std::size_t channel) const {
    const Located at = locate(channel);
    return at.segment == nullptr ? 0.0f : at.segment->packed.scales()[at.row];
  }

 private:
  struct Located {
    const Segment* segment;
    std::size_t row;
  };
  Located locate(std::size_t channel) const {
    CHORD_CHECK(channel < n_, "MixedMatrix: channel ", channel, " out of range (", n_, " channels)");
    for (const Segment& s : segments_) {
      if (s.bits != bits_[channel]) continue;
      // channels are ascending within a segment: binary search.
      std::size_t lo = 0, hi = s.channels.size();
      while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        if (s.channels[mid] < channel) lo = mid + 1; else hi = mid;
      }
      return {&s, lo};
    }
    return {nullptr, 0};
  }

  std::size_t n_ = 0, k_ = 0;
  std::vector<std::uint8_t> bits_;
  std::vector<Segment> segments_;
};

}  // namespace chord
