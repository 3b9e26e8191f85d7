// chord/backends/highway/tables-inl.hpp: one KernelTable constant per Highway target.
//
// The file HWY_TARGET_INCLUDE names in backends/highway/dispatch/tables.cpp: foreach_target.h
// includes it once per compiled target. Each pass defines, in namespace
// chord::backends::highway::<variant>::N_<TARGET>, `kKernelTable`: a constant built from function
// addresses only, so collecting the tables runs no instruction of a target the CPU may lack.
// <variant> (CHORD_HWY_VARIANT) keeps the kernels of translation units built with different target
// options apart (dynamic: tables.cpp; dotprod: tables_neon_dotprod.cpp): same names, different code.
//
// Highway target -> chord::Isa: AVX3_DL -> avx512_vnni, AVX2 -> avx2, NEON -> neon (neon_dotprod in
// the dotprod unit), SVE -> sve. Other targets (SSE4, AVX3 without VNNI, the scalar fallbacks) get
// no table: the scalar backend covers them.

#if defined(CHORD_BACKENDS_HIGHWAY_TABLES_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHORD_BACKENDS_HIGHWAY_TABLES_INL_HPP_
#undef CHORD_BACKENDS_HIGHWAY_TABLES_INL_HPP_
#else
#define CHORD_BACKENDS_HIGHWAY_TABLES_INL_HPP_
#endif

#include "chord/backends/highway/attention-inl.hpp"
#include "chord/backends/highway/gemm_f32-inl.hpp"
#include "chord/backends/highway/gemm_s8-inl.hpp"
#include "chord/backends/highway/rowops-inl.hpp"
#include "chord/ops/isa.hpp"
#include "chord/ops/kernel_table.hpp"

#if CHORD_HWY_HAVE_KERNELS
HWY_BEFORE_NAMESPACE();
namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX3_DL
inline constexpr Isa kTableIsa = Isa::avx512_vnni;
#elif HWY_TARGET == HWY_AVX2
inline constexpr Isa kTableIsa = Isa::avx2;
#elif HWY_TARGET == HWY_NEON && defined(CHORD_HWY_DOTPROD)
inline constexpr Isa kTableIsa = Isa::neon_dotprod;
#elif HWY_TARGET == HWY_NEON
inline constexpr Isa kTableIsa = Isa::neon;
#elif HWY_TARGET == HWY_SVE
inline constexpr Isa kTableIsa = Isa::sve;
#endif

// The gemms' entry points by name, XNNPACK style: w{b}{a8|f32}_gemm__highway_<isa>, what tests and
// chord_bench print (ops::gemm_name). Each pass of foreach_target.h defines only its own target's.
#if HWY_TARGET == HWY_AVX3_DL
inline constexpr GemmS8Fn w8a8_gemm__highway_avx512_vnni = &GemmS8<8>;
inline constexpr GemmS8Fn w4a8_gemm__highway_avx512_vnni = &GemmS8<4>;
inline constexpr GemmS8Fn w2a8_gemm__highway_avx512_vnni = &GemmS8<2>;
inline constexpr GemmF32Fn w8f32_gemm__highway_avx512_vnni = &GemmF32<8>;
inline constexpr GemmF32Fn w4f32_gemm__highway_avx512_vnni = &GemmF32<4>;
inline constexpr GemmF32Fn w2f32_gemm__highway_avx512_vnni = &GemmF32<2>;
constexpr void SetNamedGemms(KernelTable& table) {
  CHORD_SET_GEMMS(table, s8, w8a8_gemm__highway_avx512_vnni,
                  w4a8_gemm__highway_avx512_vnni, w2a8_gemm__highway_avx512_vnni);
  CHORD_SET_GEMMS(table, f32, w8f32_gemm__highway_avx512_vnni,
                  w4f32_gemm__highway_avx512_vnni, w2f32_gemm__highway_avx512_vnni);
}
#elif HWY_TARGET == HWY_AVX2
inline constexpr GemmS8Fn w8a8_gemm__highway_avx2 = &GemmS8<8>;
inline constexpr GemmS8Fn w4a8_gemm__highway_avx2 = &GemmS8<4>;
inline constexpr GemmS8Fn w2a8_gemm__highway_avx2 = &GemmS8<2>;
inline constexpr GemmF32Fn w8f32_gemm__highway_avx2 = &GemmF32<8>;
inline constexpr GemmF32Fn w4f32_gemm__highway_avx2 = &GemmF32<4>;
inline constexpr GemmF32Fn w2f32_gemm__highway_avx2 = &GemmF32<2>;
constexpr void SetNamedGemms(KernelTable& table) {
  CHORD_SET_GEMMS(table, s8, w8a8_gemm__highway_avx2, w4a8_gemm__highway_avx2, w2a8_gemm__highway_avx2);
  CHORD_SET_GEMMS(table, f32, w8f32_gemm__highway_avx2, w4f32_gemm__highway_avx2, w2f32_gemm__highway_avx2);
}
#elif HWY_TARGET == HWY_NEON && defined(CHORD_HWY_DOTPROD)
inline constexpr GemmS8Fn w8a8_gemm__highway_neon_dotprod = &GemmS8<8>;
inline constexpr GemmS8Fn w4a8_gemm__highway_neon_dotprod = &GemmS8<4>;
inline constexpr GemmS8Fn w2a8_gemm__highway_neon_dotprod = &GemmS8<2>;
inline constexpr GemmF32Fn w8f32_gemm__highway_neon_dotprod = &GemmF32<8>;
inline constexpr GemmF32Fn w4f32_gemm__highway_neon_dotprod = &GemmF32<4>;
inline constexpr GemmF32Fn w2f32_gemm__highway_neon_dotprod = &GemmF32<2>;
constexpr void SetNamedGemms(KernelTable& table) {
  CHORD_SET_GEMMS(table, s8, w8a8_gemm__highway_neon_dotprod,
                  w4a8_gemm__highway_neon_dotprod, w2a8_gemm__highway_neon_dotprod);
  CHORD_SET_GEMMS(table, f32, w8f32_gemm__highway_neon_dotprod,
                  w4f32_gemm__highway_neon_dotprod, w2f32_gemm__highway_neon_dotprod);
}
#elif HWY_TARGET == HWY_NEON
inline constexpr GemmS8Fn w8a8_gemm__highway_neon = &GemmS8<8>;
inline constexpr GemmS8Fn w4a8_gemm__highway_neon = &GemmS8<4>;
inline constexpr GemmS8Fn w2a8_gemm__highway_neon = &GemmS8<2>;
inline constexpr GemmF32Fn w8f32_gemm__highway_neon = &GemmF32<8>;
inline constexpr GemmF32Fn w4f32_gemm__highway_neon = &GemmF32<4>;
inline constexpr GemmF32Fn w2f32_gemm__highway_neon = &GemmF32<2>;
constexpr void SetNamedGemms(KernelTable& table) {
  CHORD_SET_GEMMS(table, s8, w8a8_gemm__highway_neon, w4a8_gemm__highway_neon, w2a8_gemm__highway_neon);
  CHORD_SET_GEMMS(table, f32, w8f32_gemm__highway_neon, w4f32_gemm__highway_neon, w2f32_gemm__highway_neon);
}
#elif HWY_TARGET == HWY_SVE
inline constexpr GemmS8Fn w8a8_gemm__highway_sve = &GemmS8<8>;
inline constexpr GemmS8Fn w4a8_gemm__highway_sve = &GemmS8<4>;
inline constexpr GemmS8Fn w2a8_gemm__highway_sve = &GemmS8<2>;
inline constexpr GemmF32Fn w8f32_gemm__highway_sve = &GemmF32<8>;
inline constexpr GemmF32Fn w4f32_gemm__highway_sve = &GemmF32<4>;
inline constexpr GemmF32Fn w2f32_gemm__highway_sve = &GemmF32<2>;
constexpr void SetNamedGemms(KernelTable& table) {
  CHORD_SET_GEMMS(table, s8, w8a8_gemm__highway_sve, w4a8_gemm__highway_sve, w2a8_gemm__highway_sve);
  CHORD_SET_GEMMS(table, f32, w8f32_gemm__highway_sve, w4f32_gemm__highway_sve, w2f32_gemm__highway_sve);
}
#endif

// The gemms (gemm_s8-inl.hpp, gemm_f32-inl.hpp), quantize_rows and the fp32 row ops (rowops-inl.hpp), attention
// (attention-inl.hpp). Built in a constexpr function: addresses only, nothing runs.
constexpr KernelTable MakeKernelTable() {
  KernelTable table;
  table.isa = kTableIsa;
  table.backend = "highway";
  SetNamedGemms(table);
  table.quantize_rows = &QuantizeRows;
  table.layernorm = &LayerNorm;
  table.softmax = &Softmax;
  table.relu = &Relu;
  table.gelu = &Gelu;
  table.add = &ResidualAdd;
  table.attention = &Attention;
  table.attention_row = &AttentionRow;
  return table;
}
inline constexpr KernelTable kKernelTable = MakeKernelTable();

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
