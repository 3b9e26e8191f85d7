// bench/bench_ops.cpp: SASRec attention and Caser convolution rows, per kernel table, next to the
// reference ops they replace (single thread, like every row of chord_bench).
//
//   attention/core_f32/<isa>/<backend>/L:d:heads      ops::attention_core on projected Q, K, V (fp32)
//   attention/row_f32/<isa>/<backend>/L:d:heads       ops::attention_row, one query against an L-long cache
//   attention/w{8,4}a8/<isa>/<backend>/L:d:heads      ops::causal_self_attention, W-A8 projections
//   attention/step_w8a8/<isa>/<backend>/L:d:heads     ops::causal_attention_step: the token at position
//                                                     L-1 decoded against a cache of L-1 positions
//   conv/horizontal_w{8,4}a8/<isa>/<backend>/L:d:nh   ops::caser_horizontal (+ ReLU, max-pool)
//   conv/vertical_w{8,4}a8/<isa>/<backend>/L:d:nv     ops::caser_vertical
//   rowops/quantize_a8/<isa>/<backend>/M:K             ops::quantize_rows (ref: core's quantize_rows)
//   rowops/{layernorm,gelu,softmax}/<isa>/<backend>/M:N  the fp32 row ops on SASRec's [L, d] and [L, L]
//   linear/dense_f32/<isa>/<backend>/M:N:K           ops::linear_forward, dense layer (nn::gemm_nt)
//   .../ref/ref/...                                   the same op from ref/ (the oracle), for scale
// Shapes: SASRec L = 200, d = 64 (MovieLens) and 50 (Amazon), one head; Caser L = 5, d = 50,
// nh = 16 per height, nv = 4. GOPS counts 2 ops per multiply-accumulate of the projections, QK^T and
// PV (causal: L(L+1)/2 query-key pairs).
//
// The rows register themselves when the program starts (a static registrar below), so this file needs
// no call from main.cpp; the report (scripts/bench_report.py) does not parse these names yet.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chord/ops/attention.hpp"
#include "chord/ops/conv.hpp"
#include "chord/ops/elementwise.hpp"
#include "chord/ops/linear.hpp"
#include "chord/ops/norm.hpp"
#include "chord/ref/activation.hpp"
#include "chord/ref/attention.hpp"
#include "chord/ref/conv.hpp"
#include "chord/ref/linear.hpp"
#include "chord/ref/norm.hpp"
#include "common.hpp"
#include "kernel_tables.hpp"

namespace chord::bench {
namespace {

std::string table_label(const KernelTable& t) { return std::string(isa_name(t.isa)) + "/" + t.backend; }

// Who runs a row: a kernel table, or (no table) the reference ops, labelled ref/ref.
using Runner = std::pair<std::string, std::optional<KernelTable>>;
std::vector<Runner> runners(const std::vector<KernelTable>& tables) {
  std::vector<Runner> list;
  for (const KernelTable& t : tables) list.emplace_back(table_label(t), t);
  list.emplace_back("ref/ref", std::nullopt);
  return list;
}

LinearLayer dense_layer(std::size_t out, std::size_t in, std::uint64_t seed) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  return LinearLayer::dense(out, in, random_floats(out * in, seed, -bound, bound), random_floats(out, seed + 1));
}
LinearLayer quantized(const LinearLayer& dense, int bits) {
  const std::vector<std::uint8_t> widths(dense.out, static_cast<std::uint8_t>(bits));
  return quantize_linear(dense, widths.data(), LinearMode::mixed_s8);
}

AttentionLayer attention_layer(std::size_t d, int bits) {
  AttentionLayer layer;
  layer.heads = 1;
  layer.query = quantized(dense_layer(d, d, 11), bits);
  layer.key = quantized(dense_layer(d, d, 12), bits);
  layer.value = quantized(dense_layer(d, d, 13), bits);
  layer.output = quantized(dense_layer(d, d, 14), bits);
  return layer;
}

double attention_core_ops(std::size_t length, std::size_t d) {
  return 2.0 * 2.0 * double(length) * double(length + 1) / 2.0 * double(d);  // QK^T and PV, causal
}

void set_rate(benchmark::State& state, double ops) {
  state.counters["GOPS"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// One row: `run` once per iteration.
void add_row(const std::string& name, double ops, std::function<void()> run) {
  benchmark::RegisterBenchmark(name.c_str(), [ops, run](benchmark::State& state) {
    for (auto _ : state) {
      run();
      benchmark::ClobberMemory();
    }
    set_rate(state, ops);
  })->Unit(benchmark::kMicrosecond);
}

void register_attention(const std::vector<KernelTable>& tables) {
  constexpr std::size_t kLength = 200, kHeads = 1;
  for (std::size_t d : {64, 50}) {
    const std::string shape = std::to_string(kLength) + ":" + std::to_string(d) + ":" + std::to_string(kHeads);
    const auto q = std::make_shared<std::vector<float>>(random_floats(kLength * d, 1));
    const auto k = std::make_shared<std::vector<float>>(random_floats(kLength * d, 2));
    const auto v = std::make_shared<std::vector<float>>(random_floats(kLength * d, 3));
    const auto out = std::make_shared<std::vector<float>>(kLength * d);
    const double core = attention_core_ops(kLength, d), row = 2.0 * 2.0 * double(kLength) * double(d);
    const double projections = 4 * 2.0 * double(kLength) * double(d) * double(d);
    for (const Runner& runner : runners(tables)) {
      const std::string& label = runner.first;
      const std::optional<KernelTable> table = runner.second;  // captured by value below
      add_row("attention/core_f32/" + label + "/" + shape, core, [=] {
        if (table) ops::attention_core(*table, q->data(), k->data(), v->data(), kLength, d, kHeads, {}, out->data());
        else ref::attention_core(q->data(), k->data(), v->data(), kLength, d, kHeads, {}, out->data());
      });
      add_row("attention/row_f32/" + label + "/" + shape, row, [=] {
        const float* last = q->data() + (kLength - 1) * d;
        if (table) ops::attention_row(*table, last, k->data(), v->data(), kLength, d, kHeads, {}, out->data());
        else ref::attention_row(last, k->data(), v->data(), kLength, d, kHeads, {}, out->data());
      });
      for (int bits : {8, 4}) {
        const auto layer = std::make_shared<AttentionLayer>(attention_layer(d, bits));
        add_row("attention/w" + std::to_string(bits) + "a8/" + label + "/" + shape, core + projections, [=] {
          if (table) ops::causal_self_attention(*table, *layer, q->data(), kLength, {}, out->data());
          else ref::causal_self_attention(*layer, q->data(), kLength, {}, out->data());
        });
      }
      if (table) {  // decoding: a cache of L-1 positions, then the step for position L-1 (undone each time)
        const auto layer = std::make_shared<AttentionLayer>(attention_layer(d, 8));
        const auto cache = std::make_shared<ops::KvCache>(d, kLength);
        for (std::size_t t = 0; t + 1 < kLength; ++t) cache->append(k->data() + t * d, v->data() + t * d);
        add_row("attention/step_w8a8/" + label + "/" + shape, row + projections / double(kLength), [=] {
          cache->truncate(kLength - 1);  // undo the previous iteration's step (capacity kept)
          ops::causal_attention_step(*table, *layer, q->data(), q->data(), *cache, {}, out->data());
        });
      }
    }
  }
}

void register_conv(const std::vector<KernelTable>& tables) {
  constexpr std::size_t kLength = 5, kDim = 50, kHorizontal = 16, kVertical = 4;
  const auto e = std::make_shared<std::vector<float>>(random_floats(kLength * kDim, 21));
  const auto out = std::make_shared<std::vector<float>>(kVertical * kDim + kLength * kHorizontal);
  double horizontal_ops = 0.0;
  for (std::size_t h = 1; h <= kLength; ++h) horizontal_ops += 2.0 * double(kLength - h + 1) * kHorizontal * h * kDim;
  const double vertical_ops = 2.0 * kVertical * kLength * kDim;
  for (int bits : {8, 4}) {
    const auto filters = std::make_shared<CaserFilters>();
    for (std::size_t h = 1; h <= kLength; ++h)
      filters->horizontal.push_back(quantized(dense_layer(kHorizontal, h * kDim, 30 + h), bits));
    filters->vertical = quantized(dense_layer(kVertical, kLength, 40), bits);
    const std::string w = "w" + std::to_string(bits) + "a8/";
    const std::string hshape = std::to_string(kLength) + ":" + std::to_string(kDim) + ":" + std::to_string(kHorizontal);
    const std::string vshape = std::to_string(kLength) + ":" + std::to_string(kDim) + ":" + std::to_string(kVertical);
    for (const Runner& runner : runners(tables)) {
      const std::string& label = runner.first;
      const std::optional<KernelTable> table = runner.second;  // captured by value below
      add_row("conv/horizontal_" + w + label + "/" + hshape, horizontal_ops, [=] {
        if (table) ops::caser_horizontal(*table, e->data(), kLength, kDim, filters->horizontal, out->data());
        else ref::caser_horizontal(e->data(), kLength, kDim, filters->horizontal, out->data());
      });
      add_row("conv/vertical_" + w + label + "/" + vshape, vertical_ops, [=] {
        if (table) ops::caser_vertical(*table, e->data(), kLength, kDim, filters->vertical, out->data());
        else ref::caser_vertical(e->data(), kLength, kDim, filters->vertical, out->data());
      });
    }
  }
}

void register_rowops(const std::vector<KernelTable>& tables) {
  // quantize_rows: the step in front of every W-A8 layer (SASRec projections: [L, d]; decoding: [1, d]).
  for (const auto& shape_mk : std::vector<std::pair<std::size_t, std::size_t>>{{200, 64}, {1, 64}, {200, 50}, {5, 250}}) {
    const std::size_t m = shape_mk.first, k = shape_mk.second;  // (structured bindings: no lambda capture in C++17)
    const auto x = std::make_shared<std::vector<float>>(random_floats(m * k, 31));
    const auto rows = std::make_shared<QuantizedRows>();
    const std::string shape = std::to_string(m) + ":" + std::to_string(k);
    for (const Runner& runner : runners(tables)) {
      const std::optional<KernelTable> table = runner.second;
      add_row("rowops/quantize_a8/" + runner.first + "/" + shape, double(m * k), [=] {
        if (table) ops::quantize_rows(*table, x->data(), m, k, k, *rows);
        else quantize_rows(x->data(), m, k, k, *rows);
      });
    }
  }
  // layernorm and GELU on [L, d], softmax on the [L, L] scores (GOPS here: elements per ns).
  constexpr std::size_t kLength = 200, kDim = 64;
  const auto x = std::make_shared<std::vector<float>>(random_floats(kLength * kLength, 32, -4.0f, 4.0f));
  const auto y = std::make_shared<std::vector<float>>(kLength * kLength);
  const auto gamma = std::make_shared<std::vector<float>>(random_floats(kDim, 33));
  const std::string ld = std::to_string(kLength) + ":" + std::to_string(kDim);
  const std::string ll = std::to_string(kLength) + ":" + std::to_string(kLength);
  for (const Runner& runner : runners(tables)) {
    const std::optional<KernelTable> table = runner.second;
    add_row("rowops/layernorm/" + runner.first + "/" + ld, double(kLength * kDim), [=] {
      if (table) ops::layernorm(*table, x->data(), kLength, kDim, gamma->data(), gamma->data(), 1e-5f, y->data());
      else ref::layernorm(x->data(), kLength, kDim, gamma->data(), gamma->data(), 1e-5f, y->data());
    });
    add_row("rowops/gelu/" + runner.first + "/" + ld, double(kLength * kDim), [=] {
      if (table) ops::gelu(*table, x->data(), kLength * kDim, y->data());
      else ref::gelu(x->data(), kLength * kDim, y->data());
    });
    add_row("rowops/softmax/" + runner.first + "/" + ll, double(kLength * kLength), [=] {
      if (table) ops::softmax(*table, x->data(), kLength, kLength, y->data());
      else ref::softmax(x->data(), kLength, kLength, y->data());
    });
  }
}

// ops::linear_forward on a dense layer (nn::gemm_nt, whatever the table: one row, under the best one)
// next to ref::linear_forward (the triple loop it ran before). Shapes: SASRec's projections [L, d] x
// [d, d] and the decoding step [1, d], a 256-wide layer, and Caser's fc1-like 1:50:250 (y = x W^T).
void register_linear(const std::vector<KernelTable>& tables) {
  std::vector<Runner> list = runners(tables);
  if (list.size() > 2) list.erase(list.begin() + 1, list.end() - 1);  // the best table, and ref/ref
  for (const Shape& s : std::vector<Shape>{{200, 64, 64}, {1, 64, 64}, {200, 256, 256}, {1, 50, 250}}) {
    const auto layer = std::make_shared<LinearLayer>(dense_layer(s.n, s.k, 51));
    const auto x = std::make_shared<std::vector<float>>(random_floats(s.m * s.k, 52));
    const auto y = std::make_shared<std::vector<float>>(s.m * s.n);
    for (const Runner& runner : list) {
      const std::optional<KernelTable> table = runner.second;
      add_row("linear/dense_f32/" + runner.first + "/" + shape_name(s), 2.0 * double(s.m * s.n * s.k), [=] {
        if (table) ops::linear_forward(*table, *layer, x->data(), s.k, y->data(), s.n, s.m);
        else ref::linear_forward(*layer, x->data(), s.k, y->data(), s.n, s.m);
      });
    }
  }
}

// Registers the rows before main() runs (Google Benchmark accepts registrations at any time before
// RunSpecifiedBenchmarks).
struct Registrar {
  Registrar() {
    const std::vector<KernelTable> tables = bench_kernel_tables();
    register_attention(tables);
    register_conv(tables);
    register_rowops(tables);
    register_linear(tables);
  }
} const registrar;

}  // namespace
}  // namespace chord::bench
