// chord/models/runtime_layers.hpp: the inference graph's layers, each runnable three ways.
//
// A model runs fp32 (the reference), with weights quantized per output channel at any mix of widths
// {0, 2, 4, 8} and fp32 activations (W-A32), or with the same weights and int8 per-row activations
// (W-A8, the integer path a device runs). Every quantizable layer is either
//   RuntimeLinear     y = x W^T + b   (attention projections, FFN, Caser's filters and fc1), or
//   RuntimeEmbedding  a table whose rows are the channels (item, position, user and output embeddings):
//                     gathered on the way in, and scored against a hidden state on the way out.
// Dense layers run nn::gemm_nt (the training graph's own cache-blocked product, which is also
// ops::linear_forward's dense path); quantized layers run ops::quantize_rows (SIMD) and
// ops::mixed_gemm_{f32,s8} through a KernelTable (runtime dispatch: pass &chord::best_kernels()).
// Bit-widths come per layer and per channel (a strategy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/error.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/nn/gemm_f32.hpp"
#include "chord/ops/quantize_rows.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ops/kernel_table.hpp"
#include "chord/ref/linear.hpp"

namespace chord::models {


// How to build an inference graph from trained fp32 weights.
struct InferenceOptions {
  LinearMode mode = LinearMode::dense_f32;
  // bits[layer][channel] in {0, 2, 4, 8}, in the order of the model's quantizable_layers(); required
  // (one vector per layer) unless mode == dense_f32.
  std::vector<std::vector<std::uint8_t>> bits;
  const KernelTable* kernels = nullptr;  // required unless mode == dense_f32 (e.g. &chord::best_kernels())
  ClipSearch clip;
};

// Without a table (the trainer's validation), the small fp32 ops and the activation quantizer are
// chord::nn's / chord::core's; with one, the table's SIMD kernels (ops/).
inline void quantize_activations(const KernelTable* kernels, const float* x, std::size_t m, std::size_t k,
                                 std::size_t ldx, QuantizedRows& out) {
  if (kernels != nullptr)
    ops::quantize_rows(*kernels, x, m, k, ldx, out);
  else
    quantize_rows(x, m, k, ldx, out);
}

namespace detail {
inline void check_layer_bits(const InferenceOptions& o, std::size_t layer, std::size_t channels, const char* name) {
  CHORD_CHECK(layer < o.bits.size(), "inference: no bit-widths for layer ", layer, " (", name, "): ", o.bits.size(),
              " layers given");
  CHORD_CHECK(o.bits[layer].size() == channels, "inference: layer ", layer, " (", name, ") has ", channels,
              " channels, the strategy gives ", o.bits[layer].size());
  CHORD_CHECK(o.kernels != nullptr, "inference: a quantized mode needs a kernel table (InferenceOptions::kernels)");
}
}  // namespace detail

struct RuntimeLinear {
  LinearLayer layer;
  const KernelTable* kernels = nullptr;

  // w: [out, in], bias: [out] or null. `layer_index` is the layer's place in the bit-width plan.
  static RuntimeLinear create(const float* w, const float* bias, std::size_t out, std::size_t in,
                              const InferenceOptions& o, std::size_t layer_index, const char* name) {
    RuntimeLinear r;
    r.kernels = o.kernels;
    std::vector<float> b = bias ? std::vector<float>(bias, bias + out) : std::vector<float>();
    if (o.mode == LinearMode::dense_f32) {
      r.layer = LinearLayer::dense(out, in, std::vector<float>(w, w + out * in), std::move(b));
      return r;
    }
    detail::check_layer_bits(o, layer_index, out, name);
    r.layer = LinearLayer::quantized(MixedMatrix(w, out, in, o.bits[layer_index].data(), o.clip), std::move(b), o.mode);
    return r;
  }

  std::size_t out() const { return layer.out; }
  std::size_t in() const { return layer.in; }

  // x: [m, in] (row stride ldx; rows may overlap) -> y: [m, out] (row stride ldy). scratch: int8 rows.
  void forward(const float* x, std::size_t ldx, float* y, std::size_t ldy, std::size_t m, QuantizedRows& scratch) const {
    if (m == 0) return;
    switch (layer.mode) {
      case LinearMode::dense_f32:
        nn::gemm_nt(m, layer.out, layer.in, x, ldx, layer.weight.data(), layer.in, layer.bias_or_null(), y, ldy, false);
        return;
      case LinearMode::mixed_f32:
        ops::mixed_gemm_f32(*kernels, x, ldx, m, layer.mixed, layer.bias_or_null(), y, ldy);
        return;
      case LinearMode::mixed_s8:
        quantize_activations(kernels, x, m, layer.in, ldx, scratch);
        ops::mixed_gemm_s8(*kernels, scratch, layer.mixed, layer.bias_or_null(), y, ldy);
        return;
    }
  }

  // The int8 path on rows already quantized (two layers reading the same input quantize it once).
  void forward_quantized(const QuantizedRows& a, float* y, std::size_t ldy) const {
    ops::mixed_gemm_s8(*kernels, a, layer.mixed, layer.bias_or_null(), y, ldy);
  }
};

namespace detail {
// The stored (unsigned, code + code_offset) codes of one channel for one packed width: u[j] for
// j < k rounded up to the width's k-group (the packed matrix pads k to it, and u must have the room).
// Each panel's 4 bytes of this channel are one little-endian word; sub-block s is that word shifted
// by s*Bits and masked per byte (no bit of byte j+1 reaches byte j's low Bits bits), 4 codes at once:
// the generic per-code loop's shifts, masks and index arithmetic cost more than the row's use of them.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "unpack_stored_codes reads panel bytes as little-endian words");
template <int Bits>
inline void unpack_stored_codes(const std::uint8_t* panel, std::size_t k, std::uint8_t* u) {
  constexpr std::size_t kGroupK = kDot * (8 / Bits), kSubBlocks = 8 / Bits;
  constexpr std::uint32_t kByteMask = 0x01010101u * ((1u << Bits) - 1u);
  for (std::size_t g = 0; g < k; g += kGroupK, panel += kPanelBytes) {
    std::uint32_t word;  // byte j of the word = panel[j] (little-endian; checked below)
    std::memcpy(&word, panel, sizeof word);
    for (std::size_t s = 0; s < kSubBlocks; ++s) {
      const std::uint32_t bytes = (word >> (s * Bits)) & kByteMask;
      std::memcpy(u + g + s * kDot, &bytes, sizeof bytes);
    }
  }
}
// The stored codes of channel `row` of w into u (room for w.cols() rounded up to 16); returns the
// code offset to subtract.
inline int unpack_stored_codes(const PackedMatrix& w, std::size_t row, std::uint8_t* u) {
  static_assert(kPanelBytes == kTileN * kDot, "a panel holds kDot bytes per channel of a tile");
  const std::uint8_t* panel = w.tile(row / kTileN) + (row % kTileN) * kDot;
  switch (w.bits()) {
    case 8: unpack_stored_codes<8>(panel, w.cols(), u); break;
    case 4: unpack_stored_codes<4>(panel, w.cols(), u); break;
    case 2: unpack_stored_codes<2>(panel, w.cols(), u); break;
    default: CHORD_CHECK(false, "unpack_channel: no packed width ", w.bits());
  }
  return code_offset(w.bits());
}
inline constexpr std::size_t kMaxUnpackedCodes = 4096;  // widths the row paths support (a multiple of 16)
}  // namespace detail

// The codes of one channel of a packed matrix: codes[j] for j < w.cols() <= 4096 (the layout of
// packed.hpp: tile row / 16, panel per k-group, 4 bytes per channel per panel, 8 / bits sub-blocks in
// bit planes).
inline void unpack_channel(const PackedMatrix& w, std::size_t row, std::int8_t* codes) {
  CHORD_CHECK(w.cols() <= detail::kMaxUnpackedCodes, "unpack_channel: ", w.cols(), " columns, at most ",
              detail::kMaxUnpackedCodes);
  std::uint8_t u[detail::kMaxUnpackedCodes];
  const int offset = detail::unpack_stored_codes(w, row, u);
  for (std::size_t j = 0; j < w.cols(); ++j) codes[j] = static_cast<std::int8_t>(int(u[j]) - offset);
}

// a . b over n floats with 8 independent partial sums: one running sum waits on the add latency at
// every step and may not be vectorized (no reassociation without -ffast-math); 8 lanes of sums are
// what a compiler keeps in SIMD registers at any baseline. (The fp32 scoring of embedding rows.)
inline float dot_f32(const float* a, const float* b, std::size_t n) {
  float acc[8] = {};
  std::size_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (std::size_t l = 0; l < 8; ++l) acc[l] += a[j + l] * b[j + l];
  float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; j < n; ++j) sum += a[j] * b[j];
  return sum;
}

// A table of `rows` embeddings of width d; each row is one channel (docs/design.md#precision).
class RuntimeEmbedding {
 public:
  RuntimeEmbedding() = default;

  // table: [rows, d] fp32.
  static RuntimeEmbedding create(const float* table, std::size_t rows, std::size_t d, const InferenceOptions& o,
                                 std::size_t layer_index, const char* name) {
    CHORD_CHECK(d >= 1 && d <= kMaxRowCodes, "embedding '", name, "': width ", d, " is not in 1..", kMaxRowCodes);
    RuntimeEmbedding e;
    e.mode_ = o.mode, e.rows_ = rows, e.d_ = d;
    e.kernels_ = o.kernels;
    if (o.mode == LinearMode::dense_f32) {
      e.dense_.assign(table, table + rows * d);
      return e;
    }
    detail::check_layer_bits(o, layer_index, rows, name);
    e.install(quantize_channels(table, rows, d, o.bits[layer_index].data(), o.clip), o.mode, o.kernels);
    return e;
  }

  // The table replaced by channels already quantized (q: [rows, d], one row per channel), packed for
  // `kernels`; the padding-row rule is kept. mode: mixed_f32 or mixed_s8.
  void install(const QuantizedChannels& q, LinearMode mode, const KernelTable* kernels) {
    CHORD_CHECK(mode != LinearMode::dense_f32, "embedding: install needs a quantized mode");
    CHORD_CHECK(q.k >= 1 && q.k <= kMaxRowCodes, "embedding: width ", q.k, " is not in 1..", kMaxRowCodes);
    mode_ = mode, rows_ = q.n, d_ = q.k, kernels_ = kernels;
    dense_.clear();
    mixed_ = MixedMatrix(q);
    // Where each channel lives, for row access without a search.
    segment_.assign(rows_, -1);
    row_.assign(rows_, 0);
    for (std::size_t s = 0; s < mixed_.segments().size(); ++s) {
      const auto& channels = mixed_.segments()[s].channels;
      for (std::size_t r = 0; r < channels.size(); ++r) {
        segment_[channels[r]] = static_cast<std::int32_t>(s);
        row_[channels[r]] = static_cast<std::uint32_t>(r);
      }
    }
  }

  LinearMode mode() const { return mode_; }
  std::size_t rows() const { return rows_; }
  std::size_t dim() const { return d_; }
  const MixedMatrix& mixed() const { return mixed_; }

  // The codes and scale of channel `row` (quantized modes); a pruned row gives codes 0, scale 0.
  float channel_codes(std::size_t row, std::int8_t* codes) const {
    const std::int32_t s = segment_[row];
    if (s < 0) {
      for (std::size_t j = 0; j < d_; ++j) codes[j] = 0;
      return 0.0f;
    }
    const PackedMatrix& packed = mixed_.segments()[std::size_t(s)].packed;
    unpack_channel(packed, row_[row], codes);
    return packed.scales()[row_[row]];
  }

  // Id 0 reads row 0 like any other id from now on (a learned padding row: caser_pytorch's Caser).
  void keep_padding_row() { zero_padding_ = false; }
  bool zero_padding_row() const { return zero_padding_; }

  // ids: [m] -> out: [m, d] = scale * row(ids[i]) (dequantized), zeros for the padding id 0 (unless
  // keep_padding_row()).
  void gather(const std::uint32_t* ids, std::size_t m, float scale, float* out) const {
    for (std::size_t i = 0; i < m; ++i)
      CHORD_CHECK(ids[i] < rows_, "embedding: id ", ids[i], " at position ", i, " is out of range (", rows_, " rows)");
    std::uint8_t stored[detail::kMaxUnpackedCodes];
    for (std::size_t i = 0; i < m; ++i) {
      float* o = out + i * d_;
      if (ids[i] == 0 && zero_padding_) {
        for (std::size_t j = 0; j < d_; ++j) o[j] = 0.0f;
      } else if (mode_ == LinearMode::dense_f32) {
        const float* row = dense_.data() + std::size_t(ids[i]) * d_;
        for (std::size_t j = 0; j < d_; ++j) o[j] = scale * row[j];
      } else if (segment_[ids[i]] < 0) {  // a pruned channel: zeros
        for (std::size_t j = 0; j < d_; ++j) o[j] = 0.0f;
      } else {  // float(code) * (channel scale * scale), straight from the stored codes
        const PackedMatrix& packed = mixed_.segments()[std::size_t(segment_[ids[i]])].packed;
        const float s = packed.scales()[row_[ids[i]]] * scale;
        const int offset = detail::unpack_stored_codes(packed, row_[ids[i]], stored);
        for (std::size_t j = 0; j < d_; ++j) o[j] = float(int(stored[j]) - offset) * s;
      }
    }
  }

  // Scores of the rows `ids` against one hidden state h: [d] -> out: [m], out[i] = h . row(ids[i]),
  // computed the way this layer's mode computes a product (fp32; dequantized; int8 h x codes).
  void score_rows(const float* h, const std::uint32_t* ids, std::size_t m, float* out, QuantizedRows& scratch) const {
    for (std::size_t i = 0; i < m; ++i)
      CHORD_CHECK(ids[i] < rows_, "embedding: id ", ids[i], " is out of range (", rows_, " rows)");
    std::int8_t codes[kMaxRowCodes];
    if (mode_ == LinearMode::mixed_s8) quantize_activations(kernels_, h, 1, d_, d_, scratch);
    for (std::size_t i = 0; i < m; ++i) {
      if (mode_ == LinearMode::dense_f32) {
        out[i] = dot_f32(h, dense_.data() + std::size_t(ids[i]) * d_, d_);
        continue;
      }
      const float scale = channel_codes(ids[i], codes);
      if (mode_ == LinearMode::mixed_f32) {
        float s = 0.0f;
        for (std::size_t j = 0; j < d_; ++j) s += h[j] * float(codes[j]);
        out[i] = scale * s;
      } else {
        std::int32_t acc = 0;
        const std::int8_t* a = scratch.row(0);
        for (std::size_t j = 0; j < d_; ++j) acc += std::int32_t(a[j]) * codes[j];
        out[i] = static_cast<float>(acc) * scratch.scales()[0] * scale;  // ref::dequantize_acc's order
      }
    }
  }

  // Scores of every row against h: [d] -> out: [rows] (the full-catalogue ranking).
  void score_all(const float* h, float* out, QuantizedRows& scratch) const {
    switch (mode_) {
      case LinearMode::dense_f32:
        // A gemv: one pass over the table (a packed gemm would copy the whole table for one row).
        for (std::size_t r = 0; r < rows_; ++r) out[r] = dot_f32(h, dense_.data() + r * d_, d_);
        return;
      case LinearMode::mixed_f32:
        ops::mixed_gemm_f32(*kernels_, h, d_, 1, mixed_, nullptr, out, rows_);
        return;
      case LinearMode::mixed_s8:
        quantize_activations(kernels_, h, 1, d_, d_, scratch);
        ops::mixed_gemm_s8(*kernels_, scratch, mixed_, nullptr, out, rows_);
        return;
    }
  }

  // Bytes this table keeps on the device (packed codes + scales, or fp32).
  std::size_t bytes() const { return mode_ == LinearMode::dense_f32 ? dense_.size() * sizeof(float) : mixed_.bytes(); }

  static constexpr std::size_t kMaxRowCodes = 4096;  // embedding widths supported by the row paths

 private:
  LinearMode mode_ = LinearMode::dense_f32;
  std::size_t rows_ = 0, d_ = 0;
  bool zero_padding_ = true;
  std::vector<float> dense_;
  MixedMatrix mixed_;
  std::vector<std::int32_t> segment_;  // [rows] segment of each channel, -1 when pruned
  std::vector<std::uint32_t> row_;     // [rows] row within that segment
  const KernelTable* kernels_ = nullptr;
};

}  // namespace chord::models
