// chord/backends/xsimd/gemm.hpp: the xsimd backend's mixed-precision kernels, by ISA tag and width.
//
// Compile-time dispatch (header-only use): include this header and call
//   chord::backends::xsimd::gemm_s8<chord::isa::native, 4>(a, w, out)      // or gemm_f32, kernel_table
// where isa::native is the best tag the translation unit's flags allow (-march=native, -mavx2 -mfma,
// -march=armv8.2-a+dotprod, ...). Runtime dispatch instead builds one translation unit per ISA
// (backends/xsimd/dispatch/, added by chord_add_kernels() in cmake/ChordKernels.cmake) and picks a
// table in chord/ops/dispatch.hpp.
//
//   isa::avx512_vnni  s8_avx512_vnni.hpp (vpdpbusd, intrinsics)   fp32: gemm_f32.hpp (xsimd avx512f)
//   isa::avx2         s8_avx2.hpp (vpmaddubsw, intrinsics)        fp32: gemm_f32.hpp (xsimd fma3<avx2>)
//   isa::neon_dotprod s8_neon.hpp (sdot, intrinsics)              fp32: gemm_f32.hpp (xsimd neon64)
//   isa::neon         s8_neon.hpp (vmull/vpadal, intrinsics)      fp32: gemm_f32.hpp (xsimd neon64)
//   isa::scalar       the scalar backend's kernels
//
// Exactness: the int8 path returns exactly ref::mixed_gemm_s8's int32 sums for k <= 66311 (int32
// accumulators: |sum u a| <= 255 * 127 * k), and its fp32 outputs bit for bit when built without FMA
// contraction (-ffp-contract=off, which chord_add_kernels sets: the epilogue multiplies, then adds,
// as ref::dequantize_acc does). The fp32 path is within the usual dot-product rounding bound.
#pragma once

#include <type_traits>

#include "chord/backends/scalar/gemm.hpp"
#include "chord/ops/kernel_table.hpp"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define CHORD_XSIMD_AVX512_VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define CHORD_XSIMD_AVX2 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#define CHORD_XSIMD_NEON 1
#if defined(__ARM_FEATURE_DOTPROD)
#define CHORD_XSIMD_NEON_DOTPROD 1
#endif
#endif

#if defined(CHORD_XSIMD_AVX512_VNNI) || defined(CHORD_XSIMD_AVX2) || defined(CHORD_XSIMD_NEON)
#include "chord/backends/xsimd/gemm_f32.hpp"
#endif
#if defined(CHORD_XSIMD_AVX512_VNNI)
#include "chord/backends/xsimd/s8_avx512_vnni.hpp"
#endif
#if defined(CHORD_XSIMD_AVX2)
#include "chord/backends/xsimd/s8_avx2.hpp"
#endif
#if defined(CHORD_XSIMD_NEON)
#include "chord/backends/xsimd/s8_neon.hpp"
#endif

namespace chord::backends::xsimd {

// True when this translation unit can compile the kernels of `Tag`.
template <class Tag>
constexpr bool compiled_for() {
  if constexpr (std::is_same_v<Tag, isa::scalar>) return true;
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) return true;
#endif
#if defined(CHORD_XSIMD_AVX2)
  if constexpr (std::is_same_v<Tag, isa::avx2>) return true;
#endif
#if defined(CHORD_XSIMD_NEON_DOTPROD)
  if constexpr (std::is_same_v<Tag, isa::neon_dotprod>) return true;
#endif
#if defined(CHORD_XSIMD_NEON)
  if constexpr (std::is_same_v<Tag, isa::neon>) return true;
#endif
  return false;
}

// w{Bits}a8: see GemmS8Fn.  a: [m, k] int8 rows, w: [n, k] packed at Bits, y / acc: [m, n] via out.
template <class Tag, int Bits>
void gemm_s8(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  static_assert(compiled_for<Tag>(), "gemm_s8: this ISA is not enabled by the compiler flags of this file");
  static_assert(Bits == 8 || Bits == 4 || Bits == 2, "gemm_s8: packed widths are 8, 4 and 2");
  if constexpr (std::is_same_v<Tag, isa::scalar>) {
    scalar::gemm_s8<Bits>(a, w, out);
#if defined(CHORD_XSIMD_AVX512_VNNI)
  } else if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) {
    gemm_s8_avx512_vnni<Bits>(a, w, out);
#endif
#if defined(CHORD_XSIMD_AVX2)
  } else if constexpr (std::is_same_v<Tag, isa::avx2>) {
    gemm_s8_avx2<Bits>(a, w, out);
#endif
#if defined(CHORD_XSIMD_NEON_DOTPROD)
  } else if constexpr (std::is_same_v<Tag, isa::neon_dotprod>) {
    gemm_s8_neon_dotprod<Bits>(a, w, out);
#endif
#if defined(CHORD_XSIMD_NEON)
  } else if constexpr (std::is_same_v<Tag, isa::neon>) {
    gemm_s8_neon<Bits>(a, w, out);
#endif
  }
}

// w{Bits} x fp32: see GemmF32Fn.  x: [m, k] (stride ldx), w: [n, k] packed, y: [m, n] via out.
template <class Tag, int Bits>
void gemm_f32(const float* x, std::size_t ldx, std::size_t m, const PackedMatrix& w, const GemmOutput& out) {
  static_assert(compiled_for<Tag>(), "gemm_f32: this ISA is not enabled by the compiler flags of this file");
  if constexpr (std::is_same_v<Tag, isa::scalar>)
    scalar::gemm_f32<Bits>(x, ldx, m, w, out);
  else
    gemm_f32_simd<Tag, Bits>(x, ldx, m, w, out);
}

// The table of one ISA: its six kernels. isa::scalar gives the scalar backend's own table.
template <class Tag>
KernelTable kernel_table() {
  if constexpr (std::is_same_v<Tag, isa::scalar>) {
    return scalar::kernel_table();
  } else {
    KernelTable table;
    table.isa = Tag::value;
    table.backend = "xsimd";
    table.gemm_s8 = {&gemm_s8<Tag, 8>, &gemm_s8<Tag, 4>, &gemm_s8<Tag, 2>};
    table.gemm_f32 = {&gemm_f32<Tag, 8>, &gemm_f32<Tag, 4>, &gemm_f32<Tag, 2>};
    return table;
  }
}

}  // namespace chord::backends::xsimd
