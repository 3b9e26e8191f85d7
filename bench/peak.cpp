// bench/peak.cpp: the peak probes (see peak.hpp). The x86 loops are compiled with per-function target
// attributes, so the binary still starts on a CPU without AVX-512 and simply skips those probes.
#include "peak.hpp"

#include <benchmark/benchmark.h>
#include <cpuinfo.h>

#include <algorithm>
#include <ctime>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>

#include "chord/core/aligned.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#define CHORD_BENCH_X86 1
#else
#define CHORD_BENCH_X86 0
#endif

namespace chord::bench {
namespace {

// Independent accumulator chains per probe: more than latency x throughput of any of the
// instructions on current cores (vpdpbusd: ~5 cycles x 2 per cycle), so the chains never stall.
constexpr int kChains = 12;
constexpr std::size_t kProbeIters = 1 << 14;  // loop trips per call (~10^8 ops: well above timer noise)

#if CHORD_BENCH_X86
// An empty asm that claims to modify v: keeps the compiler from hoisting loop-invariant work (the
// vpmaddubsw of two constants) out of the loop, without emitting any instruction.
#define CHORD_BENCH_OPAQUE(v) asm volatile("" : "+v"(v))

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) std::int64_t dot_loop_avx512_vnni(
    std::size_t iters, int seed) {
  __m512i acc[kChains];
  for (auto& a : acc) a = _mm512_setzero_si512();
  __m512i a = _mm512_set1_epi8(static_cast<char>(seed)), b = _mm512_set1_epi8(static_cast<char>(seed + 1));
  for (std::size_t i = 0; i < iters; ++i) {
    CHORD_BENCH_OPAQUE(a);
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
  }
  for (int c = 1; c < kChains; ++c) acc[0] = _mm512_add_epi32(acc[0], acc[c]);
  // Store and add: GCC 12's _mm512_reduce_add_* trip -Wuninitialized inside its own header.
  alignas(64) std::int32_t lanes[16];
  _mm512_store_si512(lanes, acc[0]);
  std::int64_t sum = 0;
  for (std::int32_t v : lanes) sum += v;
  return sum;
}
constexpr double kDotOpsAvx512Vnni = 2.0 * 64 * kChains;  // per trip: 64 u8 x s8 MACs per vpdpbusd

// The instruction's own throughput: each chain feeds vpmaddubsw's result back in as its next unsigned
// operand, x = maddubs(x, b). The chains differ, so the compiler cannot merge them into one
// vpmaddubsw (identical inputs would be), and 8 chains cover its latency (3) x throughput (2 per
// cycle on current cores) while staying in registers (with 12, GCC spills chains to the stack and the
// probe measures store forwarding). Any AVX2 int8 kernel needs at least one vpmaddubsw per 32 MACs
// plus its accumulation, so this bounds them all; they reach roughly half of it at best.
constexpr int kChainsAvx2 = 8;
__attribute__((target("avx2,fma"))) std::int64_t dot_loop_avx2(std::size_t iters, int seed) {
  __m256i x[kChainsAvx2];
  for (int c = 0; c < kChainsAvx2; ++c) x[c] = _mm256_set1_epi8(static_cast<char>(seed + c));
  const __m256i b = _mm256_set1_epi8(static_cast<char>(seed + 1));
  for (std::size_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChainsAvx2; ++c) x[c] = _mm256_maddubs_epi16(x[c], b);
  for (int c = 1; c < kChainsAvx2; ++c) x[0] = _mm256_add_epi16(x[0], x[c]);
  alignas(32) std::int16_t lanes[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), x[0]);
  std::int64_t sum = 0;
  for (std::int16_t v : lanes) sum += v;
  return sum;
}
constexpr double kDotOpsAvx2 = 2.0 * 32 * kChainsAvx2;  // per trip: 32 u8 x s8 MACs per vpmaddubsw

__attribute__((target("avx512f"))) double fma_loop_avx512(std::size_t iters, float seed) {
  __m512 acc[kChains];
  for (auto& a : acc) a = _mm512_set1_ps(seed);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (std::size_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  for (int c = 1; c < kChains; ++c) acc[0] = _mm512_add_ps(acc[0], acc[c]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc[0]);
  double sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}
constexpr double kFmaOpsAvx512 = 2.0 * 16 * kChains;

__attribute__((target("avx2,fma"))) double fma_loop_avx2(std::size_t iters, float seed) {
  __m256 acc[kChains];
  for (auto& a : acc) a = _mm256_set1_ps(seed);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::size_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  for (int c = 1; c < kChains; ++c) acc[0] = _mm256_add_ps(acc[0], acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  double sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}
constexpr double kFmaOpsAvx2 = 2.0 * 8 * kChains;

// Sum of 64-bit words read as 4 interleaved streams (the buffer's four quarters, 64 bytes from each per
// trip): one core's hardware prefetchers reach a higher rate on a few streams than on one (here ~30 vs
// ~27 GB/s, measured while writing this), and a kernel walking several tiles at once gets it too, so
// a single-stream probe would be beaten by the kernels it is supposed to bound.
constexpr int kStreams = 4;
__attribute__((target("avx2"))) std::uint64_t read_sum_avx2(const std::uint64_t* p, std::size_t words) {
  const std::size_t part = words / kStreams / 8 * 8;  // words per stream, whole 64-byte lines
  __m256i acc[kStreams][2];
  for (auto& a : acc) a[0] = a[1] = _mm256_setzero_si256();
  for (std::size_t i = 0; i < part; i += 8)
    for (int s = 0; s < kStreams; ++s) {
      const std::uint64_t* q = p + s * part + i;
      acc[s][0] = _mm256_add_epi64(acc[s][0], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
      acc[s][1] = _mm256_add_epi64(acc[s][1], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 4)));
    }
  __m256i total = _mm256_setzero_si256();
  for (auto& a : acc) total = _mm256_add_epi64(total, _mm256_add_epi64(a[0], a[1]));
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total);
  std::uint64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (std::size_t i = kStreams * part; i < words; ++i) sum += p[i];
  return sum;
}
#endif  // CHORD_BENCH_X86

std::uint64_t read_sum_portable(const std::uint64_t* p, std::size_t words) {
  std::uint64_t s[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= words; i += 4) s[0] += p[i], s[1] += p[i + 1], s[2] += p[i + 2], s[3] += p[i + 3];
  for (; i < words; ++i) s[0] += p[i];
  return s[0] + s[1] + s[2] + s[3];
}

std::uint64_t read_sum(const std::uint64_t* p, std::size_t words) {
#if CHORD_BENCH_X86
  if (cpu().avx2) return read_sum_avx2(p, words);
#endif
  return read_sum_portable(p, words);
}

// The bandwidth buffer, written once (so every page is mapped before anything is timed).
const AlignedVector<std::uint64_t>& read_buffer() {
  static const AlignedVector<std::uint64_t> buffer(read_buffer_bytes() / sizeof(std::uint64_t), 1);
  return buffer;
}

// One probe: a function running `iters` trips, and the ops (or bytes) one trip does.
struct Probe {
  std::string name;  // the row name: peak/dot/avx512_vnni
  double (*run)(std::size_t iters);
  double work_per_trip;
  std::size_t trips;
  const char* counter;  // "GOPS" or "GBps"
};

std::vector<Probe> probes() {
  std::vector<Probe> list;
#if CHORD_BENCH_X86
  const CpuDescription& c = cpu();
  if (c.avx512_vnni) {
    list.push_back({"peak/dot/avx512_vnni", [](std::size_t n) { return double(dot_loop_avx512_vnni(n, 1)); },
                    kDotOpsAvx512Vnni, kProbeIters, "GOPS"});
    list.push_back({"peak/fma/avx512_vnni", [](std::size_t n) { return fma_loop_avx512(n, 1.0f); },
                    kFmaOpsAvx512, kProbeIters, "GOPS"});
  }
  if (c.avx2) {
    list.push_back({"peak/dot/avx2", [](std::size_t n) { return double(dot_loop_avx2(n, 1)); }, kDotOpsAvx2,
                    kProbeIters, "GOPS"});
    list.push_back({"peak/fma/avx2", [](std::size_t n) { return fma_loop_avx2(n, 1.0f); }, kFmaOpsAvx2,
                    kProbeIters, "GOPS"});
  }
#endif
  // One trip = one pass over the buffer.
  list.push_back({"peak/read_bw/" + std::string(cpu().avx2 ? "avx2" : "scalar"),
                  [](std::size_t n) {
                    const auto& b = read_buffer();
                    double s = 0;
                    for (std::size_t i = 0; i < n; ++i) s += double(read_sum(b.data(), b.size()));
                    return s;
                  },
                  double(read_buffer_bytes()), 1, "GBps"});
  return list;
}

// This thread's CPU time in seconds: like the benchmark rows, the probe must not count the time slices
// a busy machine gives to other processes.
double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Best rate (work per second) of a few timed calls lasting about `seconds` of CPU time in total.
double measure(const Probe& p, double seconds) {
  p.run(p.trips);  // warm up: clocks ramp, pages fault in
  double best = 0.0, spent = 0.0;
  do {
    const double t0 = thread_seconds();
    benchmark::DoNotOptimize(p.run(p.trips));
    const double dt = thread_seconds() - t0;
    spent += dt;
    best = std::max(best, p.work_per_trip * double(p.trips) / dt);
  } while (spent < seconds);
  return best;
}

Peaks& mutable_peaks() {
  static Peaks peaks;
  return peaks;
}

}  // namespace

const CpuDescription& cpu() {
  static const CpuDescription description = [] {
    CpuDescription d;
    if (cpuinfo_initialize()) {
      const cpuinfo_package* package = cpuinfo_get_package(0);
      if (package != nullptr && package->name[0] != '\0') d.name = package->name, d.name_source = "cpuinfo";
      if (cpuinfo_get_l3_caches_count() > 0) d.llc_bytes = cpuinfo_get_l3_cache(0)->size;
      else if (cpuinfo_get_l2_caches_count() > 0) d.llc_bytes = cpuinfo_get_l2_cache(0)->size;
      d.avx2 = cpuinfo_has_x86_avx2() && cpuinfo_has_x86_fma3();
      d.avx512_vnni = cpuinfo_has_x86_avx512f() && cpuinfo_has_x86_avx512bw() && cpuinfo_has_x86_avx512vl() &&
                      cpuinfo_has_x86_avx512vnni();
    }
    if (d.name.empty()) {  // cpuinfo knows no marketing name for some (virtualized) CPUs
      std::ifstream in("/proc/cpuinfo");
      for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
          d.name = line.substr(line.find(':') + 2), d.name_source = "/proc/cpuinfo";
          break;
        }
    }
    if (d.name.empty()) d.name = "unknown CPU", d.name_source = "unknown";
    return d;
  }();
  return description;
}

std::size_t read_buffer_bytes() {
  return std::max<std::size_t>(std::size_t(256) << 20, 8 * cpu().llc_bytes);
}

Isa Peaks::probe_isa(Isa isa) const {
  if (isa == Isa::avx2 || isa == Isa::avx512_vnni) return isa;
  if (isa == Isa::scalar) return dot_avx512_vnni > 0 ? Isa::avx512_vnni : dot_avx2 > 0 ? Isa::avx2 : Isa::scalar;
  return isa;  // an ISA this probe does not cover (ARM): no peak
}
double Peaks::dot_gops(Isa isa) const {
  switch (probe_isa(isa)) {
    case Isa::avx512_vnni: return dot_avx512_vnni;
    case Isa::avx2: return dot_avx2;
    default: return 0.0;
  }
}
double Peaks::fma_gflops(Isa isa) const {
  switch (probe_isa(isa)) {
    case Isa::avx512_vnni: return fma_avx512;
    case Isa::avx2: return fma_avx2;
    default: return 0.0;
  }
}

const Peaks& startup_peaks() { return mutable_peaks(); }

void measure_startup_peaks(double seconds_per_probe) {
  Peaks& peaks = mutable_peaks();
  for (const Probe& p : probes()) {
    const double rate = measure(p, seconds_per_probe) * 1e-9;
    if (p.name == "peak/dot/avx512_vnni") peaks.dot_avx512_vnni = rate;
    else if (p.name == "peak/fma/avx512_vnni") peaks.fma_avx512 = rate;
    else if (p.name == "peak/dot/avx2") peaks.dot_avx2 = rate;
    else if (p.name == "peak/fma/avx2") peaks.fma_avx2 = rate;
    else peaks.read_gbps = rate;
  }
}

void register_peak_benchmarks() {
  for (const Probe& p : probes()) {
    // A peak is the best the core showed: the report reads the "max" aggregate of these rows (the
    // median of a kernel row against the max of its probe).
    benchmark::RegisterBenchmark(p.name.c_str(), [p](benchmark::State& state) {
      for (auto _ : state) benchmark::DoNotOptimize(p.run(p.trips));
      state.counters[p.counter] =
          benchmark::Counter(p.work_per_trip * double(p.trips) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
      if (p.name.rfind("peak/read_bw", 0) == 0)
        state.SetLabel("buffer=" + std::to_string(read_buffer_bytes() >> 20) + "MiB");
    })->ComputeStatistics("max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); });
  }
}

}  // namespace chord::bench
