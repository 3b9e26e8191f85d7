// backends/highway/dispatch/tables.cpp: the Highway kernels for every target Highway dispatches to
// at run time, and chord::backends::highway::kernel_tables().
//
// foreach_target.h includes chord/backends/highway/tables-inl.hpp once per target in HWY_TARGETS:
//   x86:     AVX3_DL (opted in with HWY_WANT_AVX3_DL) and AVX2; SSSE3, SSE4 and AVX3 (AVX-512 without
//            VNNI) are disabled: chord has no Isa for them;
//   aarch64: NEON and SVE (vector-length agnostic); SVE2 and the fixed-length SVE variants are
//            disabled: they would only duplicate Isa::sve.
// The baseline fallback (HWY_SCALAR / HWY_EMU128) is always compiled but gets no kernels.
// Build flags: -ffp-contract=off (the int8 epilogue must not fuse into an FMA), no -march.

#include <cstdint>
#include <vector>

#define HWY_WANT_AVX3_DL 1
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3 | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "chord/backends/highway/tables-inl.hpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "chord/backends/highway/tables-inl.hpp"
#include "chord/backends/highway/tables.hpp"
#include "hwy/highway.h"

#if HWY_ONCE
namespace chord::backends::highway {

namespace detail {
std::vector<KernelTable> neon_dotprod_tables();  // tables_neon_dotprod.cpp
}  // namespace detail

std::vector<KernelTable> kernel_tables() {
  std::vector<KernelTable> tables;
#if HWY_TARGETS & HWY_AVX3_DL
  // Highway's own CPU check, only to rule out an AVX-512 CPU that has VNNI but not the rest of
  // AVX3_DL (see tables.hpp); on CPUs without AVX-512 the caller's check drops the table anyway.
  const std::int64_t supported = hwy::SupportedTargets();
  if ((supported & HWY_AVX3) == 0 || (supported & HWY_AVX3_DL) != 0)
    tables.push_back(dynamic::N_AVX3_DL::kKernelTable);
#endif
#if HWY_TARGETS & HWY_AVX2
  tables.push_back(dynamic::N_AVX2::kKernelTable);
#endif
#if HWY_TARGETS & HWY_SVE
  tables.push_back(dynamic::N_SVE::kKernelTable);
#endif
  for (const KernelTable& table : detail::neon_dotprod_tables()) tables.push_back(table);
#if HWY_TARGETS & HWY_NEON
  tables.push_back(dynamic::N_NEON::kKernelTable);
#endif
  return tables;
}

}  // namespace chord::backends::highway
#endif  // HWY_ONCE
