// chord/ops/dispatch.hpp: runtime dispatch: which kernel table runs on this CPU.
//
// Every backend compiles one table per ISA in its own translation unit (built with that ISA's flags
// by chord_add_kernels() in cmake/ChordKernels.cmake); compiled_kernel_tables() lists all of them
// (defined in backends/dispatch/compiled_tables.cpp, which that function links in). This header then
// keeps the tables the running CPU supports and ranks them:
//   ISA:      avx512_vnni > avx2 > scalar   (x86-64);   sve > neon_dotprod > neon > scalar   (aarch64)
//   backend:  within one ISA, the one named by CHORD_BACKEND, then xsimd, then highway.
// best_kernels() is the first, unless the environment forces a choice:
//   CHORD_ISA=avx2|avx512_vnni|neon|neon_dotprod|sve|scalar   CHORD_BACKEND=xsimd|highway|scalar
// (either or both; a forced choice this program or CPU cannot run throws chord::Error listing what can).
// select_kernels() is the same choice as an API, for tests and benchmarks.
//
// Header-only users who want no runtime dispatch skip all of this and call a backend's templates
// with isa::native (e.g. chord::backends::xsimd::kernel_table<chord::isa::native>()).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/ops/kernel_table.hpp"

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace chord {

// What the running CPU (and OS: x86 features include the OS's register-state support) offers.
struct CpuFeatures {
  bool avx2 = false, fma = false;                                                  // x86
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool neon = false, dotprod = false, sve = false;                                 // aarch64
};

inline CpuFeatures detect_cpu() {
  CpuFeatures cpu;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  cpu.avx2 = __builtin_cpu_supports("avx2");
  cpu.fma = __builtin_cpu_supports("fma");
  cpu.avx512f = __builtin_cpu_supports("avx512f");
  cpu.avx512bw = __builtin_cpu_supports("avx512bw");
  cpu.avx512vl = __builtin_cpu_supports("avx512vl");
  cpu.avx512dq = __builtin_cpu_supports("avx512dq");
  cpu.avx512vnni = __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
  cpu.neon = true;  // Advanced SIMD is part of armv8-a
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  cpu.neon = (hwcap & HWCAP_ASIMD) != 0;
#if defined(HWCAP_ASIMDDP)
  cpu.dotprod = (hwcap & HWCAP_ASIMDDP) != 0;
#endif
#if defined(HWCAP_SVE)
  cpu.sve = (hwcap & HWCAP_SVE) != 0;
#endif
#endif
#endif
  return cpu;
}

// Whether this CPU can run kernels compiled for `isa`.
inline bool cpu_supports(Isa isa, const CpuFeatures& cpu = detect_cpu()) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return cpu.avx2 && cpu.fma;
    case Isa::avx512_vnni:
      return cpu.avx2 && cpu.fma && cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512dq && cpu.avx512vnni;
    case Isa::neon: return cpu.neon;
    case Isa::neon_dotprod: return cpu.neon && cpu.dotprod;
    case Isa::sve: return cpu.sve;
  }
  return false;
}

// Every table compiled into this program (scalar, xsimd, highway), whether or not the CPU runs it.
// Defined in backends/dispatch/compiled_tables.cpp (link it with chord_add_kernels()).
std::vector<KernelTable> compiled_kernel_tables();

namespace dispatch_detail {

// Higher is better; x86 and ARM tables never meet in one program.
constexpr int isa_rank(Isa isa) {
  switch (isa) {
    case Isa::avx512_vnni: return 3;
    case Isa::avx2: return 2;
    case Isa::sve: return 3;
    case Isa::neon_dotprod: return 2;
    case Isa::neon: return 1;
    case Isa::scalar: return 0;
  }
  return 0;
}
inline int backend_rank(std::string_view backend, std::string_view preferred) {
  if (!preferred.empty() && backend == preferred) return 0;
  if (backend == "xsimd") return 1;
  if (backend == "highway") return 2;
  return 3;
}
inline std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}
inline std::string describe(const std::vector<KernelTable>& tables) {
  std::string list;
  for (const KernelTable& t : tables) {
    if (!list.empty()) list += ", ";
    list += std::string(isa_name(t.isa)) + "/" + t.backend;
  }
  return list.empty() ? "none" : list;
}
inline constexpr Isa kAllIsas[] = {Isa::scalar, Isa::avx2, Isa::avx512_vnni, Isa::neon, Isa::neon_dotprod, Isa::sve};
inline constexpr std::string_view kBackends[] = {"xsimd", "highway", "scalar"};

}  // namespace dispatch_detail

// "avx2" -> Isa::avx2; throws chord::Error naming the valid names otherwise.
inline Isa parse_isa(std::string_view name) {
  std::string names;
  for (Isa isa : dispatch_detail::kAllIsas) {
    if (isa_name(isa) == name) return isa;
    names += (names.empty() ? "" : ", ") + std::string(isa_name(isa));
  }
  throw Error("unknown ISA '" + std::string(name) + "' (CHORD_ISA): expected one of " + names);
}

// The tables of `candidates` this CPU runs, best first. Within one ISA, `preferred_backend` (when not
// empty) comes first, then xsimd, then highway.
inline std::vector<KernelTable> usable_among(const std::vector<KernelTable>& candidates,
                                             std::string_view preferred_backend = {}) {
  const CpuFeatures cpu = detect_cpu();
  std::vector<KernelTable> tables;
  for (const KernelTable& t : candidates)
    if (cpu_supports(t.isa, cpu)) tables.push_back(t);
  std::stable_sort(tables.begin(), tables.end(), [&](const KernelTable& x, const KernelTable& y) {
    const int rx = dispatch_detail::isa_rank(x.isa), ry = dispatch_detail::isa_rank(y.isa);
    if (rx != ry) return rx > ry;
    return dispatch_detail::backend_rank(x.backend, preferred_backend) <
           dispatch_detail::backend_rank(y.backend, preferred_backend);
  });
  return tables;
}
// The best of `candidates` this CPU runs: for a program that links one backend's tables itself (the
// Highway drop-in route of README.md) instead of backends/dispatch/compiled_tables.cpp. Throws
// chord::Error when the CPU runs none of them.
inline KernelTable best_usable(const std::vector<KernelTable>& candidates) {
  const std::vector<KernelTable> usable = usable_among(candidates);
  if (usable.empty())
    throw Error("none of the kernel tables " + dispatch_detail::describe(candidates) + " runs on this CPU");
  return usable.front();
}
// The compiled tables this CPU runs, best first (see usable_among).
inline std::vector<KernelTable> usable_kernel_tables(std::string_view preferred_backend) {
  return usable_among(compiled_kernel_tables(), preferred_backend);
}
// Same, with the preferred backend taken from CHORD_BACKEND.
inline std::vector<KernelTable> usable_kernel_tables() {
  return usable_kernel_tables(dispatch_detail::environment("CHORD_BACKEND"));
}

// The best usable table with ISA `isa` ("" = any) from backend `backend` ("" = any). The scalar ISA is
// every backend's fallback: asking a backend for it gives the scalar backend's table if the backend
// has no scalar table of its own. Throws chord::Error listing the usable tables when none matches.
inline KernelTable select_kernels(std::string_view isa, std::string_view backend) {
  if (!isa.empty()) parse_isa(isa);  // reject a misspelt name with the list of names
  if (!backend.empty() &&
      std::find(std::begin(dispatch_detail::kBackends), std::end(dispatch_detail::kBackends), backend) ==
          std::end(dispatch_detail::kBackends))
    throw Error("unknown kernel backend '" + std::string(backend) + "' (CHORD_BACKEND): expected xsimd, highway or scalar");
  const std::vector<KernelTable> usable = usable_kernel_tables(backend);
  for (const KernelTable& t : usable)
    if ((isa.empty() || isa_name(t.isa) == isa) && (backend.empty() || backend == t.backend)) return t;
  if (isa == isa_name(Isa::scalar))
    for (const KernelTable& t : usable)
      if (t.isa == Isa::scalar && std::string_view(t.backend) == "scalar") return t;
  throw Error("no kernels for ISA '" + std::string(isa.empty() ? "any" : isa) + "' from backend '" +
              std::string(backend.empty() ? "any" : backend) + "' on this CPU and build; usable: " +
              dispatch_detail::describe(usable) + "; compiled: " + dispatch_detail::describe(compiled_kernel_tables()));
}
inline KernelTable select_kernels(Isa isa, std::string_view backend = {}) {
  return select_kernels(isa_name(isa), backend);
}

// The table ops use by default: the best usable one, or the one CHORD_ISA / CHORD_BACKEND force.
// Chosen once per process (the first call reads the environment).
inline const KernelTable& best_kernels() {
  static const KernelTable table = select_kernels(dispatch_detail::environment("CHORD_ISA"),
                                                  dispatch_detail::environment("CHORD_BACKEND"));
  return table;
}

}  // namespace chord
