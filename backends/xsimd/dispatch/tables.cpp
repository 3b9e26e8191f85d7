// backends/xsimd/dispatch/tables.cpp: the list of xsimd tables compiled into this program.
// Built with baseline flags; chord_add_kernels() defines CHORD_XSIMD_TABLE_<ISA> for each ISA unit it
// compiled (a compiler without the ISA's flags simply leaves that table out).
#include "chord/backends/xsimd/tables.hpp"

namespace chord::backends::xsimd {

std::vector<KernelTable> kernel_tables() {
  std::vector<KernelTable> tables;
#if defined(CHORD_XSIMD_TABLE_AVX512_VNNI)
  tables.push_back(kernel_table_avx512_vnni());
#endif
#if defined(CHORD_XSIMD_TABLE_AVX2)
  tables.push_back(kernel_table_avx2());
#endif
#if defined(CHORD_XSIMD_TABLE_NEON_DOTPROD)
  tables.push_back(kernel_table_neon_dotprod());
#endif
#if defined(CHORD_XSIMD_TABLE_NEON)
  tables.push_back(kernel_table_neon());
#endif
  return tables;
}

}  // namespace chord::backends::xsimd
