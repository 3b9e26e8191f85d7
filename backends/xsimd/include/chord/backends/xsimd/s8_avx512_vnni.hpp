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
//   acc[R][T] zmm accumulators, K loop over panels, epilogue straight from the accumulators.
//
// Why the blocking and the epilogue look the way they do (measured on Zen 4, one vpdpbusd zmm per cycle):
//   - gemm: 8 rows x 2 tiles = 16 accumulators, 2 panel loads + 8 activation broadcasts per 16
//     vpdpbusd. 8 x 3 (24) would load less per dot product, but GCC 12 no longer keeps an accumulator
//     array of that size in registers (it spilled 46 of them: 30 % slower); 4 x 4 measured the same as
//     8 x 2 at M = 200 and slower at M = 16. The rows that do not fill a block run as one smaller
//     block (m = 13: 8 + 5 rows, not 8 + 4 + 1).
//   - gemv: 1 row x 8 tiles: 8 independent accumulator chains (vpdpbusd latency x throughput) and
//     8 weight streams, prefetched a few panels ahead.
//   - The epilogue converts, scales and stores each accumulator directly (masked store for a partial
//     tile; scalar stores through out.columns only for a tile whose columns are not consecutive). It
//     used to go through an int32 array on the stack and a per-row memcpy; at k = 64 that round trip
//     cost more than the dot products (200:64:64 ran at 29 % of peak).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "chord/backends/xsimd/common.hpp"

namespace chord::backends::xsimd::avx512_vnni_detail {

using Tag = isa::avx512_vnni;

inline constexpr int kGemmRows = 8;   // R of the gemm micro-kernel
inline constexpr int kGemmTiles = 2;  // T of the gemm micro-kernel
inline constexpr int kGemvTiles = 8;  // T of the gemv micro-kernel (R = 1)

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

// acc += the 4-byte dot products of u (unsigned) and a (signed) in each int32 lane: vpdpbusd.
// Written as asm with acc as an in-out register: with the intrinsic, GCC 12 copied every accumulator
// to a fresh register and back around each vpdpbusd (two zmm moves per dot product in the loop).
template <int Bits>
inline void dot_accumulate(__m512i& acc, __m512i u, __m512i a) {
#if defined(__GNUC__)
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(a));
#else
  acc = _mm512_dpbusd_epi32(acc, u, a);
#endif
}

// What the epilogue needs of one tile, loaded once and shared by every row of a block: the mask of
// the tile's real channels, their weight scales and bias, and (mixed matrices) their output columns.
template <int Bits>
struct TileOut {
  __mmask16 valid;
  __m512 w_scale;
  __m512 bias;
  std::size_t first;  // output column of the tile's channel 0 when its columns are consecutive
  const std::uint32_t* columns;  // else each channel's output column (a mixed matrix's segment)

  // always_inline: as a call, it made GCC spill and reload every accumulator around it (vzeroupper).
  [[gnu::always_inline]] TileOut(const PackedMatrix& w, const GemmOutput& out, std::size_t tile) {
    const std::size_t r0 = tile * kTileN;
    const std::size_t count = w.rows() - r0 < kTileN ? w.rows() - r0 : kTileN;
    valid = static_cast<__mmask16>((1u << count) - 1u);
    w_scale = _mm512_loadu_ps(w.scales() + r0);  // scales are padded to the tile: a whole load is safe
    first = r0;
    columns = nullptr;
    if (out.columns != nullptr) {
      // A segment's channels are ascending; where a tile's 16 are consecutive (every tile of a
      // homogeneous matrix, runs within a mixed one) its outputs are one masked store. A scatter
      // (vscatterdps) measured as slow as the whole k = 64 dot product on Zen 4.
      const __m512i got = _mm512_maskz_loadu_epi32(valid, out.columns + r0);
      const __m512i run = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(out.columns[r0])),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
      if (_mm512_mask_cmpneq_epi32_mask(valid, got, run) == 0) first = out.columns[r0];
      else columns = out.columns + r0;
    }
    bias = _mm512_setzero_ps();
    if (out.bias != nullptr) {
      if (columns == nullptr) {
        bias = _mm512_maskz_loadu_ps(valid, out.bias + first);
      } else {
        alignas(64) float gathered[kTileN] = {};
        for (std::size_t c = 0; c < count; ++c) gathered[c] = out.bias[columns[c]];
        bias = _mm512_load_ps(gathered);
      }
    }
  }

  // Row i's 16 raw dots of this tile (sum u * a) -> acc = dot - 2^(b-1) * a.sums[i] -> int32 or
  // y = float(acc) * a_scale * w_scale + bias (ref::dequantize_acc's order: two multiplies, then the
  // add; -ffp-contract=off keeps them apart), stored at the tile's columns of row i.
  [[gnu::always_inline]] void store(__m512i dots, const QuantizedRows& a, std::size_t i, const GemmOutput& out) const {
    // Unsigned product: the same bits as the int32 one, without signed-overflow UB past the k limit.
    const std::uint32_t offset_sum = (1u << (Bits - 1)) * static_cast<std::uint32_t>(a.sums[i]);
    const __m512i acc = _mm512_sub_epi32(dots, _mm512_set1_epi32(static_cast<std::int32_t>(offset_sum)));
    if (out.acc != nullptr) {
      if (columns == nullptr) return _mm512_mask_storeu_epi32(out.acc + i * out.ldy + first, valid, acc);
      alignas(64) std::int32_t values[kTileN];
      _mm512_store_si512(values, acc);
      scatter(values, out.acc + i * out.ldy);
      return;
    }
    const __m512 scaled = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(a.scales[i])), w_scale);
    const __m512 y = _mm512_add_ps(scaled, bias);
    if (columns == nullptr) return _mm512_mask_storeu_ps(out.y + i * out.ldy + first, valid, y);
    alignas(64) float values[kTileN];
    _mm512_store_ps(values, y);
    scatter(values, out.y + i * out.ldy);
  }

  // Scalar stores through the column list: cheaper than vscatterdps on Zen 4.
  template <class T>
  [[gnu::always_inline]] void scatter(const T (&values)[kTileN], T* row) const {
    const unsigned count = static_cast<unsigned>(__builtin_popcount(valid));
    for (unsigned c = 0; c < count; ++c) row[columns[c]] = values[c];
  }
};

// Rows i0 .. i0+R-1 x tiles t0 .. t0+T-1: dots over all of k in registers, then the epilogue.
template <int Bits, int R, int T>
void block(const QuantizedRows& a, const PackedMatrix& w, std::size_t i0, std::size_t t0, const GemmOutput& out) {
  constexpr int kPlanes = 8 / Bits;
  constexpr std::size_t kGroup = group_k(Bits);
  __m512i acc[R][T];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_si512();
  const std::uint8_t* const tile = w.tile(t0);
  const std::size_t tile_bytes = w.tile_bytes();
  const std::int8_t* const row = a.row(i0);
  const std::size_t stride = a.stride;

  const std::size_t groups = w.groups();
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint8_t* const panels = tile + g * kPanelBytes;
    if constexpr (R == 1) {
      // gemv: one pass over memory; fetch the panels a few hundred bytes ahead of use.
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        _mm_prefetch(reinterpret_cast<const char*>(panels + t * tile_bytes + 8 * kPanelBytes), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int s = 0; s < kPlanes; ++s) {
      // Each sub-block re-reads its panel (an L1 hit the shift takes as its memory operand) rather than
      // keeping T panels live across the sub-blocks: the registers go to the accumulators.
      __m512i planes[T];
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) planes[t] = plane<Bits>(_mm512_loadu_si512(panels + t * tile_bytes), s);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m512i activations = _mm512_set1_epi32(load4<Tag>(row + r * stride + g * kGroup + 4 * s));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) dot_accumulate<Bits>(acc[r][t], planes[t], activations);
      }
    }
  }

#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const TileOut<Bits> tile_out(w, out, t0 + t);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) tile_out.store(acc[r][t], a, i0 + r, out);
  }
}

// Calls f(int_c<N>{}) for the runtime n in 1..Max (compile-time block sizes for the tails).
template <int Max, class F>
inline void with_count(std::size_t n, F&& f) {
  if constexpr (Max >= 1) {
    if (n == static_cast<std::size_t>(Max)) f(int_c<Max>{});
    else with_count<Max - 1>(n, f);
  }
}

// Rows in blocks of RMax (the last block: whatever is left), tiles in blocks of TMax likewise. Rows
// outer: a block's activations (R x k bytes) stay in L1 while the weights stream past them once per
// row block; with m = 1 each weight byte is read exactly once.
template <int Bits, int RMax, int TMax>
void run_blocks(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  const std::size_t tiles = w.tiles();
  for (std::size_t i0 = 0; i0 < a.m; i0 += RMax) {
    const std::size_t rows = a.m - i0 < static_cast<std::size_t>(RMax) ? a.m - i0 : RMax;
    with_count<RMax>(rows, [&](auto r) {
      constexpr int R = decltype(r)::value;
      std::size_t t0 = 0;
      for (; t0 + TMax <= tiles; t0 += TMax) block<Bits, R, TMax>(a, w, i0, t0, out);
      with_count<TMax - 1>(tiles - t0, [&](auto t) { block<Bits, R, decltype(t)::value>(a, w, i0, t0, out); });
    });
  }
}

}  // namespace chord::backends::xsimd::avx512_vnni_detail

namespace chord::backends::xsimd {

// w{Bits}a8 on AVX-512 VNNI: see GemmS8Fn. 8 rows x 2 tiles for gemm, 1 row x 8 tiles for gemv.
template <int Bits>
void gemm_s8_avx512_vnni(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  using namespace avx512_vnni_detail;
  if (a.m == 0 || w.rows() == 0) return;
  if (a.m == 1)
    run_blocks<Bits, 1, kGemvTiles>(a, w, out);
  else
    run_blocks<Bits, kGemmRows, kGemmTiles>(a, w, out);
}

}  // namespace chord::backends::xsimd
