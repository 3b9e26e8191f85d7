// chord/backends/xsimd/gemm_f32.hpp: the fp32-activation kernels (GemmF32Fn), one xsimd template for
// every ISA of the backend: weights are dequantized in registers, activations stay fp32.
//
//   x: [m, k] (row stride ldx, read only up to k = w.cols(): x is NOT padded)
//   w: [n, k] packed (packed.hpp), y: [m, n] through GemmOutput (columns, bias)
//   y[i][column(r)] = w.scales()[r] * sum_j x[i][j] * q[r][j] + bias[column(r)]
//
// Dequantizing a panel: 32-bit lane c of an int batch holds channel c's 4 bytes (k = 4s + j is bits
// [8j + s*b, 8j + s*b + b) of that word). XOR with 0x80 / 0x88 / 0xAA in every byte turns each stored
// u = q + 2^(b-1) into q's b-bit two's complement (u ^ 2^(b-1) == q mod 2^b), so "shift the field to
// the top, arithmetic shift right by 32 - b" yields q sign-extended: two integer ops and one convert
// per (s, j), shared by the R rows of the block, each of which then does one FMA per register.
#pragma once

#include <cstddef>
#include <cstdint>

#include "chord/backends/xsimd/common.hpp"

namespace chord::backends::xsimd {

namespace f32_detail {

// Rows per block: enough independent FMA chains to hide latency within the register file.
template <class Tag>
constexpr int block_rows() {
  return std::is_same_v<Tag, isa::avx512_vnni> ? 8 : 4;  // zmm: 1 register per tile; ymm 2, NEON 4
}

template <int Bits>
constexpr std::int32_t flip_pattern() {
  return static_cast<std::int32_t>(Bits == 8 ? 0x80808080u : Bits == 4 ? 0x88888888u : 0xAAAAAAAAu);
}

// Independent accumulators per row: the FMAs of one row form a dependency chain, so with few rows
// (gemv) consecutive k go to different chains (4 latency-bound chains in flight), summed at the end.
template <int R>
constexpr int chains() {
  return R >= 4 ? 1 : 4 / R;
}

// Accumulates one packed panel (k-group) into acc for R rows; x_at(r, j) is x of row r at the
// group's j-th k position (j < group_k(Bits)); k position j goes to chain j % kChains.
template <class Tag, int Bits, int R, class FloatBatch, int kChains, std::size_t kRegs, class XAt>
inline void accumulate_panel(const std::uint8_t* panel, FloatBatch (&acc)[kChains][R][kRegs], XAt&& x_at) {
  using IntBatch = ::xsimd::batch<std::int32_t, arch_t<Tag>>;
  constexpr std::size_t kLanes = FloatBatch::size;
  constexpr int kPlanes = 8 / Bits;
  const IntBatch flip(flip_pattern<Bits>());
  IntBatch words[kRegs];
#pragma GCC unroll 4
  for (std::size_t c = 0; c < kRegs; ++c)
    words[c] = IntBatch::load_unaligned(reinterpret_cast<const std::int32_t*>(panel) + c * kLanes) ^ flip;
#pragma GCC unroll 4
  for (int s = 0; s < kPlanes; ++s)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const int field = 8 * j + s * Bits;  // lowest bit of weight (c, 4s + j) in lane c
      FloatBatch weights[kRegs];
#pragma GCC unroll 4
      for (std::size_t c = 0; c < kRegs; ++c)
        weights[c] = ::xsimd::to_float((words[c] << (32 - Bits - field)) >> (32 - Bits));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const FloatBatch xv(x_at(r, static_cast<std::size_t>(4 * s + j)));
#pragma GCC unroll 4
        for (std::size_t c = 0; c < kRegs; ++c) {
          FloatBatch& sum = acc[(4 * s + j) % kChains][r][c];
          sum = fused_multiply_add<Tag>(xv, weights[c], sum);
        }
      }
    }
}

// R rows (i0 ..) x one tile t.
template <class Tag, int Bits, int R>
void block(const float* x, std::size_t ldx, const PackedMatrix& w, std::size_t i0, std::size_t t,
           const GemmOutput& out) {
  using FloatBatch = ::xsimd::batch<float, arch_t<Tag>>;
  constexpr std::size_t kLanes = FloatBatch::size, kRegs = kTileN / kLanes;
  constexpr std::size_t kGroup = group_k(Bits);
  const std::size_t k = w.cols(), full_groups = k / kGroup;
  constexpr int kChains = chains<R>();
  FloatBatch acc[kChains][R][kRegs];
  for (auto& chain : acc)
    for (auto& row : chain)
      for (auto& v : row) v = FloatBatch(0.0f);
  const float* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = x + (i0 + r) * ldx;

  const std::uint8_t* panel = w.tile(t);
  for (std::size_t g = 0; g < full_groups; ++g, panel += kPanelBytes) {
    const std::size_t k0 = g * kGroup;
    accumulate_panel<Tag, Bits, R>(panel, acc, [&](int r, std::size_t j) { return xr[r][k0 + j]; });
  }
  if (full_groups * kGroup < k) {  // the last, partial group: copy what x has, zero the rest
    float tail[R][kGroup] = {};
    for (int r = 0; r < R; ++r)
      for (std::size_t j = 0; full_groups * kGroup + j < k; ++j) tail[r][j] = xr[r][full_groups * kGroup + j];
    accumulate_panel<Tag, Bits, R>(panel, acc, [&](int r, std::size_t j) { return tail[r][j]; });
  }

  float sums[R][kTileN];
  for (int r = 0; r < R; ++r)
    for (std::size_t c = 0; c < kRegs; ++c) {
      FloatBatch sum = acc[0][r][c];
      for (int chain = 1; chain < kChains; ++chain) sum += acc[chain][r][c];
      sum.store_unaligned(&sums[r][c * kLanes]);
    }
  store_f32_block<Tag, R>(sums, i0, w, t, out);
}

}  // namespace f32_detail

// w{Bits} x fp32 activations on a SIMD tag: see GemmF32Fn. Any m, n, k (0 included), any ldx >= k,
// unaligned x / y. (gemm.hpp's gemm_f32<Tag, Bits> is the entry point for every tag.)
template <class Tag, int Bits>
void gemm_f32_simd(const float* x, std::size_t ldx, std::size_t m, const PackedMatrix& w, const GemmOutput& out) {
  for_each_block<Tag, f32_detail::block_rows<Tag>(), 1>(m, w.tiles(), [&](auto rows, auto, std::size_t i0, std::size_t t) {
    f32_detail::block<Tag, Bits, decltype(rows)::value>(x, ldx, w, i0, t, out);
  });
}

}  // namespace chord::backends::xsimd
