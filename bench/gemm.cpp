// bench/gemm.cpp: gemm / gemv through ops::mixed_gemm_{s8,f32}, per kernel table x width x shape, and
// mixed-precision matrices next to their homogeneous segments run separately.
//
// Rows:
//   gemm/w{8,4,2}a8_gemm__<backend>_<isa>/M:N:K   int8 activations (already quantized: the quantize/...
//   gemv/...                                      rows time that step), M = 1 is called gemv
//   gemm/w{8,4,2}f32_gemm__<backend>_<isa>/M:N:K  fp32 activations, weights dequantized in registers
//     (the kernel's entry point by name, ops::gemm_name: grep finds it in backends/; the scalar
//     backend's is w4a8_gemm__scalar)
//   mixed/<mix>/a8/<isa>/<backend>/M:N:K      a whole mixed matrix (shapes.hpp: kMixes)
//   mixed/<mix>/seg_w{b}a8/<isa>/<backend>/M:Nb:K   each of its segments alone, N = that segment's rows
// Weights and activations are built once per shape (seeded) and shared by all tables: every backend
// reads the same packed format.
#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>

#include "areas.hpp"
#include "chord/core/quantize_rows.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/gemm.hpp"
#include "shapes.hpp"

namespace chord::bench {
namespace {

// Random codes of each channel's width and scales in [0.01, 0.02): quantize_channels' clip search
// would take minutes on the 268-million-weight matrices, and kernel timing does not depend on it.
QuantizedChannels random_channels(std::size_t n, std::size_t k, const std::vector<std::uint8_t>& bits,
                                  std::uint64_t seed) {
  QuantizedChannels q;
  q.n = n, q.k = k, q.bits = bits;
  q.codes.resize(n * k);
  q.scales = random_floats(n, static_cast<std::uint32_t>(seed), 0.01f, 0.02f);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < n; ++i) {
    if (bits[i] == 0) continue;  // codes stay 0
    const int lo = code_min(bits[i]), span = code_max(bits[i]) - lo + 1;
    std::int8_t* row = q.codes.data() + i * k;
    for (std::size_t j = 0; j < k; ++j) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      row[j] = static_cast<std::int8_t>(lo + static_cast<int>((x >> 32) % static_cast<std::uint64_t>(span)));
    }
  }
  return q;
}

// Channel widths: homogeneous, or a mix's fractions (rounded; the remainder goes to the first width
// present), assigned to channels in a seeded random order as a user's strategy would.
std::vector<std::uint8_t> channel_bits(const std::string& weights, std::size_t n) {
  if (weights == "w8" || weights == "w4" || weights == "w2")
    return std::vector<std::uint8_t>(n, static_cast<std::uint8_t>(std::stoi(weights.substr(1))));
  const auto mix = std::find_if(kMixes.begin(), kMixes.end(), [&](const Mix& m) { return weights == m.name; });
  CHORD_CHECK(mix != kMixes.end(), "bench: unknown weight set ", weights);
  const std::uint8_t widths[4] = {8, 4, 2, 0};
  std::vector<std::uint8_t> bits;
  for (int w = 0; w < 4; ++w)
    bits.insert(bits.end(), static_cast<std::size_t>(std::lround(mix->fraction[w] * double(n))), widths[w]);
  bits.resize(n, bits.empty() ? 4 : bits.front());
  std::shuffle(bits.begin(), bits.end(), std::mt19937(static_cast<std::uint32_t>(n)));
  return bits;
}

// Built on first use, kept for the whole run (the largest set, 1 x 65,536 x 4,096, is ~640 MiB).
const MixedMatrix& weights_for(const std::string& weights, std::size_t n, std::size_t k) {
  static std::map<std::string, std::unique_ptr<MixedMatrix>> cache;
  const std::string key = weights + "/" + std::to_string(n) + ":" + std::to_string(k);
  auto& slot = cache[key];
  if (!slot) slot = std::make_unique<MixedMatrix>(random_channels(n, k, channel_bits(weights, n), n * 31 + k));
  return *slot;
}

struct Activations {
  std::vector<float> x;  // [m, k]
  QuantizedRows a;       // x quantized per row
};
const Activations& activations_for(std::size_t m, std::size_t k) {
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<Activations>> cache;
  auto& slot = cache[{m, k}];
  if (!slot) {
    slot = std::make_unique<Activations>();
    slot->x = random_floats(m * k, static_cast<std::uint32_t>(m * 7919 + k));
    slot->a = quantize_rows(slot->x.data(), m, k);
  }
  return *slot;
}

std::string table_name(const KernelTable& t) { return std::string(isa_name(t.isa)) + "/" + t.backend; }

void register_homogeneous(const KernelTable& table, const Shape& s, int bits, bool int8) {
  const std::string name = std::string(s.m == 1 ? "gemv/" : "gemm/") + gemm_name(table, bits, int8) + "/" +
                           shape_name(s);
  benchmark::RegisterBenchmark(name.c_str(), [table, s, bits, int8](benchmark::State& state) {
    const MixedMatrix& w = weights_for("w" + std::to_string(bits), s.n, s.k);
    const Activations& act = activations_for(s.m, s.k);
    std::vector<float> y(s.m * s.n);
    for (auto _ : state) {
      if (int8) ops::mixed_gemm_s8(table, act.a, w, nullptr, y.data(), s.n);
      else ops::mixed_gemm_f32(table, act.x.data(), s.k, s.m, w, nullptr, y.data(), s.n);
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, s, double(w.bytes()), bound_of(s, int8), table.isa);
  })->Unit(benchmark::kMicrosecond);
}

void register_mixed(const KernelTable& table, const Shape& s, const Mix& mix) {
  const std::string prefix = std::string("mixed/") + mix.name + "/";
  const std::string suffix = "/" + table_name(table) + "/" + shape_name(s);
  benchmark::RegisterBenchmark((prefix + "a8" + suffix).c_str(), [table, s, mix](benchmark::State& state) {
    const MixedMatrix& w = weights_for(mix.name, s.n, s.k);
    const Activations& act = activations_for(s.m, s.k);
    std::vector<float> y(s.m * s.n);
    for (auto _ : state) {
      ops::mixed_gemm_s8(table, act.a, w, nullptr, y.data(), s.n);
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, s, double(w.bytes()), bound_of(s, true), table.isa);
    state.counters["avg_bits"] = w.average_bits();
  })->Unit(benchmark::kMicrosecond);

  // The same segments as homogeneous matrices, each alone with a contiguous output. Their sizes come
  // from the channel widths (MixedMatrix makes one segment per width present, 8 then 4 then 2), so a
  // filtered run does not have to build the matrix just to register names.
  const std::vector<std::uint8_t> bits = channel_bits(mix.name, s.n);
  std::size_t index = 0;
  for (int b : kPackedBits) {
    const std::size_t rows = static_cast<std::size_t>(std::count(bits.begin(), bits.end(), b));
    if (rows == 0) continue;
    const Shape part{s.m, rows, s.k};
    const std::string name = prefix + "seg_w" + std::to_string(b) + "a8/" + table_name(table) + "/" +
                             shape_name(part);
    benchmark::RegisterBenchmark(name.c_str(), [table, s, part, mix, index](benchmark::State& state) {
      const PackedMatrix& packed = weights_for(mix.name, s.n, s.k).segments()[index].packed;
      const Activations& act = activations_for(s.m, s.k);
      std::vector<float> y(part.m * part.n);
      const GemmS8Fn kernel = table.s8(packed.bits());
      for (auto _ : state) {
        kernel(act.a, packed, GemmOutput{y.data(), nullptr, part.n, nullptr, nullptr});
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
      }
      const double bytes = double(packed.bytes() + packed.rows_padded() * sizeof(float));
      set_counters(state, part, bytes, bound_of(part, true), table.isa);
    })->Unit(benchmark::kMicrosecond);
    ++index;
  }
}

}  // namespace

void register_gemm_benchmarks(const std::vector<KernelTable>& tables) {
  for (const Shape& s : all_gemm_shapes())
    for (const KernelTable& table : tables)
      for (bool int8 : {true, false})
        for (int bits : kPackedBits) register_homogeneous(table, s, bits, int8);
  for (const Shape& s : kMixedShapes)
    for (const Mix& mix : kMixes)
      for (const KernelTable& table : tables) register_mixed(table, s, mix);
}

void register_quantize_benchmarks() {
  // Every (M, K) an a8 row above uses: the cost an fp32-in, fp32-out caller adds to an a8 gemm.
  std::vector<std::pair<std::size_t, std::size_t>> seen;
  for (const Shape& s : all_gemm_shapes()) {
    if (std::find(seen.begin(), seen.end(), std::make_pair(s.m, s.k)) != seen.end()) continue;
    seen.emplace_back(s.m, s.k);
    const std::string name = "quantize/a8/" + std::to_string(s.m) + ":" + std::to_string(s.k);
    benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& state) {
      const Activations& act = activations_for(s.m, s.k);
      QuantizedRows out;
      for (auto _ : state) {
        quantize_rows(act.x.data(), s.m, s.k, s.k, out);
        benchmark::DoNotOptimize(out.codes());
        benchmark::ClobberMemory();
      }
      state.counters["GBps"] =
          benchmark::Counter(double(s.m * s.k * sizeof(float)) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    })->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace chord::bench
