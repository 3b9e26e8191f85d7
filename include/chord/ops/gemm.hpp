// chord/ops/gemm.hpp: gemm and gemv on a mixed-precision matrix, through any backend's KernelTable.
//
// The mixed matrix's segments (one per width) each go to the kernel compiled for that width; the
// kernels write straight into the original channel order; pruned channels get just their bias.
// Shapes: x [m, k] (row stride ldx), w [n, k], bias [n] or null, y [m, n] (row stride ldy).
#pragma once

#include <cstddef>

#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::ops {

namespace detail {
// Channels with no segment (0 bits) output their bias (or 0).
inline void write_pruned(const MixedMatrix& w, const float* bias, float* y, std::size_t ldy, std::size_t m) {
  for (std::size_t c = 0; c < w.rows(); ++c) {
    if (w.bits(c) != 0) continue;
    for (std::size_t i = 0; i < m; ++i) y[i * ldy + c] = bias ? bias[c] : 0.0f;
  }
}
}  // namespace detail

// int8 activations (already quantized per row).
inline void mixed_gemm_s8(const KernelTable& kernels, const QuantizedRows& a, const MixedMatrix& w,
                          const float* bias, float* y, std::size_t ldy) {
  CHORD_CHECK(a.k == w.cols(), "mixed_gemm_s8: activations have ", a.k, " columns, weights have ", w.cols());
  for (const MixedMatrix::Segment& s : w.segments())
    kernels.s8(s.bits)(a, s.packed, GemmOutput{y, nullptr, ldy, s.channels.data(), bias});
  detail::write_pruned(w, bias, y, ldy, a.m);
}

// fp32 activations; weights dequantized in registers.
inline void mixed_gemm_f32(const KernelTable& kernels, const float* x, std::size_t ldx, std::size_t m,
                           const MixedMatrix& w, const float* bias, float* y, std::size_t ldy) {
  for (const MixedMatrix::Segment& s : w.segments())
    kernels.f32(s.bits)(x, ldx, m, s.packed, GemmOutput{y, nullptr, ldy, s.channels.data(), bias});
  detail::write_pruned(w, bias, y, ldy, m);
}

// Raw int32 dot products in the original channel order (pruned channels: 0). acc: [a.m, w.rows()].
inline void mixed_gemm_s8_acc(const KernelTable& kernels, const QuantizedRows& a, const MixedMatrix& w,
                              std::int32_t* acc) {
  CHORD_CHECK(a.k == w.cols(), "mixed_gemm_s8_acc: activations have ", a.k, " columns, weights have ", w.cols());
  for (std::size_t i = 0; i < a.m * w.rows(); ++i) acc[i] = 0;
  for (const MixedMatrix::Segment& s : w.segments())
    kernels.s8(s.bits)(a, s.packed, GemmOutput{nullptr, acc, w.rows(), s.channels.data(), nullptr});
}

}  // namespace chord::ops
