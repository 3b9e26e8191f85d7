// chord/backends/highway/dot-inl.hpp: the one ISA-specific step of the Highway kernels, per target.
//
// Included once per Highway target (foreach_target.h re-includes it, hence the toggle guard instead
// of #pragma once). Everything else in the kernels is portable Highway; this file holds:
//   CHORD_HWY_ATTR     the target attribute every kernel function carries (Highway's own, plus
//                      avx512vnni on AVX3_DL, plus dotprod in the neon_dotprod translation unit);
//   kSignedWeights<b>  whether DotStep wants signed codes q instead of the stored codes u;
//   WeightPlane<b, p>  sub-block p of a packed panel slice as bytes (AND + shift, packed.hpp);
//   DotStep            acc[c] += sum_{j<4} w[4c + j] * a[j] on every 32-bit lane c.
//
// Highway 1.0.3 has no SumOfMulQuadAccumulate and its ReorderWidenMulAccumulate does not keep the
// products of one 32-bit lane together on NEON, so the 4-byte dot product is written per target:
//   AVX3_DL       vpdpbusd (u8 x s8 -> s32, no saturation): stored codes u, offset corrected later;
//   AVX2          vpmaddubsw + vpmaddwd. maddubs saturates at 16 bits: with u <= 15 (int4/int2) the
//                 pair sum is <= 2*15*127, exact; 8-bit uses |q| (<= 128, unsigned) times a * sign(q)
//                 (within +-127), pair sum <= 2*128*127 = 32512 < 32767, exact;
//   NEON          smull/smull2 (s8 x s8 -> s16), addp, sadalp: pair sums as for AVX2, exact;
//   NEON dotprod  sdot (s8 x s8 -> s32); SVE: svdot (the same, any vector length).
// The signed-by-signed forms cannot take u up to 255: 8-bit weights go in as q = u ^ 0x80 (u - 128),
// which needs no offset correction; 4- and 2-bit u (<= 15) already fit in an int8.
//
// Precondition: activation codes are in [-127, 127], as QuantizedRows makes them (-128 would break
// the 16-bit pair sums of AVX2 and NEON above).

#if defined(CHORD_BACKENDS_HIGHWAY_DOT_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHORD_BACKENDS_HIGHWAY_DOT_INL_HPP_
#undef CHORD_BACKENDS_HIGHWAY_DOT_INL_HPP_
#else
#define CHORD_BACKENDS_HIGHWAY_DOT_INL_HPP_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"

#ifndef CHORD_HWY_VARIANT
#define CHORD_HWY_VARIANT dynamic  // namespace of this translation unit's kernels (see tables-inl.hpp)
#endif

// The targets chord has kernels for; others (SSE4, the scalar fallbacks) compile to nothing.
#undef CHORD_HWY_HAVE_KERNELS
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_NEON || HWY_TARGET == HWY_SVE
#define CHORD_HWY_HAVE_KERNELS 1
#else
#define CHORD_HWY_HAVE_KERNELS 0
#endif

// Highway 1.0.3's AVX3_DL target string lists "avxvnni" (the VEX form, which e.g. Zen 4 lacks) but
// not "avx512vnni", which _mm512_dpbusd_epi32 needs: only that 512-bit (EVEX) form is used here. The
// neon_dotprod unit adds dotprod to the plain NEON target. Every kernel function carries the
// attribute, so that the intrinsics can inline into it.
#undef CHORD_HWY_ATTR
#if HWY_TARGET == HWY_AVX3_DL
#define CHORD_HWY_ATTR __attribute__((target(HWY_TARGET_STR ",avx512vnni")))
#elif HWY_TARGET == HWY_NEON && defined(CHORD_HWY_DOTPROD)
// arm_neon.h declares vdotq_s32 under arch=armv8.2-a+dotprod: the caller must include all of it.
#define CHORD_HWY_ATTR __attribute__((target("arch=armv8.2-a+crypto+dotprod")))
#else
#define CHORD_HWY_ATTR
#endif

#if CHORD_HWY_HAVE_KERNELS
HWY_BEFORE_NAMESPACE();
namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One slice of a 16-channel tile: up to 16 int32 lanes (a whole tile on 512-bit vectors, a quarter
// on 128-bit ones); SVE vectors longer than 512 bits are capped, never spanning two tiles.
using D32 = hn::CappedTag<std::int32_t, 16>;
using D8 = hn::Repartition<std::int8_t, D32>;
using DU8 = hn::Repartition<std::uint8_t, D32>;
using DU16 = hn::Repartition<std::uint16_t, D32>;
using V32 = hn::VFromD<D32>;
using V8 = hn::VFromD<D8>;

// true: DotStep multiplies signed codes q (8-bit weights arrive as u ^ 0x80); false: stored codes u.
template <int Bits>
constexpr bool kSignedWeights = Bits == 8 && HWY_TARGET != HWY_AVX3_DL;

// Sub-block `Plane` of the panel slice at `panel` (64 / Lanes(D8) slices per 64-byte panel),
// ready for DotStep: u in [0, 2^Bits), or q for 8-bit weights on the signed targets.
template <int Bits, int Plane>
HWY_INLINE CHORD_HWY_ATTR V8 WeightPlane(const std::uint8_t* panel) {
  const DU8 du8;
  auto w = hn::LoadU(du8, panel);
  if constexpr (Bits != 8) {
    if constexpr (Plane > 0) w = hn::BitCast(du8, hn::ShiftRight<Plane * Bits>(hn::BitCast(DU16(), w)));
    w = hn::And(w, hn::Set(du8, static_cast<std::uint8_t>((1u << Bits) - 1u)));
  } else if constexpr (kSignedWeights<Bits>) {
    w = hn::Xor(w, hn::Set(du8, std::uint8_t{0x80}));
  }
  return hn::BitCast(D8(), w);
}

// The 4 activation bytes at `a` in every 32-bit lane (a broadcast; `a` needs no alignment).
HWY_INLINE CHORD_HWY_ATTR V8 ActivationQuad(const std::int8_t* a) {
  std::int32_t quad;
  std::memcpy(&quad, a, sizeof quad);
  return hn::BitCast(D8(), hn::Set(D32(), quad));
}

// acc[c] += sum_{j<4} w[4c + j] * a[4c + j] (a holds the same 4 bytes in every lane), exactly.
template <int Bits>
HWY_INLINE CHORD_HWY_ATTR V32 DotStep(V32 acc, V8 w, V8 a) {
#if HWY_TARGET == HWY_AVX3_DL
  return V32{_mm512_dpbusd_epi32(acc.raw, w.raw, a.raw)};
#elif HWY_TARGET == HWY_AVX2
  __m256i pairs;  // 16-bit sums of two products, exact (see the file comment)
  if constexpr (Bits == 8) {
    pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w.raw), _mm256_sign_epi8(a.raw, w.raw));
  } else {
    pairs = _mm256_maddubs_epi16(w.raw, a.raw);
  }
  return hn::Add(acc, V32{_mm256_madd_epi16(pairs, _mm256_set1_epi16(1))});
#elif HWY_TARGET == HWY_NEON && defined(CHORD_HWY_DOTPROD)
  return V32(vdotq_s32(acc.raw, w.raw, a.raw));
#elif HWY_TARGET == HWY_NEON
  // Lanes of the 16-bit products: channel c owns 4 consecutive ones; addp sums neighbours (still
  // one channel: 2 products), sadalp sums the two pairs of each channel into its 32-bit lane.
  const int16x8_t low = vmull_s8(vget_low_s8(w.raw), vget_low_s8(a.raw));
  const int16x8_t high = vmull_high_s8(w.raw, a.raw);
  return V32(vpadalq_s16(acc.raw, vpaddq_s16(low, high)));
#elif HWY_TARGET == HWY_SVE
  return svdot_s32(acc, w, a);
#endif
}

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
