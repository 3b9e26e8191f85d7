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
// Names: each kernel of the tables has a named entry point, w4a8_gemm__xsimd_avx2 and so on (below
// gemm_f32), which is what tests and chord_bench print.
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

// The entry points of one ISA by name, XNNPACK style: w{b}{a8|f32}_gemm__xsimd_<isa>, what tests and
// chord_bench print (ops::gemm_name), each the address of the ISA's kernel itself. Local constants, in
// branches only the table's own ISA instantiates: a file compiled for AVX-512 that includes this
// header must not emit the AVX2 kernels (the ODR rule of common.hpp).
template <class Tag>
void set_named_gemms(KernelTable& table) {
  if constexpr (std::is_same_v<Tag, isa::scalar>) {
    table = scalar::kernel_table();
#if defined(CHORD_XSIMD_AVX512_VNNI)
  } else if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) {
    constexpr GemmS8Fn w8a8_gemm__xsimd_avx512_vnni = &gemm_s8_avx512_vnni<8>;
    constexpr GemmS8Fn w4a8_gemm__xsimd_avx512_vnni = &gemm_s8_avx512_vnni<4>;
    constexpr GemmS8Fn w2a8_gemm__xsimd_avx512_vnni = &gemm_s8_avx512_vnni<2>;
    constexpr GemmF32Fn w8f32_gemm__xsimd_avx512_vnni = &gemm_f32_simd<isa::avx512_vnni, 8>;
    constexpr GemmF32Fn w4f32_gemm__xsimd_avx512_vnni = &gemm_f32_simd<isa::avx512_vnni, 4>;
    constexpr GemmF32Fn w2f32_gemm__xsimd_avx512_vnni = &gemm_f32_simd<isa::avx512_vnni, 2>;
    CHORD_SET_GEMMS(table, s8, w8a8_gemm__xsimd_avx512_vnni,
                    w4a8_gemm__xsimd_avx512_vnni, w2a8_gemm__xsimd_avx512_vnni);
    CHORD_SET_GEMMS(table, f32, w8f32_gemm__xsimd_avx512_vnni,
                    w4f32_gemm__xsimd_avx512_vnni, w2f32_gemm__xsimd_avx512_vnni);
#endif
#if defined(CHORD_XSIMD_AVX2)
  } else if constexpr (std::is_same_v<Tag, isa::avx2>) {
    constexpr GemmS8Fn w8a8_gemm__xsimd_avx2 = &gemm_s8_avx2<8>;
    constexpr GemmS8Fn w4a8_gemm__xsimd_avx2 = &gemm_s8_avx2<4>;
    constexpr GemmS8Fn w2a8_gemm__xsimd_avx2 = &gemm_s8_avx2<2>;
    constexpr GemmF32Fn w8f32_gemm__xsimd_avx2 = &gemm_f32_simd<isa::avx2, 8>;
    constexpr GemmF32Fn w4f32_gemm__xsimd_avx2 = &gemm_f32_simd<isa::avx2, 4>;
    constexpr GemmF32Fn w2f32_gemm__xsimd_avx2 = &gemm_f32_simd<isa::avx2, 2>;
    CHORD_SET_GEMMS(table, s8, w8a8_gemm__xsimd_avx2, w4a8_gemm__xsimd_avx2, w2a8_gemm__xsimd_avx2);
    CHORD_SET_GEMMS(table, f32, w8f32_gemm__xsimd_avx2, w4f32_gemm__xsimd_avx2, w2f32_gemm__xsimd_avx2);
#endif
#if defined(CHORD_XSIMD_NEON_DOTPROD)
  } else if constexpr (std::is_same_v<Tag, isa::neon_dotprod>) {
    constexpr GemmS8Fn w8a8_gemm__xsimd_neon_dotprod = &gemm_s8_neon_dotprod<8>;
    constexpr GemmS8Fn w4a8_gemm__xsimd_neon_dotprod = &gemm_s8_neon_dotprod<4>;
    constexpr GemmS8Fn w2a8_gemm__xsimd_neon_dotprod = &gemm_s8_neon_dotprod<2>;
    constexpr GemmF32Fn w8f32_gemm__xsimd_neon_dotprod = &gemm_f32_simd<isa::neon_dotprod, 8>;
    constexpr GemmF32Fn w4f32_gemm__xsimd_neon_dotprod = &gemm_f32_simd<isa::neon_dotprod, 4>;
    constexpr GemmF32Fn w2f32_gemm__xsimd_neon_dotprod = &gemm_f32_simd<isa::neon_dotprod, 2>;
    CHORD_SET_GEMMS(table, s8, w8a8_gemm__xsimd_neon_dotprod,
                    w4a8_gemm__xsimd_neon_dotprod, w2a8_gemm__xsimd_neon_dotprod);
    CHORD_SET_GEMMS(table, f32, w8f32_gemm__xsimd_neon_dotprod,
                    w4f32_gemm__xsimd_neon_dotprod, w2f32_gemm__xsimd_neon_dotprod);
#endif
#if defined(CHORD_XSIMD_NEON)
  } else if constexpr (std::is_same_v<Tag, isa::neon>) {
    constexpr GemmS8Fn w8a8_gemm__xsimd_neon = &gemm_s8_neon<8>;
    constexpr GemmS8Fn w4a8_gemm__xsimd_neon = &gemm_s8_neon<4>;
    constexpr GemmS8Fn w2a8_gemm__xsimd_neon = &gemm_s8_neon<2>;
    constexpr GemmF32Fn w8f32_gemm__xsimd_neon = &gemm_f32_simd<isa::neon, 8>;
    constexpr GemmF32Fn w4f32_gemm__xsimd_neon = &gemm_f32_simd<isa::neon, 4>;
    constexpr GemmF32Fn w2f32_gemm__xsimd_neon = &gemm_f32_simd<isa::neon, 2>;
    CHORD_SET_GEMMS(table, s8, w8a8_gemm__xsimd_neon, w4a8_gemm__xsimd_neon, w2a8_gemm__xsimd_neon);
    CHORD_SET_GEMMS(table, f32, w8f32_gemm__xsimd_neon, w4f32_gemm__xsimd_neon, w2f32_gemm__xsimd_neon);
#endif
  }
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
    set_named_gemms<Tag>(table);
    return table;
  }
}

}  // namespace chord::backends::xsimd
