// backends/xsimd/dispatch/neon_dotprod.cpp: the xsimd backend's neon_dotprod kernel table.
// chord_add_kernels() compiles this file alone with -march=armv8.2-a+dotprod
// and -ffp-contract=off (the int8 epilogue must round exactly as ref::dequantize_acc does).
// Only ISA-tagged templates are instantiated here (see common.hpp's ODR note): nothing that another
// translation unit could also emit, compiled for a CPU that may lack this ISA.
#include "chord/backends/xsimd/gemm.hpp"
#include "chord/backends/xsimd/tables.hpp"

#if !defined(CHORD_XSIMD_NEON_DOTPROD)
#error "neon_dotprod.cpp needs the neon_dotprod compiler flags (see cmake/ChordKernels.cmake)"
#endif

namespace chord::backends::xsimd {

KernelTable kernel_table_neon_dotprod() { return kernel_table<isa::neon_dotprod>(); }

}  // namespace chord::backends::xsimd
