// bench/common.hpp: what every benchmark area shares: shapes, names, counters, seeded data.
//
// Row names follow docs/design.md#benchmarks and XNNPACK's habit of naming what runs:
//   <area>/<variant>/<isa>/<backend>/<M>:<N>:<K>      attention/core_f32/avx512_vnni/xsimd/200:64:1
//   gemm|gemv/<kernel>/<M>:<N>:<K>                    gemm/w4a8_gemm__xsimd_avx512_vnni/200:64:64
//                                                     (the entry point's name in backends/, ops::gemm_name)
//   peer/<library_op>/<M>:<N>:<K>                     peer/openblas_sgemm/200:64:64
//   peak/<probe>/<isa>                                peak/dot/avx512_vnni
// Shapes are always y[M, N] = x[M, K] * W[N, K]^T: M rows of activations (tokens), N output channels,
// K inputs per channel. The report (scripts/bench_report.py) parses these names, so keep the format
// (it reads the gemm rows back as gemm/w4a8/<isa>/<backend>/..., the older names, which stored runs use).
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "peak.hpp"

namespace chord::bench {

struct Shape {
  std::size_t m, n, k;
};

inline std::string shape_name(const Shape& s) {
  return std::to_string(s.m) + ":" + std::to_string(s.n) + ":" + std::to_string(s.k);
}

// Multiply-accumulates of one y = x W^T; a MAC counts as 2 ops (the usual GOPS convention).
inline double gemm_ops(const Shape& s) { return 2.0 * double(s.m) * double(s.n) * double(s.k); }

// What a row is measured against for its "% of peak" (the report recomputes it from the medians of
// the peak/... rows; the counter below uses the probe run at start-up, for the console).
//   dot:        integer dot-product throughput of `isa` (compute-bound int8 rows)
//   fma:        fp32 FMA throughput of `isa` (compute-bound fp32 rows)
//   bandwidth:  streaming read bandwidth (gemv rows: bytes of packed weights per second)
enum class Bound { dot, fma, bandwidth };

// Compute-bound unless there is a single row of activations: a gemv reads every weight once.
inline Bound bound_of(const Shape& s, bool int8) {
  if (s.m == 1) return Bound::bandwidth;
  return int8 ? Bound::dot : Bound::fma;
}

// Sets the counters every row carries: GOPS and GB/s of weights (both rates), the weight bytes, the
// percentage of the matching peak, and a label "vs=<bound>:<isa>" that tells the report which peak.
inline void set_counters(benchmark::State& state, const Shape& s, double weight_bytes, Bound bound,
                         Isa isa) {
  using benchmark::Counter;
  state.counters["GOPS"] = Counter(gemm_ops(s) * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["GBps"] = Counter(weight_bytes * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["weight_MiB"] = Counter(weight_bytes / (1024.0 * 1024.0));
  const Peaks& peaks = startup_peaks();
  double peak = 0.0, work = 0.0;  // peak in units per second; work in the same units per iteration
  std::string vs;
  switch (bound) {
    case Bound::dot:
      peak = peaks.dot_gops(isa) * 1e9, work = gemm_ops(s);
      vs = "dot:" + std::string(isa_name(peaks.probe_isa(isa)));
      break;
    case Bound::fma:
      peak = peaks.fma_gflops(isa) * 1e9, work = gemm_ops(s);
      vs = "fma:" + std::string(isa_name(peaks.probe_isa(isa)));
      break;
    case Bound::bandwidth: peak = peaks.read_gbps * 1e9, work = weight_bytes, vs = "bandwidth"; break;
  }
  if (peak > 0.0) state.counters["pct_peak"] = Counter(100.0 * work / peak, Counter::kIsIterationInvariantRate);
  state.SetLabel("vs=" + vs);
}

// Seeded uniform values in [lo, hi). A 64-bit xorshift generator rather than mt19937: the largest
// benchmark needs 268 million of them, and statistical quality does not matter for timing.
inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(n);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& f : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    f = lo + (hi - lo) * static_cast<float>(x >> 40) * (1.0f / 16777216.0f);  // 24 random bits
  }
  return v;
}

// Seeded integers uniform in [lo, hi], as T (same generator).
template <typename T>
std::vector<T> random_ints(std::size_t n, std::uint64_t seed, int lo, int hi) {
  std::vector<T> v(n);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  const std::uint64_t span = static_cast<std::uint64_t>(hi - lo + 1);
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    v[i] = static_cast<T>(lo + static_cast<int>((x >> 32) % span));
  }
  return v;
}

}  // namespace chord::bench
