// chord/backends/xsimd/tables.hpp: the xsimd backend's runtime kernel tables.
//
// Each table is defined in its own translation unit under backends/xsimd/dispatch/, compiled with that
// ISA's flags by chord_add_kernels() (cmake/ChordKernels.cmake); only the current architecture's
// units are built (x86-64: avx512_vnni, avx2; aarch64: neon_dotprod, neon). chord/ops/dispatch.hpp
// filters them by what the running CPU supports.
#pragma once

#include <vector>

#include "chord/ops/kernel_table.hpp"

namespace chord::backends::xsimd {

KernelTable kernel_table_avx512_vnni();  // backends/xsimd/dispatch/avx512_vnni.cpp (x86-64)
KernelTable kernel_table_avx2();         // backends/xsimd/dispatch/avx2.cpp (x86-64)
KernelTable kernel_table_neon_dotprod(); // backends/xsimd/dispatch/neon_dotprod.cpp (aarch64)
KernelTable kernel_table_neon();         // backends/xsimd/dispatch/neon.cpp (aarch64)

// Every table compiled into this program, best ISA first (the CPU may not run all of them).
std::vector<KernelTable> kernel_tables();

}  // namespace chord::backends::xsimd
