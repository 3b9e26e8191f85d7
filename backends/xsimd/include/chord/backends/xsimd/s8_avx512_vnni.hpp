// chord/backends/xsimd/s8_avx512_vnni.hpp: w{8,4,2}a8 kernels for AVX-512 VNNI (zmm, vpdpbusd).
//
// Intrinsics, not xsimd batches: xsimd 8.1 has no VNNI arch type and no u8 x s8 dot product.
// vpdpbusd(acc, u8 x 64, s8 x 64) adds, in each int32 lane, the 4 products of its 4 byte pairs: with a
// 64-byte panel (lane c = channel c's 4 weights) as the unsigned operand and 4 activation bytes
// broadcast to every lane as the signed one, one instruction does 16 channels x 4 k. The stored codes
// u = q + 2^(b-1) are exactly the unsigned operand, so the epilogue subtracts 2^(b-1) * rowsum(a) once
// per output. int4 / int2 panels unpack with one shift + AND per sub-block, done once per panel and
// reused by all the rows of the block.
//
// Exactness: a lane accumulates sum_j u*a with u <= 255, |a| <= 127, so |acc| <= 32385 k < 2^31 for
// k <= 66311 (k = 2^16 included); vpdpbusd does not saturate. Beyond that the int32 sums may wrap.
//
//   micro-kernel  w{b}a8_gemm_{R}x{16T}c4__avx512vnni:  R rows x T tiles of 16 channels,
//   acc[R][T] zmm accumulators, K loop over panels.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "chord/backends/xsimd/common.hpp"

namespace chord::backends::xsimd::avx512_vnni_detail {

using Tag = isa::avx512_vnni;

// Sub-block s of a panel as 64 u8 lanes (shift by 16-bit lanes, then the mask drops the bits that
// crossed in from the neighbouring byte).
template <int Bits>
inline __m512i plane(__m512i panel, int s) {
  if constexpr (Bits == 8) {
    return panel;
  } else {
    const __m512i mask = _mm512_set1_epi8(static_cast<char>((1 << Bits) - 1));
    return _mm512_and_si512(_mm512_srli_epi16(panel, static_cast<unsigned>(s * Bits)), mask);
  }
}

// Rows i0 .. i0+R-1 x tiles t0 .. t0+T-1: raw dots sum_j a[i][j] * u[r][j] into the epilogue.
template <int Bits, int R, int T>
void block(const QuantizedRows& a, const PackedMatrix& w, std::size_t i0, std::size_t t0, const GemmOutput& out) {
  constexpr int kPlanes = 8 / Bits;
  constexpr std::size_t kGroup = group_k(Bits);
  __m512i acc[R][T];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
  const std::uint8_t* panel[T];
  for (int t = 0; t < T; ++t) panel[t] = w.tile(t0 + t);
  const std::int8_t* row[R];
  for (int r = 0; r < R; ++r) row[r] = a.row(i0 + r);

  const std::size_t groups = w.groups();
  for (std::size_t g = 0; g < groups; ++g) {
    __m512i weights[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) weights[t] = _mm512_loadu_si512(panel[t] + g * kPanelBytes);
    if constexpr (R == 1) {
      // gemv: one pass over memory; fetch the panels a few hundred bytes ahead of use.
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t)
        _mm_prefetch(reinterpret_cast<const char*>(panel[t] + (g + 8) * kPanelBytes), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int s = 0; s < kPlanes; ++s) {
      __m512i planes[T];
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) planes[t] = plane<Bits>(weights[t], s);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m512i activations = _mm512_set1_epi32(load4<Tag>(row[r] + g * kGroup + 4 * s));
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], planes[t], activations);
      }
    }
  }

  std::int32_t dots[R][T * kTileN];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) _mm512_storeu_si512(&dots[r][t * kTileN], acc[r][t]);
  store_s8_block<Tag, R, T>(dots, 1 << (Bits - 1), a, i0, w, t0, out);
}

}  // namespace chord::backends::xsimd::avx512_vnni_detail

namespace chord::backends::xsimd {

// w{Bits}a8 on AVX-512 VNNI: see GemmS8Fn. 8 rows x 2 tiles (16 zmm accumulators) for gemm; a single
// row sweeps 4 tiles at once (4 independent streams and dependency chains) for gemv.
template <int Bits>
void gemm_s8_avx512_vnni(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  auto block = [&](auto rows, auto tiles, std::size_t i0, std::size_t t0) {
    avx512_vnni_detail::block<Bits, decltype(rows)::value, decltype(tiles)::value>(a, w, i0, t0, out);
  };
  if (a.m == 1)
    for_each_block<isa::avx512_vnni, 1, 4>(a.m, w.tiles(), block);
  else
    for_each_block<isa::avx512_vnni, 8, 2>(a.m, w.tiles(), block);
}

}  // namespace chord::backends::xsimd
