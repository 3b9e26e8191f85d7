// chord/backends/xsimd/s8_neon.hpp: w{8,4,2}a8 kernels for ARM NEON (armv8-a) and NEON dotprod
// (armv8.2-a sdot).
//
// Intrinsics, not xsimd batches: xsimd 8.1 has neither sdot nor widening multiplies. A 16-channel
// tile is 4 q-registers of 4 channels x 4 k bytes. Both instructions here are signed x signed, so:
//   - int4 / int2: the stored u (<= 15) is a valid s8 as it is: the kernel multiplies u and the
//     epilogue subtracts 2^(b-1) * rowsum(a), as with vpdpbusd;
//   - int8: u ^ 0x80 is the signed code q itself: multiply q, no correction.
// dotprod: sdot (vdotq_s32) adds the 4 byte products of each int32 lane: one instruction per
//   q-register and activation group.
// plain NEON: vmull_s8 multiplies 8 bytes (2 channels x 4 k) into int16, the int4 / int2 sub-blocks of a
//   panel add in int16 (vmlal_s8: |u a| <= 15 * 127, 4 products < 32767; int8: one product
//   |q a| <= 128 * 127), and vpadalq_s16 folds adjacent pairs into int32. A lane then holds half of a
//   channel's sum (k = 0,1 or 2,3 of each group), so each channel has two partial accumulators that
//   vpaddq_s32 joins at the end.
// Exactness of the int32 sums: k <= 66311 (as for VNNI).
//
//   micro-kernels  w{b}a8_gemm_{R}x16c4__neondot (R = 4), w{b}a8_gemm_{R}x16c4__neon (R = 2).
//   entry points  w{8,4,2}a8_gemm__xsimd_neon_dotprod, _neon (the names tests and chord_bench print; gemm.hpp) are
//   gemm_s8_neon{_dotprod,}<Bits> below.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "chord/backends/xsimd/common.hpp"

namespace chord::backends::xsimd::neon_detail {

// Sub-block s of a q-register of a panel, as s8 lanes: q for int8, u for int4 / int2. The shift is
// vshlq_u8 by a negative count (a right shift): s is a loop index, a constant only after unrolling,
// and vshrq_n_u8 needs an immediate. Tag keeps the neon and neon_dotprod copies apart (common.hpp).
template <class Tag, int Bits>
inline int8x16_t plane(uint8x16_t v, int s) {
  if constexpr (Bits == 8) {
    return vreinterpretq_s8_u8(veorq_u8(v, vdupq_n_u8(0x80)));
  } else {
    const uint8x16_t mask = vdupq_n_u8(static_cast<std::uint8_t>((1 << Bits) - 1));
    return vreinterpretq_s8_u8(vandq_u8(vshlq_u8(v, vdupq_n_s8(static_cast<std::int8_t>(-s * Bits))), mask));
  }
}

#if defined(__ARM_FEATURE_DOTPROD)
template <int Bits, int R, int T>
void block_dotprod(const QuantizedRows& a, const PackedMatrix& w, std::size_t i0, std::size_t t0,
                   const GemmOutput& out) {
  using Tag = isa::neon_dotprod;
  constexpr int kPlanes = 8 / Bits;
  constexpr int kRegs = 4 * T;  // q-registers per panel row of the block
  constexpr std::size_t kGroup = group_k(Bits);
  int32x4_t acc[R][kRegs];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < kRegs; ++q) acc[r][q] = vdupq_n_s32(0);
  const std::uint8_t* panel[T];
  for (int t = 0; t < T; ++t) panel[t] = w.tile(t0 + t);
  const std::int8_t* row[R];
  for (int r = 0; r < R; ++r) row[r] = a.row(i0 + r);

  const std::size_t groups = w.groups();
  for (std::size_t g = 0; g < groups; ++g) {
    uint8x16_t raw[kRegs];
#pragma GCC unroll 8
    for (int q = 0; q < kRegs; ++q) raw[q] = vld1q_u8(panel[q / 4] + g * kPanelBytes + (q % 4) * 16);
#pragma GCC unroll 4
    for (int s = 0; s < kPlanes; ++s) {
      int8x16_t planes[kRegs];
#pragma GCC unroll 8
      for (int q = 0; q < kRegs; ++q) planes[q] = plane<Tag, Bits>(raw[q], s);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int8x16_t activations = vreinterpretq_s8_s32(vdupq_n_s32(load4<Tag>(row[r] + g * kGroup + 4 * s)));
#pragma GCC unroll 8
        for (int q = 0; q < kRegs; ++q) acc[r][q] = vdotq_s32(acc[r][q], planes[q], activations);
      }
    }
  }

  std::int32_t dots[R][T * kTileN];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < kRegs; ++q) vst1q_s32(&dots[r][q * 4], acc[r][q]);
  store_s8_block<Tag, R, T>(dots, Bits == 8 ? 0 : 1 << (Bits - 1), a, i0, w, t0, out);
}
#endif

template <int Bits, int R, int T>
void block_plain(const QuantizedRows& a, const PackedMatrix& w, std::size_t i0, std::size_t t0,
                 const GemmOutput& out) {
  using Tag = isa::neon;
  constexpr int kPlanes = 8 / Bits;
  constexpr int kRegs = 4 * T;
  constexpr std::size_t kGroup = group_k(Bits);
  int32x4_t acc[R][2 * kRegs];  // [2q]: channels 4q, 4q+1; [2q+1]: 4q+2, 4q+3; two partial sums each
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 2 * kRegs; ++q) acc[r][q] = vdupq_n_s32(0);
  const std::uint8_t* panel[T];
  for (int t = 0; t < T; ++t) panel[t] = w.tile(t0 + t);
  const std::int8_t* row[R];
  for (int r = 0; r < R; ++r) row[r] = a.row(i0 + r);

  const std::size_t groups = w.groups();
  for (std::size_t g = 0; g < groups; ++g) {
    int8x16_t planes[kRegs][kPlanes];
#pragma GCC unroll 8
    for (int q = 0; q < kRegs; ++q) {
      const uint8x16_t raw = vld1q_u8(panel[q / 4] + g * kPanelBytes + (q % 4) * 16);
#pragma GCC unroll 4
      for (int s = 0; s < kPlanes; ++s) planes[q][s] = plane<Tag, Bits>(raw, s);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int8x8_t activations[kPlanes];  // the group's 4 bytes of sub-block s, twice (2 channels)
#pragma GCC unroll 4
      for (int s = 0; s < kPlanes; ++s)
        activations[s] = vreinterpret_s8_s32(vdup_n_s32(load4<Tag>(row[r] + g * kGroup + 4 * s)));
#pragma GCC unroll 8
      for (int q = 0; q < kRegs; ++q) {
        int16x8_t low = vmull_s8(vget_low_s8(planes[q][0]), activations[0]);
        int16x8_t high = vmull_s8(vget_high_s8(planes[q][0]), activations[0]);
#pragma GCC unroll 4
        for (int s = 1; s < kPlanes; ++s) {
          low = vmlal_s8(low, vget_low_s8(planes[q][s]), activations[s]);
          high = vmlal_s8(high, vget_high_s8(planes[q][s]), activations[s]);
        }
        acc[r][2 * q] = vpadalq_s16(acc[r][2 * q], low);
        acc[r][2 * q + 1] = vpadalq_s16(acc[r][2 * q + 1], high);
      }
    }
  }

  std::int32_t dots[R][T * kTileN];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < kRegs; ++q) vst1q_s32(&dots[r][q * 4], vpaddq_s32(acc[r][2 * q], acc[r][2 * q + 1]));
  store_s8_block<Tag, R, T>(dots, Bits == 8 ? 0 : 1 << (Bits - 1), a, i0, w, t0, out);
}

}  // namespace chord::backends::xsimd::neon_detail

namespace chord::backends::xsimd {

#if defined(__ARM_FEATURE_DOTPROD)
// w{Bits}a8 with sdot: see GemmS8Fn. 4 rows x 1 tile (16 accumulators); gemv: 2 tiles.
template <int Bits>
void gemm_s8_neon_dotprod(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  auto block = [&](auto rows, auto tiles, std::size_t i0, std::size_t t0) {
    neon_detail::block_dotprod<Bits, decltype(rows)::value, decltype(tiles)::value>(a, w, i0, t0, out);
  };
  if (a.m() == 1)
    for_each_block<isa::neon_dotprod, 1, 2>(a.m(), w.tiles(), block);
  else
    for_each_block<isa::neon_dotprod, 4, 1>(a.m(), w.tiles(), block);
}
#endif

// w{Bits}a8 with vmull/vpadal: see GemmS8Fn. 2 rows x 1 tile (16 accumulators).
template <int Bits>
void gemm_s8_neon(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  for_each_block<isa::neon, 2, 1>(a.m(), w.tiles(), [&](auto rows, auto tiles, std::size_t i0, std::size_t t0) {
    neon_detail::block_plain<Bits, decltype(rows)::value, decltype(tiles)::value>(a, w, i0, t0, out);
  });
}

}  // namespace chord::backends::xsimd
