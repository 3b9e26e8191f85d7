// chord/backends/xsimd/common.hpp: what every xsimd-backend kernel shares, whatever its ISA:
//   - arch_t<Tag>: the xsimd architecture that runs a chord ISA tag's fp32 and epilogue code;
//   - for_each_block: the register-blocking loop (row blocks outer, tile blocks inner);
//   - store_s8_block / store_f32_block: the epilogues, written with xsimd batches.
//
// ODR rule of this backend: every function here that is compiled with ISA flags is a template whose
// arguments include the chord ISA tag (not just the xsimd arch: neon and neon_dotprod share one), so
// two translation units built with different -m/-march flags never emit the same symbol. A shared
// inline function compiled with AVX-512 flags could otherwise be the copy the linker keeps for the
// AVX2 table, and crash an AVX2-only CPU. Non-template helpers from core/ used here are trivial
// accessors, inlined away at -O1 and above. The one sharing left: xsimd's own neon64 templates appear
// in both ARM units; they are one-instruction float / int32 wrappers (inlined at -O2) in which the
// compiler has no integer dot product to turn into sdot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "chord/ops/kernel_table.hpp"

namespace chord::backends::xsimd {

// The xsimd architecture behind each SIMD tag. AVX-512 uses xsimd's avx512f arch: the fp32 path needs
// nothing more, and xsimd 8.1 has no VNNI arch type (the int8 dot products use intrinsics).
template <class Tag>
struct arch_of;
#if XSIMD_WITH_AVX512F
template <>
struct arch_of<isa::avx512_vnni> { using type = ::xsimd::avx512f; };
#endif
#if XSIMD_WITH_FMA3_AVX2
template <>
struct arch_of<isa::avx2> { using type = ::xsimd::fma3<::xsimd::avx2>; };
#endif
#if XSIMD_WITH_NEON64
template <>
struct arch_of<isa::neon> { using type = ::xsimd::neon64; };
template <>
struct arch_of<isa::neon_dotprod> { using type = ::xsimd::neon64; };
#endif
template <class Tag>
using arch_t = typename arch_of<Tag>::type;

template <int N>
using int_c = std::integral_constant<int, N>;

// 4 activation bytes as one int32 (unaligned-safe), for broadcasting into every channel lane.
template <class Tag>
inline std::int32_t load4(const std::int8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// a * b + c with one rounding. xsimd 8.1 has no fma kernel for avx512f (it falls back to a multiply and
// an add, which -ffp-contract=off then keeps apart): call the AVX-512 instruction there.
template <class Tag, class Batch>
inline Batch fused_multiply_add(const Batch& a, const Batch& b, const Batch& c) {
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) return Batch(_mm512_fmadd_ps(a, b, c));
#endif
  return ::xsimd::fma(a, b, c);
}

// Calls block(int_c<R>{}, int_c<T>{}, i0, t0) over the [m rows] x [tiles] iteration space: row blocks
// of RMax outer (then the remaining rows in blocks of RMax/2, RMax/4, ..., 1), tile blocks of TMax
// (then single tiles) inner. Rows outer: a block's activations (R x k bytes) stay in L1 while the
// weights stream past them once per row block (sequentially: the hardware prefetcher keeps up), and
// with m = 1 (gemv) each weight byte is read exactly once. Tiles outer measured up to 2.4x slower once
// a tile block outgrows L1 (k >= 1024 for int8): the activation stream evicts it.
template <class Tag, int R, int TMax, class Block>
inline void for_each_tile_block(std::size_t i0, std::size_t tiles, Block& block) {
  std::size_t t = 0;
  for (; t + TMax <= tiles; t += TMax) block(int_c<R>{}, int_c<TMax>{}, i0, t);
  if constexpr (TMax > 1)
    for (; t < tiles; ++t) block(int_c<R>{}, int_c<1>{}, i0, t);
}
template <class Tag, int R, int TMax, class Block>
inline void for_each_row_block(std::size_t& i, std::size_t m, std::size_t tiles, Block& block) {
  for (; i + R <= m; i += R) for_each_tile_block<Tag, R, TMax>(i, tiles, block);
  if constexpr (R > 1) for_each_row_block<Tag, R / 2, TMax>(i, m, tiles, block);
}
template <class Tag, int RMax, int TMax, class Block>
inline void for_each_block(std::size_t m, std::size_t tiles, Block&& block) {
  std::size_t i = 0;
  for_each_row_block<Tag, RMax, TMax>(i, m, tiles, block);
}

// Whether a whole tile's 16 output columns are columns[0], columns[0] + 1, ..., in vector registers (a
// scalar loop over them cost more than the 16 stores it saves, per row and tile).
template <class Tag>
inline bool consecutive_tile(const std::uint32_t* columns) {
  using U = ::xsimd::batch<std::uint32_t, arch_t<Tag>>;
  alignas(64) static constexpr std::uint32_t kIota[kTileN] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const U first(columns[0]);
  bool consecutive = true;
  for (std::size_t c = 0; c < kTileN; c += U::size)
    consecutive = consecutive && ::xsimd::all(U::load_unaligned(columns + c) == first + U::load_aligned(kIota + c));
  return consecutive;
}

// Writes one row's 16 results of a tile: to y or acc, contiguous or through out.columns. A tile whose
// output columns are consecutive (every tile of a homogeneous matrix, runs within a mixed one) is
// one copy, of a constant size for a whole tile (inlined, where a variable-size memcpy was a libc
// call per row and tile). The columns may come in any order (the contract does not sort them): all
// 16 of them are compared (consecutive_tile); a partial tile takes the scalar stores.
template <class Tag, class T>
inline void scatter_tile(const T (&values)[kTileN], T* row_out, std::size_t r0, std::size_t valid,
                         const GemmOutput& out) {
  std::size_t first = r0;
  if (out.columns != nullptr) {
    const std::uint32_t* columns = out.columns + r0;
    first = columns[0];
    if (valid != kTileN || !consecutive_tile<Tag>(columns)) {
      for (std::size_t c = 0; c < valid; ++c) row_out[columns[c]] = values[c];
      return;
    }
  }
  if (valid == kTileN) std::memcpy(row_out + first, values, sizeof values);
  else std::memcpy(row_out + first, values, valid * sizeof(T));
}

// The bias of a tile's channels (0 past the matrix's rows, or without bias), read once per tile.
template <class Tag>
inline void gather_bias(const GemmOutput& out, std::size_t r0, std::size_t valid, float (&bias)[kTileN]) {
  for (std::size_t c = 0; c < kTileN; ++c)
    bias[c] = (out.bias != nullptr && c < valid) ? out.bias[out.column(r0 + c)] : 0.0f;
}

// int8-path epilogue for R rows x T tiles of raw dot products  dots[r][t*16 + c] = sum_j a u  (or sum a q
// when offset is 0): acc = dot - offset * a.sums()[i], then y = float(acc) * a_scale * w_scale + bias, in
// exactly ref::dequantize_acc's order (two multiplies, then the add; built with -ffp-contract=off).
template <class Tag, int R, int T>
void store_s8_block(const std::int32_t (&dots)[R][T * kTileN], std::int32_t offset, const QuantizedRows& a,
                    std::size_t i0, const PackedMatrix& w, std::size_t t0, const GemmOutput& out) {
  using A = arch_t<Tag>;
  using IntBatch = ::xsimd::batch<std::int32_t, A>;
  using FloatBatch = ::xsimd::batch<float, A>;
  constexpr std::size_t kLanes = FloatBatch::size;
  static_assert(kTileN % kLanes == 0, "a tile is a whole number of SIMD registers");
  for (int t = 0; t < T; ++t) {
    const std::size_t r0 = (t0 + t) * kTileN;
    const std::size_t valid = w.rows() - r0 < kTileN ? w.rows() - r0 : kTileN;
    float bias[kTileN];
    gather_bias<Tag>(out, r0, valid, bias);
    for (int r = 0; r < R; ++r) {
      const std::size_t i = i0 + r;
      const IntBatch correction(offset * a.sums()[i]);
      if (out.acc != nullptr) {
        std::int32_t values[kTileN];
        for (std::size_t c = 0; c < kTileN; c += kLanes)
          (IntBatch::load_unaligned(&dots[r][t * kTileN + c]) - correction).store_unaligned(values + c);
        scatter_tile<Tag>(values, out.acc + i * out.ldy, r0, valid, out);
      } else {
        const FloatBatch a_scale(a.scales()[i]);
        float values[kTileN];
        for (std::size_t c = 0; c < kTileN; c += kLanes) {
          const FloatBatch acc = ::xsimd::to_float(IntBatch::load_unaligned(&dots[r][t * kTileN + c]) - correction);
          const FloatBatch scaled = acc * a_scale * FloatBatch::load_unaligned(w.scales() + r0 + c);
          (scaled + FloatBatch::load_unaligned(bias + c)).store_unaligned(values + c);
        }
        scatter_tile<Tag>(values, out.y + i * out.ldy, r0, valid, out);
      }
    }
  }
}

// fp32-path epilogue for R rows of one tile:  y = w_scale * sum + bias.
template <class Tag, int R>
void store_f32_block(const float (&sums)[R][kTileN], std::size_t i0, const PackedMatrix& w, std::size_t t,
                     const GemmOutput& out) {
  using FloatBatch = ::xsimd::batch<float, arch_t<Tag>>;
  constexpr std::size_t kLanes = FloatBatch::size;
  const std::size_t r0 = t * kTileN;
  const std::size_t valid = w.rows() - r0 < kTileN ? w.rows() - r0 : kTileN;
  float bias[kTileN];
  gather_bias<Tag>(out, r0, valid, bias);
  for (int r = 0; r < R; ++r) {
    float values[kTileN];
    for (std::size_t c = 0; c < kTileN; c += kLanes) {
      const FloatBatch scaled = FloatBatch::load_unaligned(w.scales() + r0 + c) * FloatBatch::load_unaligned(&sums[r][c]);
      (scaled + FloatBatch::load_unaligned(bias + c)).store_unaligned(values + c);
    }
    scatter_tile<Tag>(values, out.y + (i0 + r) * out.ldy, r0, valid, out);
  }
}

}  // namespace chord::backends::xsimd
