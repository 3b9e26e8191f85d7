// bench/kernel_tables.hpp: the kernel tables the suite runs: every table usable on this CPU.
//
// With runtime dispatch (ops/dispatch.hpp, built by chord_add_kernels) that is every compiled-in
// backend x ISA the CPU supports; without it, the portable scalar table only. The benchmarks are
// written over this list, never over a named backend.
#pragma once

#include <string>
#include <vector>

#include "chord/backends/scalar/gemm.hpp"
#include "chord/ops/kernel_table.hpp"
#if CHORD_BENCH_WITH_DISPATCH
#include "chord/ops/dispatch.hpp"
#endif

namespace chord::bench {

inline std::vector<KernelTable> bench_kernel_tables() {
#if CHORD_BENCH_WITH_DISPATCH
  return usable_kernel_tables();  // best first; CHORD_BACKEND only reorders, every usable table is kept
#else
  return {backends::scalar::kernel_table()};
#endif
}

// For the JSON context: where the list came from.
inline const char* kernel_tables_source() {
#if CHORD_BENCH_WITH_DISPATCH
  return "chord::usable_kernel_tables() (ops/dispatch.hpp)";
#else
  return "scalar backend only (built without ops/dispatch.hpp)";
#endif
}

}  // namespace chord::bench
