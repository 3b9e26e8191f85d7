// backends/dispatch/compiled_tables.cpp: compiled_kernel_tables() (declared in chord/ops/dispatch.hpp):
// every kernel table linked into this program. chord_add_kernels() (cmake/ChordKernels.cmake) compiles
// it with CHORD_HAVE_XSIMD / CHORD_HAVE_HIGHWAY for the backends whose per-ISA units it added, and with
// -ffp-contract=off like the kernels (the scalar kernels are instantiated here).
#include "chord/backends/scalar/gemm.hpp"
#include "chord/ops/dispatch.hpp"

#if defined(CHORD_HAVE_XSIMD)
#include "chord/backends/xsimd/tables.hpp"
#endif
#if defined(CHORD_HAVE_HIGHWAY)
#include "chord/backends/highway/tables.hpp"
#endif

namespace chord {

std::vector<KernelTable> compiled_kernel_tables() {
  std::vector<KernelTable> tables;
#if defined(CHORD_HAVE_XSIMD)
  for (const KernelTable& t : backends::xsimd::kernel_tables()) tables.push_back(t);
#endif
#if defined(CHORD_HAVE_HIGHWAY)
  for (const KernelTable& t : backends::highway::kernel_tables()) tables.push_back(t);
#endif
  tables.push_back(backends::scalar::kernel_table());
  return tables;
}

}  // namespace chord
