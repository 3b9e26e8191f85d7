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

// The gemms use sdot; quantize_rows, the fp32 row ops and attention have nothing for dotprod to
// speed up: they are the neon unit's own kernels (instantiated once, in neon.cpp, with the baseline
// flags, so no xsimd math template is compiled twice under different flags; see common.hpp).
KernelTable kernel_table_neon_dotprod() {
  KernelTable table = kernel_table<isa::neon_dotprod>();
  const KernelTable neon = kernel_table_neon();
  table.quantize_rows = neon.quantize_rows;
  table.layernorm = neon.layernorm;
  table.softmax = neon.softmax;
  table.relu = neon.relu;
  table.gelu = neon.gelu;
  table.add = neon.add;
  table.attention = neon.attention;
  table.attention_row = neon.attention_row;
  return table;
}

}  // namespace chord::backends::xsimd
