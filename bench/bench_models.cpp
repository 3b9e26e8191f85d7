// bench/bench_models.cpp: single-user inference latency of SASRec and Caser (batch 1, one thread).
//
// Rows (Google Benchmark names):
//   model/sasrec/<variant>/encode+score101      encode a full 200-item history, score 101 candidates
//   model/sasrec/<variant>/encode+score_all     encode, then score the whole catalogue
//   model/caser/<variant>/encode+score101, .../encode+score_all
// variants: fp32 (the reference), w8a32 / w4a32 / w2a32 (per-channel quantized weights, fp32
// activations), w8a8 / w4a8 / w2a8 (int8 per-row activations), each quantizing every layer, embeddings
// included, through the best kernel table of this CPU (runtime dispatch; CHORD_ISA / CHORD_BACKEND
// force another); fp32-nn is the fp32 model on chord::nn's ops without a table. Shapes are the ML-1M models' (3,416 items, 6,040 users): SASRec d = 50, 2 blocks,
// 1 head, max length 200; Caser d = 50, L = 5, nh = 16, nv = 4. Weights are freshly initialized:
// latency does not depend on their values. Time = one user (encode + score), in microseconds.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "chord/models/caser_inference.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/ops/dispatch.hpp"

namespace {

using namespace chord;
using namespace chord::models;

struct Variant {
  const char* name;
  int bits;  // 0: fp32
  LinearMode mode;
  bool table = true;  // false: no kernel table (chord::nn's fp32 ops, as the trainer's validation)
};
constexpr Variant kVariants[] = {{"fp32-nn", 0, LinearMode::dense_f32, false}, {"fp32", 0, LinearMode::dense_f32},  {"w8a32", 8, LinearMode::mixed_f32},
                                 {"w8a8", 8, LinearMode::mixed_s8},   {"w4a32", 4, LinearMode::mixed_f32},
                                 {"w4a8", 4, LinearMode::mixed_s8},   {"w2a32", 2, LinearMode::mixed_f32},
                                 {"w2a8", 2, LinearMode::mixed_s8}};

InferenceOptions options_for(const Variant& v, const std::vector<LayerShape>& layers) {
  InferenceOptions o;
  o.mode = v.mode;
  o.kernels = v.table ? &best_kernels() : nullptr;  // fp32 uses the table's layernorm / attention too
  if (v.bits != 0)
    for (const LayerShape& l : layers) o.bits.emplace_back(l.channels, std::uint8_t(v.bits));
  return o;
}

std::vector<std::int32_t> sequence(std::size_t n, std::int32_t num_items, std::uint64_t seed) {
  nn::Rng rng(seed);
  std::vector<std::int32_t> items(n);
  for (auto& item : items) item = 1 + std::int32_t(rng.below(std::uint64_t(num_items)));
  return items;
}

template <typename Engine>
void run(benchmark::State& state, const Engine& engine, std::int32_t user, const std::vector<std::int32_t>& history,
         const std::vector<std::int32_t>& candidates, bool all) {
  auto scratch = engine.make_scratch();
  std::vector<float> h(engine.state_size()), scores(all ? std::size_t(engine.num_items()) + 1 : candidates.size());
  for (auto _ : state) {
    engine.encode(user, history.data(), history.size(), scratch, h.data());
    if (all)
      engine.score_all(h.data(), scores.data(), scratch);
    else
      engine.score(h.data(), candidates.data(), candidates.size(), scores.data(), scratch);
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(isa_name(best_kernels().isa)) + "/" + best_kernels().backend);
}

void register_all() {
  static SasrecConfig sc = [] {
    SasrecConfig c;
    c.num_items = 3416, c.d = 50, c.blocks = 2, c.heads = 1, c.max_len = 200, c.hidden = 50;
    return c;
  }();
  static CaserConfig cc = [] {
    CaserConfig c;
    c.num_items = 3416, c.num_users = 6040;
    return c;
  }();
  static SasrecModel sasrec = [] {
    SasrecModel m(sc);
    m.init(1);
    return m;
  }();
  static CaserModel caser = [] {
    CaserModel m(cc);
    m.init(1);
    return m;
  }();
  static const std::vector<std::int32_t> history = sequence(200, sc.num_items, 1);
  static const std::vector<std::int32_t> candidates = sequence(101, sc.num_items, 2);
  for (const Variant& v : kVariants) {
    for (bool all : {false, true}) {
      const std::string suffix = std::string("/") + v.name + (all ? "/encode+score_all" : "/encode+score101");
      benchmark::RegisterBenchmark(("model/sasrec" + suffix).c_str(), [v, all](benchmark::State& state) {
        const SasrecInference engine(sasrec, options_for(v, describe(sc).quantizable_shapes()));
        run(state, engine, 0, history, candidates, all);
      })->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("model/caser" + suffix).c_str(), [v, all](benchmark::State& state) {
        const CaserInference engine(caser, options_for(v, describe(cc).quantizable_shapes()));
        run(state, engine, 17, history, candidates, all);
      })->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
