// backends/highway/dispatch/tables_neon_dotprod.cpp: the Isa::neon_dotprod table (aarch64, GCC).
//
// Highway 1.0.3 has no NEON+dotprod target, so this unit compiles only the static NEON target
// (HWY_COMPILE_ONLY_STATIC) with CHORD_HWY_DOTPROD set: the kernels then carry the function attribute
// target("arch=armv8.2-a+crypto+dotprod") (dot-inl.hpp) and use sdot. No -march flag is needed, so
// the file builds with the same flags as tables.cpp (-ffp-contract=off); its kernels live in their
// own namespace (chord::backends::highway::dotprod) so they never merge with tables.cpp's NEON ones.
// Elsewhere (x86, Clang, a baseline above NEON) it provides no table.

#include <vector>

#include "chord/ops/kernel_table.hpp"
#include "hwy/detect_compiler_arch.h"

#if HWY_ARCH_ARM_A64 && HWY_COMPILER_GCC_ACTUAL && !HWY_COMPILER_CLANG
#define HWY_COMPILE_ONLY_STATIC 1
#define CHORD_HWY_VARIANT dotprod
#define CHORD_HWY_DOTPROD 1
#include "hwy/highway.h"
#if HWY_STATIC_TARGET == HWY_NEON
#include "chord/backends/highway/tables-inl.hpp"
#define CHORD_HWY_HAVE_DOTPROD_TABLE 1
#endif
#endif

namespace chord::backends::highway::detail {

std::vector<KernelTable> neon_dotprod_tables() {
#if defined(CHORD_HWY_HAVE_DOTPROD_TABLE)
  return {dotprod::N_NEON::kKernelTable};
#else
  return {};
#endif
}

}  // namespace chord::backends::highway::detail
