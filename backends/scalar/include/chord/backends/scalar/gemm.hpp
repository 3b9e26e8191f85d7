// chord/backends/scalar/gemm.hpp: portable packed-weight kernels (the `Isa::scalar` row of the table).
//
// They walk the packed panels exactly as the SIMD kernels do (tile of 16 channels, k-group of
// 4 * 8/b, bit-plane sub-blocks), one lane at a time: the readable template for a new ISA, and the
// fallback on CPUs with no SIMD kernel. The oracle stays ref/gemm.hpp, which never looks at panels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "chord/backends/scalar/attention.hpp"
#include "chord/backends/scalar/rowops.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::backends::scalar {

// One output row i, one tile t: the 16 int32 dot products sum_j a[j] * u[c][j] (u: stored, unsigned).
template <int Bits>
void dot_tile_s8(const std::int8_t* a, const PackedMatrix& w, std::size_t t, std::int32_t (&acc)[kTileN]) {
  constexpr int kPlanes = 8 / Bits;
  constexpr unsigned kMask = (1u << Bits) - 1u;
  for (auto& v : acc) v = 0;
  const std::uint8_t* panel = w.tile(t);
  for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes) {
    const std::int8_t* ag = a + g * group_k(Bits);
    for (int s = 0; s < kPlanes; ++s)
      for (std::size_t c = 0; c < kTileN; ++c)
        for (std::size_t j = 0; j < kDot; ++j) {
          const unsigned u = (panel[c * kDot + j] >> (s * Bits)) & kMask;
          acc[c] += static_cast<std::int32_t>(u) * ag[s * kDot + j];
        }
  }
}

// w{Bits}a8 gemm: see GemmS8Fn for the contract.
template <int Bits>
void gemm_s8(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  constexpr std::int32_t kOffset = 1 << (Bits - 1);
  std::int32_t acc[kTileN];
  for (std::size_t i = 0; i < a.m(); ++i)
    for (std::size_t t = 0; t < w.tiles(); ++t) {
      dot_tile_s8<Bits>(a.row(i), w, t, acc);
      for (std::size_t c = 0; c < kTileN && t * kTileN + c < w.rows(); ++c) {
        const std::size_t r = t * kTileN + c, col = out.column(r);
        const std::int32_t dot = acc[c] - kOffset * a.sums()[i];
        if (out.acc != nullptr) {
          out.acc[i * out.ldy + col] = dot;
        } else {
          const float bias = out.bias ? out.bias[col] : 0.0f;
          out.y[i * out.ldy + col] = static_cast<float>(dot) * a.scales()[i] * w.scales()[r] + bias;
        }
      }
    }
}

// w{Bits} gemm with fp32 activations: see GemmF32Fn.
template <int Bits>
void gemm_f32(const float* x, std::size_t ldx, std::size_t m, const PackedMatrix& w, const GemmOutput& out) {
  constexpr int kPlanes = 8 / Bits;
  constexpr unsigned kMask = (1u << Bits) - 1u;
  constexpr int kOffset = 1 << (Bits - 1);
  const std::size_t k = w.cols();
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t t = 0; t < w.tiles(); ++t) {
      float acc[kTileN] = {};
      const std::uint8_t* panel = w.tile(t);
      for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes)
        for (int s = 0; s < kPlanes; ++s)
          for (std::size_t j = 0; j < kDot; ++j) {
            const std::size_t col = g * group_k(Bits) + s * kDot + j;
            if (col >= k) break;  // padding past k: x is not padded
            const float xv = x[i * ldx + col];
            for (std::size_t c = 0; c < kTileN; ++c) {
              const int q = static_cast<int>((panel[c * kDot + j] >> (s * Bits)) & kMask) - kOffset;
              acc[c] += xv * static_cast<float>(q);
            }
          }
      for (std::size_t c = 0; c < kTileN && t * kTileN + c < w.rows(); ++c) {
        const std::size_t r = t * kTileN + c, col = out.column(r);
        out.y[i * out.ldy + col] = w.scales()[r] * acc[c] + (out.bias ? out.bias[col] : 0.0f);
      }
    }
}

inline KernelTable kernel_table() {
  // The entry points by name, XNNPACK style: what tests and chord_bench print (ops::gemm_name). Local:
  // emitted only where the table is built, not by every file that includes this header.
  constexpr GemmS8Fn w8a8_gemm__scalar = &gemm_s8<8>;
  constexpr GemmS8Fn w4a8_gemm__scalar = &gemm_s8<4>;
  constexpr GemmS8Fn w2a8_gemm__scalar = &gemm_s8<2>;
  constexpr GemmF32Fn w8f32_gemm__scalar = &gemm_f32<8>;
  constexpr GemmF32Fn w4f32_gemm__scalar = &gemm_f32<4>;
  constexpr GemmF32Fn w2f32_gemm__scalar = &gemm_f32<2>;
  KernelTable table;
  table.isa = Isa::scalar;
  table.backend = "scalar";
  CHORD_SET_GEMMS(table, s8, w8a8_gemm__scalar, w4a8_gemm__scalar, w2a8_gemm__scalar);
  CHORD_SET_GEMMS(table, f32, w8f32_gemm__scalar, w4f32_gemm__scalar, w2f32_gemm__scalar);
  table.quantize_rows = &quantize_rows;  // rowops.hpp
  table.layernorm = &layernorm;
  table.softmax = &softmax;
  table.relu = &relu;
  table.gelu = &gelu;
  table.add = &add;
  table.attention = &attention;  // attention.hpp
  table.attention_row = &attention_row;
  return table;
}

}  // namespace chord::backends::scalar
