// chord/backends/highway/tables.hpp: the Highway backend's kernel tables, one per compiled target.
//
// Defined in backends/highway/dispatch/*.cpp (compile all of them with -ffp-contract=off, link
// libhwy; no -march flags: each target's code carries its own target attributes):
//   tables.cpp               foreach_target.h: x86 AVX2 and AVX3_DL, Arm NEON and SVE
//   tables_neon_dotprod.cpp  aarch64 (GCC) only: NEON + dotprod, under a function target attribute
// ops/dispatch.hpp chooses among them by the running CPU's features; so do tests.
#pragma once

#include <vector>

#include "chord/ops/kernel_table.hpp"

namespace chord::backends::highway {

// One table (backend "highway") per Highway target compiled in, best first: avx512_vnni, avx2 on
// x86; sve, neon_dotprod, neon on aarch64. A table may need CPU features the running CPU lacks:
// call its kernels only after checking the CPU supports table.isa. One exception, for safety: the
// avx512_vnni table is Highway's AVX3_DL target (Ice Lake: VNNI plus VBMI2, BITALG, VPOPCNTDQ...),
// and it is left out when the CPU has AVX-512 but Highway finds that set incomplete (Cascade Lake
// has VNNI without VBMI), since a VNNI check alone would then pick it.
std::vector<KernelTable> kernel_tables();

}  // namespace chord::backends::highway
