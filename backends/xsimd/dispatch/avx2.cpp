// backends/xsimd/dispatch/avx2.cpp: the xsimd backend's avx2 kernel table.
// chord_add_kernels() compiles this file alone with -mavx2 -mfma
// and -ffp-contract=off (the int8 epilogue must round exactly as ref::dequantize_acc does).
// Only ISA-tagged templates are instantiated here (see common.hpp's ODR note): nothing that another
// translation unit could also emit, compiled for a CPU that may lack this ISA.
#include "chord/backends/xsimd/attention.hpp"
#include "chord/backends/xsimd/gemm.hpp"
#include "chord/backends/xsimd/tables.hpp"

#if !defined(CHORD_XSIMD_AVX2)
#error "avx2.cpp needs the avx2 compiler flags (see cmake/ChordKernels.cmake)"
#endif

namespace chord::backends::xsimd {

// The gemms (gemm.hpp) plus quantize_rows, the fp32 row ops and attention (rowops.hpp, attention.hpp).
KernelTable kernel_table_avx2() { return with_row_kernels<isa::avx2>(kernel_table<isa::avx2>()); }

}  // namespace chord::backends::xsimd
