// backends/xsimd/dispatch/avx512_vnni.cpp: the xsimd backend's avx512_vnni kernel table.
// chord_add_kernels() compiles this file alone with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma
// and -ffp-contract=off (the int8 epilogue must round exactly as ref::dequantize_acc does).
// Only ISA-tagged templates are instantiated here (see common.hpp's ODR note): nothing that another
// translation unit could also emit, compiled for a CPU that may lack this ISA.
// GCC 12 reports its own AVX-512 intrinsics (_mm512_undefined_* inside _mm512_cvtepi32_ps, slli, srai)
// as "(maybe) uninitialized" once inlined (GCC bug 105593; -Wuninitialized under the sanitizers):
// silence that false positive in this unit.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "chord/backends/xsimd/attention.hpp"
#include "chord/backends/xsimd/gemm.hpp"
#include "chord/backends/xsimd/tables.hpp"

#if !defined(CHORD_XSIMD_AVX512_VNNI)
#error "avx512_vnni.cpp needs the avx512_vnni compiler flags (see cmake/ChordKernels.cmake)"
#endif

namespace chord::backends::xsimd {

// The gemms (gemm.hpp) plus quantize_rows, the fp32 row ops and attention (rowops.hpp, attention.hpp).
KernelTable kernel_table_avx512_vnni() { return with_row_kernels<isa::avx512_vnni>(kernel_table<isa::avx512_vnni>()); }

}  // namespace chord::backends::xsimd
