// chord/ops/gemm.hpp: gemm and gemv on a mixed-precision matrix, through any backend's KernelTable.
//
// The mixed matrix's segments (one per width) each go to the kernel compiled for that width; the
// kernels write straight into the original channel order; pruned channels get just their bias.
// Shapes: x [m, k] (row stride ldx), w [n, k], bias [n] or null, y [m, n] (row stride ldy).
#pragma once

#include <cstddef>
#include <cstdint>

#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::ops {

namespace detail {
// Channels with no segment (0 bits) output their bias (or 0).
// Why not a plain loop over the channels writing each one's column: it cost 3-4 us per call on the
// 12,101-item catalogue (a gemv whose kernel takes 8 us: a mispredicted branch per pruned channel),
// and at m = 200 a column written top to bottom at a 4 KiB row stride hits one L1 set 200 times
// (w8420 at 200:1024:1024 spent 40 % of its time there). So: nothing when no channel is pruned (told
// by the segment sizes); else the pruned channels are listed in chunks (branch-free) and written row
// by row.
inline void write_pruned(const MixedMatrix& w, const float* bias, float* y, std::size_t ldy, std::size_t m) {
  std::size_t kept = 0;
  for (const MixedMatrix::Segment& s : w.segments()) kept += s.channels.size();
  if (kept == w.rows()) return;
  const std::uint8_t* bits = w.channel_bits().data();
  constexpr std::size_t kChunk = 256;
  std::uint32_t pruned[kChunk + 1];  // +1: the branch-free append writes one slot past the count
  for (std::size_t c0 = 0; c0 < w.rows(); c0 += kChunk) {
    const std::size_t end = w.rows() - c0 < kChunk ? w.rows() : c0 + kChunk;
    std::size_t count = 0;
    for (std::size_t c = c0; c < end; ++c) {
      pruned[count] = static_cast<std::uint32_t>(c);
      count += bits[c] == 0;
    }
    for (std::size_t i = 0; i < m; ++i) {
      float* row = y + i * ldy;
      for (std::size_t j = 0; j < count; ++j) row[pruned[j]] = bias ? bias[pruned[j]] : 0.0f;
    }
  }
}
}  // namespace detail

// int8 activations (already quantized per row). Codes are in [-127, 127] by construction
// (core/quantize_rows.hpp); k <= kMaxS8DotK is checked (check_s8_dot_k): otherwise chord::Error,
// never a silently wrapped sum.
inline void mixed_gemm_s8(const KernelTable& kernels, const QuantizedRows& a, const MixedMatrix& w,
                          const float* bias, float* y, std::size_t ldy) {
  CHORD_CHECK(a.k() == w.cols(), "mixed_gemm_s8: activations have ", a.k(), " columns, weights have ", w.cols());
  check_s8_dot_k(a, "mixed_gemm_s8");
  for (const MixedMatrix::Segment& s : w.segments())
    kernels.s8(s.bits)(a, s.packed, GemmOutput{y, nullptr, ldy, s.channels.data(), bias});
  detail::write_pruned(w, bias, y, ldy, a.m());
}

// fp32 activations; weights dequantized in registers.
inline void mixed_gemm_f32(const KernelTable& kernels, const float* x, std::size_t ldx, std::size_t m,
                           const MixedMatrix& w, const float* bias, float* y, std::size_t ldy) {
  for (const MixedMatrix::Segment& s : w.segments())
    kernels.f32(s.bits)(x, ldx, m, s.packed, GemmOutput{y, nullptr, ldy, s.channels.data(), bias});
  detail::write_pruned(w, bias, y, ldy, m);
}

// Raw int32 dot products in the original channel order (pruned channels: 0). acc: [a.m(), w.rows()].
inline void mixed_gemm_s8_acc(const KernelTable& kernels, const QuantizedRows& a, const MixedMatrix& w,
                              std::int32_t* acc) {
  CHORD_CHECK(a.k() == w.cols(), "mixed_gemm_s8_acc: activations have ", a.k(), " columns, weights have ", w.cols());
  check_s8_dot_k(a, "mixed_gemm_s8_acc");
  for (std::size_t i = 0; i < a.m() * w.rows(); ++i) acc[i] = 0;
  for (const MixedMatrix::Segment& s : w.segments())
    kernels.s8(s.bits)(a, s.packed, GemmOutput{nullptr, acc, w.rows(), s.channels.data(), nullptr});
}

}  // namespace chord::ops
