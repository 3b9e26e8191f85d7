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

// The gemms (gemm_s8-inl.hpp, gemm_f32-inl.hpp), quantize_rows and the fp32 row ops (rowops-inl.hpp), attention
// (attention-inl.hpp). Built in a constexpr function: addresses only, nothing runs.
constexpr KernelTable MakeKernelTable() {
  KernelTable table;
  table.isa = kTableIsa;
  table.backend = "highway";
  table.gemm_s8 = {&GemmS8<8>, &GemmS8<4>, &GemmS8<2>};
  table.gemm_f32 = {&GemmF32<8>, &GemmF32<4>, &GemmF32<2>};
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
