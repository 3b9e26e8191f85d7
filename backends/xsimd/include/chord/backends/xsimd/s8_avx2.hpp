// chord/backends/xsimd/s8_avx2.hpp: w{8,4,2}a8 kernels for AVX2 (ymm, no VNNI).
//
// Intrinsics, not xsimd batches: xsimd 8.1 has no u8 x s8 multiply-add. The dot product is
// vpmaddubsw(u8, s8) -> int16 pairs, then vpmaddwd(pairs, 1) -> int32 lanes (the sum of each lane's 4
// products), added to the accumulator. A 16-channel tile is two ymm halves of 8 channels.
//   - int4 / int2: the stored u (<= 15) is the unsigned operand as it is: a pair is at most
//     2 * 15 * 127 = 3810, so the sub-blocks of one panel add up in int16 before the single
//     vpmaddwd (<= 7620 for int4, 3048 for int2). The epilogue subtracts 2^(b-1) * rowsum(a).
//   - int8: u * a pairs reach 2 * 255 * 127 > 32767 and vpmaddubsw would saturate. So the weight is
//     flipped to its signed code q = u ^ 0x80 and the product is formed as |q| * (a * sign(q))
//     (vpabsb once per panel, vpsignb per row): |q| <= 128 is a valid u8, a * sign(q) stays in
//     [-127, 127], a pair is at most 2 * 128 * 127 = 32512: no saturation, no offset correction.
//     (Measured on Zen 4 against widening q and a to int16 for vpmaddwd, and against splitting u into
//     nibbles with two vpmaddubsw: this is the fastest of the three, 127 vs 91 and 98 GOPS.)
// Exactness of the int32 sums: as for VNNI, k <= 66311.
//
//   micro-kernel  w{b}a8_gemm_{R}x16c4__avx2:  R rows x 1 tile, acc[R][2] ymm accumulators.
//   entry points  w{8,4,2}a8_gemm__xsimd_avx2 (the names tests and chord_bench print; gemm.hpp) are
//   gemm_s8_avx2<Bits> below.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "chord/backends/xsimd/common.hpp"

namespace chord::backends::xsimd::avx2_detail {

using Tag = isa::avx2;

template <int Bits>
inline __m256i plane(__m256i half, int s) {
  const __m256i mask = _mm256_set1_epi8(static_cast<char>((1 << Bits) - 1));
  return _mm256_and_si256(_mm256_srli_epi16(half, s * Bits), mask);
}

template <int Bits, int R, int T>
void block(const QuantizedRows& a, const PackedMatrix& w, std::size_t i0, std::size_t t0, const GemmOutput& out) {
  constexpr int kPlanes = 8 / Bits;
  constexpr int kHalves = 2 * T;  // ymm registers per panel row of the block
  constexpr std::size_t kGroup = group_k(Bits);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[R][kHalves];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int h = 0; h < kHalves; ++h) acc[r][h] = _mm256_setzero_si256();
  const std::uint8_t* panel[T];
  for (int t = 0; t < T; ++t) panel[t] = w.tile(t0 + t);
  const std::int8_t* row[R];
  for (int r = 0; r < R; ++r) row[r] = a.row(i0 + r);

  const std::size_t groups = w.groups();
  for (std::size_t g = 0; g < groups; ++g) {
    __m256i halves[kHalves];
#pragma GCC unroll 4
    for (int h = 0; h < kHalves; ++h)
      halves[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel[h / 2] + g * kPanelBytes + (h % 2) * 32));
    if constexpr (R == 1) {
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t)
        _mm_prefetch(reinterpret_cast<const char*>(panel[t] + (g + 8) * kPanelBytes), _MM_HINT_T0);
    }
    if constexpr (Bits == 8) {
      // One half at a time (its q and |q| live), rows inner: 16 ymm registers hold it all.
#pragma GCC unroll 4
      for (int h = 0; h < kHalves; ++h) {
        const __m256i q = _mm256_xor_si256(halves[h], _mm256_set1_epi8(static_cast<char>(0x80)));
        const __m256i magnitude = _mm256_abs_epi8(q);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m256i activations = _mm256_set1_epi32(load4<Tag>(row[r] + g * kGroup));
          const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(activations, q));
          acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(pairs, ones));
        }
      }
    } else {
      __m256i planes[kHalves][kPlanes];
#pragma GCC unroll 4
      for (int h = 0; h < kHalves; ++h)
#pragma GCC unroll 4
        for (int s = 0; s < kPlanes; ++s) planes[h][s] = plane<Bits>(halves[h], s);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        __m256i activations[kPlanes];
#pragma GCC unroll 4
        for (int s = 0; s < kPlanes; ++s)
          activations[s] = _mm256_set1_epi32(load4<Tag>(row[r] + g * kGroup + 4 * s));
#pragma GCC unroll 4
        for (int h = 0; h < kHalves; ++h) {
          __m256i pairs = _mm256_maddubs_epi16(planes[h][0], activations[0]);
#pragma GCC unroll 4
          for (int s = 1; s < kPlanes; ++s)
            pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(planes[h][s], activations[s]));
          acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(pairs, ones));
        }
      }
    }
  }

  std::int32_t dots[R][T * kTileN];
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < kHalves; ++h) _mm256_storeu_si256(reinterpret_cast<__m256i*>(&dots[r][h * 8]), acc[r][h]);
  store_s8_block<Tag, R, T>(dots, Bits == 8 ? 0 : 1 << (Bits - 1), a, i0, w, t0, out);
}

}  // namespace chord::backends::xsimd::avx2_detail

namespace chord::backends::xsimd {

// w{Bits}a8 on AVX2: see GemmS8Fn. 4 rows x 1 tile (8 ymm accumulators) for gemm; gemv sweeps
// 2 tiles at once.
template <int Bits>
void gemm_s8_avx2(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  auto block = [&](auto rows, auto tiles, std::size_t i0, std::size_t t0) {
    avx2_detail::block<Bits, decltype(rows)::value, decltype(tiles)::value>(a, w, i0, t0, out);
  };
  if (a.m() == 1)
    for_each_block<isa::avx2, 1, 2>(a.m(), w.tiles(), block);
  else
    for_each_block<isa::avx2, 4, 1>(a.m(), w.tiles(), block);
}

}  // namespace chord::backends::xsimd
