// bench/main.cpp: chord_bench, the whole benchmark suite in one binary, so that the peak probe, our
// kernels and the peer libraries run in the same process, on the same data, minutes apart.
//
//   chord_bench --benchmark_filter='gemm/w4a8' --benchmark_repetitions=5
//               --benchmark_out=results.json --benchmark_out_format=json
// Single thread throughout. scripts/bench.sh runs it and scripts/bench_report.py writes
// docs/benchmarks.md from the JSON (which carries the CPU and the libraries in its "context").
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "areas.hpp"
#include "kernel_tables.hpp"
#include "peak.hpp"

namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out.empty() ? "none" : out;
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace chord::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const CpuDescription& c = cpu();
  benchmark::AddCustomContext("cpu_name", c.name);
  benchmark::AddCustomContext("cpu_name_source", c.name_source);
  benchmark::AddCustomContext("llc_bytes", std::to_string(c.llc_bytes));
  benchmark::AddCustomContext("cpu_avx2_fma", c.avx2 ? "yes" : "no");
  benchmark::AddCustomContext("cpu_avx512_vnni", c.avx512_vnni ? "yes" : "no");
#if defined(__clang__)
  benchmark::AddCustomContext("compiler", __VERSION__);  // "Debian Clang 14.0.6" style already
#elif defined(__GNUC__)
  benchmark::AddCustomContext("compiler", std::string("GCC ") + __VERSION__);
#else
  benchmark::AddCustomContext("compiler", "unknown");
#endif

  // Quick probe for the console's pct_peak counters; the peak/... rows below are the real measurement.
  measure_startup_peaks(0.15);
  const Peaks& p = startup_peaks();
  benchmark::AddCustomContext("startup_peak", "dot avx512_vnni " + fixed(p.dot_avx512_vnni) + " GOPS, dot avx2 " +
                                                  fixed(p.dot_avx2) + " GOPS, fma avx512 " + fixed(p.fma_avx512) +
                                                  " GFLOPS, fma avx2 " + fixed(p.fma_avx2) + " GFLOPS, read " +
                                                  fixed(p.read_gbps) + " GB/s");
  register_peak_benchmarks();

  const std::vector<chord::KernelTable> tables = bench_kernel_tables();
  std::vector<std::string> table_names;
  for (const auto& t : tables) table_names.push_back(std::string(chord::isa_name(t.isa)) + "/" + t.backend);
  benchmark::AddCustomContext("kernel_tables", join(table_names));
  benchmark::AddCustomContext("kernel_tables_source", kernel_tables_source());

  register_gemm_benchmarks(tables);
  register_quantize_benchmarks();
  // attention/..., conv/... and rowops/... rows: bench/bench_ops.cpp registers them itself.

  std::vector<std::string> peers;
#if CHORD_BENCH_HAVE_OPENBLAS
  peers.push_back(register_openblas_benchmarks());
#endif
#if CHORD_BENCH_HAVE_EIGEN
  peers.push_back(register_eigen_benchmarks());
#endif
#if CHORD_BENCH_HAVE_ONEDNN
  peers.push_back(register_onednn_benchmarks());
#endif
#if CHORD_BENCH_HAVE_GEMMLOWP
  peers.push_back(register_gemmlowp_benchmarks());
#endif
#if CHORD_BENCH_HAVE_XNNPACK
  peers.push_back(register_xnnpack_benchmarks());
#endif
  benchmark::AddCustomContext("peers", join(peers));

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
