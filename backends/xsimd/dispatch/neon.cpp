// backends/xsimd/dispatch/neon.cpp: the xsimd backend's neon kernel table.
// chord_add_kernels() compiles this file alone with the aarch64 baseline (armv8-a)
// and -ffp-contract=off (the int8 epilogue must round exactly as ref::dequantize_acc does).
// Only ISA-tagged templates are instantiated here (see common.hpp's ODR note): nothing that another
// translation unit could also emit, compiled for a CPU that may lack this ISA.
#include "chord/backends/xsimd/attention.hpp"
#include "chord/backends/xsimd/gemm.hpp"
#include "chord/backends/xsimd/tables.hpp"

#if !defined(CHORD_XSIMD_NEON)
#error "neon.cpp needs the neon compiler flags (see cmake/ChordKernels.cmake)"
#endif

namespace chord::backends::xsimd {

// The gemms (gemm.hpp) plus quantize_rows, the fp32 row ops and attention (rowops.hpp, attention.hpp).
KernelTable kernel_table_neon() { return with_row_kernels<isa::neon>(kernel_table<isa::neon>()); }

}  // namespace chord::backends::xsimd
