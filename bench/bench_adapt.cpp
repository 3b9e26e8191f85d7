// bench/bench_adapt.cpp: CHORD's device adaptation (personalize/device/device_model.hpp DeviceModel::adapt) and the
// per-output-channel quantizer it spends its time in.
//
// Rows (Google Benchmark names; run with --benchmark_repetitions=N --benchmark_report_aggregates_only
// for medians):
//   adapt/sasrec/d<d>/3bit      decode one strategy packet (3.0 average bits under {0, 2, 4, 8}),
//                               select each channel's codes at its width from the install-time cache
//                               and pack the personalized layers: per block q, k, v, out [d, d],
//                               fc1 [hidden, d], fc2 [d, hidden] (DeviceModel::adapt).
//   install/sasrec/d<d>         the one-time part at install: every personalized channel quantized at
//                               2, 4 and 8 bits (clip search + Lloyd steps; FrozenChannelCodes), what
//                               an adaptation without the cache would pay for its channels' widths.
//                               The embeddings (item_emb, pos_emb) are quantized once at install too
//                               (DeviceModel's constructor); neither row includes them.
//   quantize_channel/<bits>/<n> one channel of n Gaussian-ish weights; items = weights, so the rate
//                               column is weights per second (1 / that = the cost per weight).
// SASRec shapes: 3,416 items, 2 blocks, 1 head, max length 200, hidden = d; d = 64 and d = 50 (ML-1M's).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/quantizer.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/device/device_model.hpp"

namespace {

using namespace chord;
using namespace chord::personalize;

// Levels giving exactly 3.0 bits per weight under the standard palette {0, 2, 4, 8} on every layer
// whose channel count is a multiple of 8: per 8 channels one 8-bit, two 4-bit, four 2-bit, one pruned
// (8 + 8 + 8 + 0 = 24 bits / 8). Shuffled per layer so that the segments interleave as a real strategy's.
StrategyPacket three_bit_packet(const DeviceModel& device) {
  static constexpr std::uint8_t kPattern[8] = {3, 2, 2, 1, 1, 1, 1, 0};
  nn::Rng rng(7, 1);
  StrategyPacket p;
  p.fingerprint = device.fingerprint();
  p.budget = 3.0f;
  for (const LayerShape& s : device.layers()) {
    std::vector<std::uint8_t> levels(s.channels);
    for (std::size_t c = 0; c < levels.size(); ++c) levels[c] = kPattern[c % 8];
    for (std::size_t c = levels.size(); c > 1; --c) std::swap(levels[c - 1], levels[rng.below(c)]);
    p.strategy.levels.push_back(std::move(levels));
  }
  return p;
}

models::LoadedModel sasrec_model(std::int32_t d) {
  models::SasrecConfig c;
  c.num_items = 3416, c.d = d, c.blocks = 2, c.heads = 1, c.max_len = 200, c.hidden = d;
  models::LoadedModel m;
  m.architecture = "sasrec";
  m.sasrec.emplace(c);
  m.sasrec->init(1);
  return m;
}

void adapt_sasrec(benchmark::State& state) {
  const models::LoadedModel model = sasrec_model(std::int32_t(state.range(0)));
  DeviceModel device(model);
  const std::vector<std::uint8_t> packet = encode_strategy(three_bit_packet(device));
  double decode = 0.0, quantize = 0.0, average = 0.0;
  for (auto _ : state) {
    const Adaptation a = device.adapt(packet.data(), packet.size(), "bench");
    decode += a.decode_seconds, quantize += a.quantize_seconds, average = a.average_bits;
    benchmark::DoNotOptimize(device.bits().data());
  }
  std::size_t weights = 0;
  for (const LayerShape& s : device.layers()) weights += std::size_t(s.channels) * s.fan_in;
  state.counters["avg_bits"] = average;
  state.counters["weights"] = double(weights);
  state.counters["decode_us"] = 1e6 * decode / double(state.iterations());
  state.counters["quantize_pack_us"] = 1e6 * quantize / double(state.iterations());
  state.SetLabel(std::string(isa_name(best_kernels().isa)) + "/" + best_kernels().backend);
}

void install_sasrec(benchmark::State& state) {
  const models::LoadedModel model = sasrec_model(std::int32_t(state.range(0)));
  const std::vector<LayerShape> layers = personalized_layers(model);
  const std::vector<const float*> weights = personalized_weights(model);
  for (auto _ : state) {
    FrozenChannelCodes codes(layers, weights);
    benchmark::DoNotOptimize(&codes);
  }
  state.SetLabel("2, 4 and 8 bits of every personalized channel");
}

void quantize_one_channel(benchmark::State& state) {
  const int bits = int(state.range(0));
  const std::size_t n = std::size_t(state.range(1));
  nn::Rng rng(3, 1);
  std::vector<float> w(n);
  for (float& x : w) x = 0.05f * float(rng.normal());
  std::vector<std::int8_t> codes(n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(quantize_channel(w.data(), n, bits, codes.data()));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
}

BENCHMARK(adapt_sasrec)->Name("adapt/sasrec/d/3bit")->Arg(64)->Arg(50)->Unit(benchmark::kMicrosecond);
BENCHMARK(install_sasrec)->Name("install/sasrec/d")->Arg(64)->Arg(50)->Unit(benchmark::kMicrosecond);
BENCHMARK(quantize_one_channel)
    ->Name("quantize_channel")
    ->Args({2, 64})
    ->Args({4, 64})
    ->Args({8, 64})
    ->Args({4, 256})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
