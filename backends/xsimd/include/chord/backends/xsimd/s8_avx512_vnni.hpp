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
//   entry points  w{8,4,2}a8_gemm__xsimd_avx512_vnni (the names tests and chord_bench print; gemm.hpp) are
//   gemm_s8_avx512_vnni<Bits> below.
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

// What the epilogue needs of one tile, prepared once and shared by every row of a block: the mask of
// the tile's real channels, their weight scales and bias, and where their outputs go.
//
// Outputs: where a tile's 16 output columns are consecutive (every tile of a homogeneous matrix, runs
// within a mixed one; all 16 compared: the contract allows any order) a row's outputs are one masked store.
// Otherwise the tile's columns are cut into windows of 16 consecutive columns (aligned to 16) holding
// at least one of them, and each window gets a lane permutation (output position p <- tile lane j with column
// base + p) and a store mask: a row's outputs are then one vpermd + one masked store per window, the
// other lanes of the window left as they are. Measured on Zen 4 against the alternatives: vscatterdps
// cost as much as the whole k = 64 dot product, and 16 scalar stores per row about half of that; but
// building the windows costs ~30 instructions per channel, so below kWindowRows rows (a gemv) the
// scalar stores are kept.
inline constexpr std::size_t kWindowRows = 8;  // fewer rows: scalar stores beat building windows

template <int Bits>
struct TileOut {
  __mmask16 valid;
  __m512 w_scale;
  __m512 bias;
  int windows;                          // 0: consecutive columns from `first`; -1: scalar stores
  const std::uint32_t* columns;         // the tile's output columns when windows == -1
  std::size_t first;
  std::size_t base[kTileN];             // window w covers output columns base[w] .. base[w] + 15
  __mmask16 mask[kTileN];               // the positions of window w that this tile writes
  alignas(16) std::uint8_t lane[kTileN][kTileN];  // lane[w][p]: the tile lane that goes to position p

  TileOut() = default;
  // rows: how many rows will be stored through this tile (windows are worth building for many rows).
  void prepare(const PackedMatrix& w, const GemmOutput& out, std::size_t tile, std::size_t rows) {
    const std::size_t r0 = tile * kTileN;
    const std::size_t count = w.rows() - r0 < kTileN ? w.rows() - r0 : kTileN;
    valid = static_cast<__mmask16>((1u << count) - 1u);
    w_scale = _mm512_loadu_ps(w.scales() + r0);  // scales are padded to the tile: a whole load is safe
    first = r0;
    windows = 0;
    if (out.columns != nullptr) {
      const std::uint32_t* columns = out.columns + r0;
      const __m512i got = _mm512_maskz_loadu_epi32(valid, columns);
      const __m512i run = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(columns[0])),
                                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
      first = columns[0];
      if (_mm512_mask_cmpneq_epi32_mask(valid, got, run) == 0) {
        // consecutive: windows = 0
      } else if (rows < kWindowRows) {
        windows = -1;
        this->columns = columns;
      } else {
        // Branch-free (the window starts are data: branching on them mispredicted on every tile).
        // Windows are aligned to 16 columns: window of column c = c / 16, position c % 16. A new window
        // starts whenever a lane's window differs from the previous lane's: at most 16, and correct for
        // columns in any order (a window seen again is a second window with its own lanes).
        // The window's mask is built in a register and only stored (a load of mask[v] after its store
        // made a store-forwarding chain: ~5 cycles per channel).
        for (auto& row : lane) _mm_store_si128(reinterpret_cast<__m128i*>(row), _mm_setzero_si128());
        int v = -1;
        std::size_t previous = ~std::size_t{0};
        unsigned bits = 0;
        for (std::size_t j = 0; j < count; ++j) {
          const std::size_t c = columns[j], block = c / kTileN, p = c % kTileN;
          const bool fresh = block != previous;
          v += fresh;
          previous = block;
          bits = (fresh ? 0u : bits) | (1u << p);
          base[v] = block * kTileN;
          mask[v] = static_cast<__mmask16>(bits);
          lane[v][p] = static_cast<std::uint8_t>(j);
        }
        windows = v + 1;
      }
    }
    bias = _mm512_setzero_ps();
    if (out.bias != nullptr) {
      if (windows == 0) {
        bias = _mm512_maskz_loadu_ps(valid, out.bias + first);
      } else {
        alignas(64) float gathered[kTileN] = {};
        for (std::size_t c = 0; c < count; ++c) gathered[c] = out.bias[out.columns[r0 + c]];
        bias = _mm512_load_ps(gathered);
      }
    }
  }

  // Row i's 16 raw dots of this tile (sum u * a) -> acc = dot - 2^(b-1) * a.sums()[i] -> int32 or
  // y = float(acc) * a_scale * w_scale + bias (ref::dequantize_acc's order: two multiplies, then the
  // add; -ffp-contract=off keeps them apart), stored at the tile's columns of row i.
  [[gnu::always_inline]] void store(__m512i dots, const QuantizedRows& a, std::size_t i, const GemmOutput& out) const {
    // Unsigned product: the same bits as the int32 one, without signed-overflow UB past the k limit.
    const std::uint32_t offset_sum = (1u << (Bits - 1)) * static_cast<std::uint32_t>(a.sums()[i]);
    const __m512i acc = _mm512_sub_epi32(dots, _mm512_set1_epi32(static_cast<std::int32_t>(offset_sum)));
    if (out.acc != nullptr) {
      std::int32_t* row = out.acc + i * out.ldy;
      if (windows == 0) return _mm512_mask_storeu_epi32(row + first, valid, acc);
      if (windows < 0) return scatter(acc, row);
      for (int v = 0; v < windows; ++v)
        _mm512_mask_storeu_epi32(row + base[v], mask[v], _mm512_permutexvar_epi32(lanes(v), acc));
      return;
    }
    const __m512 scaled = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(a.scales()[i])), w_scale);
    const __m512 y = _mm512_add_ps(scaled, bias);
    float* row = out.y + i * out.ldy;
    if (windows == 0) return _mm512_mask_storeu_ps(row + first, valid, y);
    if (windows < 0) return scatter(_mm512_castps_si512(y), reinterpret_cast<std::uint32_t*>(row));
    for (int v = 0; v < windows; ++v)
      _mm512_mask_storeu_ps(row + base[v], mask[v], _mm512_permutexvar_ps(lanes(v), y));
  }

  // Lane j to row[columns[j]], one scalar store each (the bits of an int32 or a float alike).
  template <class T>
  [[gnu::always_inline]] void scatter(__m512i values, T* row) const {
    alignas(64) T lanes_out[kTileN];
    _mm512_store_si512(lanes_out, values);
    const unsigned count = static_cast<unsigned>(__builtin_popcount(valid));
    for (unsigned j = 0; j < count; ++j) row[columns[j]] = lanes_out[j];
  }

  [[gnu::always_inline]] __m512i lanes(int v) const {
    return _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(lane[v])));
  }
};

// Rows i0 .. i0+R-1 x tiles t0 .. t0+T-1: dots over all of k in registers, then the epilogue.
template <int Bits, int R, int T>
void block(const QuantizedRows& a, const PackedMatrix& w, std::size_t i0, std::size_t t0, const GemmOutput& out,
           const TileOut<Bits>* tile_outs) {
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
  const std::size_t stride = a.stride();

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
  for (int t = 0; t < T; ++t)
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) tile_outs[t].store(acc[r][t], a, i0 + r, out);
}

// Calls f(int_c<N>{}) for the runtime n in 1..Max (compile-time block sizes for the tails).
template <int Max, class F>
inline void with_count(std::size_t n, F&& f) {
  if constexpr (Max >= 1) {
    if (n == static_cast<std::size_t>(Max)) f(int_c<Max>{});
    else with_count<Max - 1>(n, f);
  }
}

// Tiles in chunks of kChunkTiles, whose epilogue data (TileOut) is prepared once per chunk and call;
// within a chunk, rows in blocks of RMax (the last block: whatever is left), tiles in blocks of TMax
// likewise. Rows outer within the chunk: a block's activations (R x k bytes) stay in L1 while the
// chunk's weights stream past them; with m = 1 each weight byte is read exactly once. The chunk is
// there for mixed matrices: preparing a tile's output windows per row block instead cost more than
// the stores it saves (200:64:64).
inline constexpr std::size_t kChunkTiles = 16;

template <int Bits, int RMax, int TMax>
void run_blocks(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  TileOut<Bits> tile_outs[kChunkTiles];
  for (std::size_t c0 = 0; c0 < w.tiles(); c0 += kChunkTiles) {
    const std::size_t tiles = w.tiles() - c0 < kChunkTiles ? w.tiles() - c0 : kChunkTiles;
    for (std::size_t t = 0; t < tiles; ++t) tile_outs[t].prepare(w, out, c0 + t, a.m());
    for (std::size_t i0 = 0; i0 < a.m(); i0 += RMax) {
      const std::size_t rows = a.m() - i0 < static_cast<std::size_t>(RMax) ? a.m() - i0 : RMax;
      with_count<RMax>(rows, [&](auto r) {
        constexpr int R = decltype(r)::value;
        std::size_t t = 0;
        for (; t + TMax <= tiles; t += TMax) block<Bits, R, TMax>(a, w, i0, c0 + t, out, tile_outs + t);
        with_count<TMax - 1>(tiles - t, [&](auto n) {
          block<Bits, R, decltype(n)::value>(a, w, i0, c0 + t, out, tile_outs + t);
        });
      });
    }
  }
}

}  // namespace chord::backends::xsimd::avx512_vnni_detail

namespace chord::backends::xsimd {

// w{Bits}a8 on AVX-512 VNNI: see GemmS8Fn. 8 rows x 2 tiles for gemm, 1 row x 8 tiles for gemv.
template <int Bits>
void gemm_s8_avx512_vnni(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  using namespace avx512_vnni_detail;
  if (a.m() == 0 || w.rows() == 0) return;
  if (a.m() == 1)
    run_blocks<Bits, 1, kGemvTiles>(a, w, out);
  else
    run_blocks<Bits, kGemmRows, kGemmTiles>(a, w, out);
}

}  // namespace chord::backends::xsimd
