// bench/peak.hpp: the peak probe: what one core of this machine can do at best, so that every kernel
// row can say how close it gets ("% of peak").
//
//   dot:        int8 dot-product instruction throughput, GOPS (2 ops per multiply-accumulate):
//               vpdpbusd zmm chains on AVX-512 VNNI; vpmaddubsw ymm chains on AVX2 (the instruction's
//               throughput: an upper bound, since a kernel also has to accumulate its 16-bit sums)
//   fma:        fp32 FMA throughput, GFLOPS (vfmadd231ps zmm / ymm), for the fp32-activation rows
//   read_bw:    streaming read bandwidth, GB/s: a sum over a buffer far larger than the last-level cache,
//               read as 4 interleaved streams (what a kernel walking several tiles at once gets)
// Each probe keeps many independent accumulators so that latency is hidden and only throughput shows.
// Probes for an ISA the CPU lacks return 0 (and the rows that would use them get no percentage).
#pragma once

#include <cstddef>
#include <string>

#include "chord/ops/isa.hpp"

namespace chord::bench {

// The CPU as cpuinfo sees it (falls back to /proc/cpuinfo for the name).
struct CpuDescription {
  std::string name;
  std::string name_source;  // "cpuinfo" or "/proc/cpuinfo" or "unknown"
  std::size_t llc_bytes = 0;
  bool avx2 = false;         // AVX2 + FMA
  bool avx512_vnni = false;  // AVX-512 F/BW/VL + VNNI
};
const CpuDescription& cpu();

// Measured once by measure_startup_peaks() (main, before the benchmarks): quick, for the console
// counters. The report uses the medians of the peak/... benchmark rows instead.
struct Peaks {
  double dot_avx2 = 0, dot_avx512_vnni = 0;  // GOPS
  double fma_avx2 = 0, fma_avx512 = 0;       // GFLOPS
  double read_gbps = 0;

  // The ISA whose probe a row of `isa` is compared with: its own, or for scalar/portable code the
  // best the machine has (what the CPU could do, which is the honest yardstick for a fallback).
  Isa probe_isa(Isa isa) const;
  double dot_gops(Isa isa) const;
  double fma_gflops(Isa isa) const;
};
const Peaks& startup_peaks();
void measure_startup_peaks(double seconds_per_probe);

// Bytes of the read-bandwidth buffer: 8x the LLC, at least 256 MiB.
std::size_t read_buffer_bytes();

// Registers peak/dot/<isa>, peak/fma/<isa>, peak/read_bw rows for the ISAs this CPU has.
void register_peak_benchmarks();

}  // namespace chord::bench
