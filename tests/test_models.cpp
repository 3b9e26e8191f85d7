// SASRec and Caser (chord::models): the whole training graph against finite differences, fp32 inference
// against the training graph's eval forward, quantized inference against the reference ops, seeded
// reproducibility, model files, and small end-to-end runs (synthetic data: the model must beat
// popularity by a clear margin; a slice of ML-100K when ../shared/data exists).
//
// Finite differences: the loss is a float computation, so each component's central difference carries
// noise ~ eps |f| / h; the check is ||fd - analytic|| <= 2e-2 ||analytic|| + a floor over the checked
// components, and components whose +-h evaluation flips a ReLU or a max-pool choice are not differentiable
// there; the models are built with inputs that keep few of them near a kink and the check tolerates a few.
// CHORD_TEST_NO_THREADS (cross builds): qemu-user hangs in pthread_create, so trainers and evaluators
// run their workers one after the other there (the same numbers).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "chord/data/candidates.hpp"
#include "chord/data/metrics.hpp"
#include "chord/data/reader.hpp"
#include "chord/data/split.hpp"
#include "chord/data/synthetic.hpp"
#include "chord/models/caser.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/models/trainer.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ref/activation.hpp"
#include "chord/ref/attention.hpp"
#include "chord/ref/embedding.hpp"
#include "chord/ref/norm.hpp"

#include "test_helpers.hpp"

using namespace chord;
using namespace chord::models;

namespace {

using chord::test::kSequentialWorkers;

struct FdResult {
  double error = 0.0, norm = 0.0;
  std::size_t checked = 0;
};

// Central differences of loss() over `count` random entries of params (seeded), vs grads.
template <typename Loss>
FdResult finite_differences(nn::Parameters& params, const nn::GradientBuffer& grads, Loss&& loss, std::size_t count,
                            std::uint64_t seed, float h = 2e-3f) {
  FdResult r;
  nn::Rng rng(seed);
  double e2 = 0.0, n2 = 0.0;
  for (const nn::ParamInfo& info : params.infos()) {
    float* v = params.values() + info.offset;
    const float* g = grads.data() + info.offset;
    const std::size_t picks = std::min(count, info.size);
    for (std::size_t k = 0; k < picks; ++k) {
      const std::size_t i = picks == info.size ? k : std::size_t(rng.below(info.size));
      const float saved = v[i];
      v[i] = saved + h;
      const double up = loss();
      v[i] = saved - h;
      const double down = loss();
      v[i] = saved;
      const double fd = (up - down) / (2.0 * double(h));
      e2 += (fd - g[i]) * (fd - g[i]);
      n2 += double(g[i]) * g[i];
      ++r.checked;
    }
  }
  r.error = std::sqrt(e2), r.norm = std::sqrt(n2);
  return r;
}

SasrecConfig tiny_sasrec(float dropout = 0.0f) {
  SasrecConfig c;
  c.num_items = 15, c.d = 8, c.blocks = 2, c.heads = 2, c.max_len = 7, c.hidden = 12, c.dropout = dropout;
  c.layernorm_eps = 1e-5f;
  return c;
}

CaserConfig tiny_caser(float dropout = 0.0f) {
  CaserConfig c;
  c.num_items = 15, c.num_users = 4, c.d = 6, c.L = 4, c.T = 2, c.nh = 3, c.nv = 2, c.negatives = 2, c.dropout = dropout;
  return c;
}

// Mean relative distance ||a - b|| / ||b||.
[[maybe_unused]] double relative_distance(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0.0, n = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) e += double(a[i] - b[i]) * (a[i] - b[i]), n += double(b[i]) * b[i];
  return std::sqrt(e / std::max(n, 1e-30));
}

}  // namespace

TEST_CASE("SASRec: the whole training graph's gradient matches finite differences", "[models][sasrec][grad]") {
  // Every graph variant (config.hpp): chord's, and SASRec.pytorch's legacy, norm-first and post-ln, whose
  // padded positions run through the blocks (keys included) but carry no loss.
  const SasrecVariant variant = GENERATE(SasrecVariant::chord, SasrecVariant::legacy, SasrecVariant::norm_first,
                                         SasrecVariant::post_ln);
  INFO("variant " << variant_name(variant));
  SasrecConfig config = tiny_sasrec();
  config.variant = variant;
  SasrecModel model(config);
  model.init(3);
  // Make the LayerNorm and bias parameters non-trivial so that their gradients are exercised too.
  nn::Rng rng(9);
  for (const nn::ParamInfo& info : model.params().infos())
    if (info.shape.size() == 1)
      for (std::size_t i = 0; i < info.size; ++i) model.params().values()[info.offset + i] += rng.uniform(-0.3f, 0.3f);
  const std::int32_t inputs[7] = {0, 0, 3, 7, 1, 9, 4}, positives[7] = {0, 0, 7, 1, 9, 4, 12},
                     negatives[7] = {0, 0, 5, 2, 14, 6, 8};
  SasrecWorkspace ws;
  ws.resize(model.config());
  REQUIRE(model.load(inputs, positives, negatives, ws) == 5);
  REQUIRE(ws.n == (config.runs_padding() ? 7u : 5u));
  auto loss = [&] {
    nn::Rng r(1);
    model.forward(model.params(), ws, r, false);
    return model.loss(ws, 0).loss;
  };
  nn::GradientBuffer g = model.params().new_gradient_buffer();
  loss();
  model.backward(model.params(), g, ws, false);
  const FdResult fd = finite_differences(model.params(), g, loss, 12, 5);
  INFO("error " << fd.error << " norm " << fd.norm << " over " << fd.checked);
  REQUIRE(fd.checked > 100);
  REQUIRE(fd.norm > 0.0);
  REQUIRE(fd.error <= 2e-2 * fd.norm + 2e-4 * std::sqrt(double(fd.checked)));
  // The padding rows get no gradient.
  for (std::size_t j = 0; j < 8; ++j) REQUIRE(g.of(model.item_emb.weight)[j] == 0.0f);
}

TEST_CASE("Caser: the whole training graph's gradient matches finite differences", "[models][caser][grad]") {
  // chord's zero padding row, and caser_pytorch's learned one (item_emb row 0 read by padded windows)
  CaserConfig config = tiny_caser();
  config.learned_padding_row = GENERATE(false, true);
  INFO("learned padding row " << config.learned_padding_row);
  CaserModel model(config);
  model.init(4);
  nn::Rng rng(11);
  // Larger embeddings than the init's N(0, 1/d), so the conv outputs sit away from ReLU's kink (the
  // learned padding row stays as initialized: scaled, it leaves fc1's ReLU dead for the padded windows).
  for (std::size_t i = std::size_t(config.d); i < model.params().info(model.item_emb.weight).size; ++i)
    model.params().value(model.item_emb.weight)[i] *= 6.0f;
  if (!config.learned_padding_row) model.item_emb.zero_padding_row(model.params());
  CaserWorkspace ws;
  ws.resize(model.config(), 3);
  const std::int32_t in0[4] = {0, 2, 5, 7}, t0[2] = {8, 0}, n0[4] = {1, 3, 0, 0};
  const std::int32_t in1[4] = {4, 9, 11, 13}, t1[2] = {14, 2}, n1[4] = {6, 10, 12, 15};
  const std::int32_t in2[4] = {0, 0, 0, 6}, t2[2] = {3, 5}, n2[4] = {1, 2, 9, 11};
  model.load_row(0, 1, in0, t0, n0, ws);
  model.load_row(1, 3, in1, t1, n1, ws);
  model.load_row(2, 0, in2, t2, n2, ws);
  nn::Rng rngs[3] = {nn::Rng(1), nn::Rng(2), nn::Rng(3)};
  auto loss = [&] {
    model.forward(model.params(), 3, ws, rngs, false);
    return model.loss(ws, 0, 0).loss;
  };
  nn::GradientBuffer g = model.params().new_gradient_buffer();
  loss();
  // Padded targets contribute nothing: 5 real targets, 10 real negatives.
  const auto counts = model.count_valid(3, ws);
  REQUIRE(counts.first == 5);
  REQUIRE(counts.second == 10);
  model.backward(model.params(), g, ws, false);
  double padding_row_gradient = 0.0;
  for (std::size_t j = 0; j < std::size_t(config.d); ++j)
    padding_row_gradient += std::fabs(g.of(model.item_emb.weight)[j]);
  REQUIRE((padding_row_gradient > 0.0) == config.learned_padding_row);
  const FdResult fd = finite_differences(model.params(), g, loss, 10, 6);
  INFO("error " << fd.error << " norm " << fd.norm << " over " << fd.checked);
  REQUIRE(fd.checked > 100);
  REQUIRE(fd.norm > 0.0);
  REQUIRE(fd.error <= 2e-2 * fd.norm + 2e-4 * std::sqrt(double(fd.checked)));
}

namespace {

// A tiny SASRec with non-trivial norms and biases (as after training), and a history longer than max_len.
SasrecModel perturbed_sasrec(const SasrecConfig& c, std::uint64_t seed) {
  SasrecModel model(c);
  model.init(seed);
  nn::Rng rng(seed + 100);
  for (const nn::ParamInfo& info : model.params().infos())
    if (info.shape.size() == 1)
      for (std::size_t i = 0; i < info.size; ++i) model.params().values()[info.offset + i] += rng.uniform(-0.3f, 0.3f);
  return model;
}

std::vector<std::int32_t> history_of(std::size_t n, std::int32_t num_items, std::uint64_t seed) {
  nn::Rng rng(seed);
  std::vector<std::int32_t> h(n);
  for (auto& item : h) item = 1 + std::int32_t(rng.below(std::uint64_t(num_items)));
  return h;
}

// The training graph's eval forward: the last position's hidden state of a history.
std::vector<float> training_graph_state(const SasrecModel& model, const std::vector<std::int32_t>& history) {
  const SasrecConfig& c = model.config();
  const std::size_t L = std::size_t(c.max_len), n = std::min(history.size(), L), d = std::size_t(c.d);
  SasrecWorkspace ws;
  ws.resize(c);
  std::vector<std::uint32_t> ids(L), positions(L);
  const std::size_t rows = sasrec_history_rows(c, history.data(), history.size(), ids.data(), positions.data());
  REQUIRE(rows == (c.runs_padding() ? L : n));
  nn::Rng rng(1);
  model.encode(model.params(), ids.data(), positions.data(), rows, ws, rng, false);
  return std::vector<float>(ws.h.begin() + std::ptrdiff_t((rows - 1) * d), ws.h.begin() + std::ptrdiff_t(rows * d));
}

// SASRec's forward written with the reference ops (ref::), from quantized or dense layers: the oracle
// of the inference graph. bits: uniform width for every layer, 0 = fp32.
std::vector<float> reference_state(const SasrecModel& model, const std::vector<std::int32_t>& history, int bits,
                                   LinearMode mode) {
  const SasrecConfig& c = model.config();
  const nn::Parameters& p = model.params();
  const std::size_t L = std::size_t(c.max_len), n = std::min(history.size(), L), d = std::size_t(c.d);
  auto linear = [&](const nn::Linear& l) {
    LinearLayer dense = LinearLayer::dense(l.out, l.in, std::vector<float>(p.value(l.weight), p.value(l.weight) + l.out * l.in),
                                           std::vector<float>(p.value(l.bias), p.value(l.bias) + l.out));
    if (bits == 0) return dense;
    const std::vector<std::uint8_t> widths(l.out, std::uint8_t(bits));
    return quantize_linear(dense, widths.data(), mode);
  };
  auto gather = [&](const nn::Embedding& e, const std::vector<std::uint32_t>& ids, float scale) {
    std::vector<float> out(ids.size() * d);
    if (bits == 0) {
      ref::embedding_gather(p.value(e.weight), e.rows, d, ids.data(), ids.size(), out.data());
    } else {
      const std::vector<std::uint8_t> widths(e.rows, std::uint8_t(bits));
      ref::embedding_gather(MixedMatrix(p.value(e.weight), e.rows, d, widths.data()), ids.data(), ids.size(), out.data());
    }
    for (float& v : out) v *= scale;
    return out;
  };
  std::vector<std::uint32_t> ids(n), positions(n);
  for (std::size_t t = 0; t < n; ++t) {
    ids[t] = std::uint32_t(history[history.size() - n + t]);
    positions[t] = std::uint32_t(L - n + t + 1);
  }
  std::vector<float> x = gather(model.item_emb, ids, std::sqrt(float(d)));
  const std::vector<float> pos = gather(model.pos_emb, positions, 1.0f);
  ref::residual_add(x.data(), pos.data(), x.size(), x.data());
  auto norm = [&](const nn::LayerNorm& ln, const std::vector<float>& in) {
    std::vector<float> out(in.size());
    ref::layernorm(in.data(), in.size() / d, d, p.value(ln.gamma), p.value(ln.beta), ln.eps, out.data());
    return out;
  };
  for (const SasrecBlock& b : model.blocks) {
    const std::vector<float> q = norm(b.ln_attn, x);
    AttentionLayer attn;
    attn.heads = std::size_t(c.heads);
    attn.query = linear(b.attn.q), attn.key = linear(b.attn.k), attn.value = linear(b.attn.v), attn.output = linear(b.attn.out);
    std::vector<float> y(n * d);
    ref::causal_attention(attn, q.data(), x.data(), n, ref::KeyPadding{}, y.data());
    ref::residual_add(y.data(), q.data(), y.size(), y.data());
    const std::vector<float> f = norm(b.ln_ffn, y);
    std::vector<float> hidden = ref::linear_forward(linear(b.ffn.fc1), f.data(), n);
    ref::relu(hidden.data(), hidden.size(), hidden.data());
    x = ref::linear_forward(linear(b.ffn.fc2), hidden.data(), n);
    ref::residual_add(x.data(), f.data(), x.size(), x.data());
  }
  const std::vector<float> h = norm(model.ln_final, x);
  return std::vector<float>(h.end() - std::ptrdiff_t(d), h.end());
}

InferenceOptions uniform_options(const std::vector<LayerShape>& layers, int bits, LinearMode mode, const KernelTable& k) {
  InferenceOptions o;
  o.mode = mode;
  o.kernels = &k;
  for (const LayerShape& l : layers) o.bits.emplace_back(l.channels, std::uint8_t(bits));
  return o;
}

double norm2(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}

}  // namespace

TEST_CASE("SASRec fp32 inference equals the training graph's eval forward", "[models][sasrec][inference]") {
  SasrecConfig c = tiny_sasrec(0.3f);  // dropout is off in eval: it must not matter
  c.variant = GENERATE(SasrecVariant::chord, SasrecVariant::legacy, SasrecVariant::norm_first, SasrecVariant::post_ln);
  INFO("variant " << variant_name(c.variant));
  const SasrecModel model = perturbed_sasrec(c, 21);
  const SasrecInference engine(model, InferenceOptions{});
  auto scratch = engine.make_scratch();
  for (std::size_t len : {1, 2, 5, 7, 12}) {  // shorter than, equal to and longer than max_len = 7
    const std::vector<std::int32_t> history = history_of(len, c.num_items, len);
    std::vector<float> h(engine.state_size());
    engine.encode(0, history.data(), history.size(), scratch, h.data());
    const std::vector<float> expected = training_graph_state(model, history);
    // Same products and norms, different grouping of rows: agreement to rounding, judged by the norm.
    INFO("history length " << len);
    REQUIRE(relative_distance(h, expected) <= 1e-5);
    if (c.variant == SasrecVariant::chord) {  // the variants' oracle is PyTorch itself (tests/interop)
      const std::vector<float> oracle = reference_state(model, history, 0, LinearMode::dense_f32);
      REQUIRE(relative_distance(h, oracle) <= 1e-4);
    }
    // The same fp32 model with the SIMD row kernels (layernorm, attention) of every usable table.
    for (const KernelTable& kernels : usable_kernel_tables()) {
      InferenceOptions with_kernels;
      with_kernels.kernels = &kernels;
      const SasrecInference fast(model, with_kernels);
      auto fast_scratch = fast.make_scratch();
      std::vector<float> hk(fast.state_size());
      fast.encode(0, history.data(), history.size(), fast_scratch, hk.data());
      INFO(isa_name(kernels.isa) << "/" << kernels.backend);
      REQUIRE(relative_distance(hk, expected) <= 1e-4);
    }
    // Scores are dot products with the shared item embedding, sampled and full alike.
    std::vector<std::int32_t> items = {1, 4, 15};
    std::vector<float> some(3), all(std::size_t(c.num_items) + 1);
    engine.score(h.data(), items.data(), items.size(), some.data(), scratch);
    engine.score_all(h.data(), all.data(), scratch);
    for (std::size_t i = 0; i < items.size(); ++i) {
      const float* row = model.params().value(model.item_emb.weight) + std::size_t(items[i]) * std::size_t(c.d);
      double dot = 0.0, bound = 0.0;
      for (std::size_t j = 0; j < std::size_t(c.d); ++j) dot += double(h[j]) * row[j], bound += std::fabs(double(h[j]) * row[j]);
      REQUIRE(std::fabs(some[i] - dot) <= 1e-5 * bound + 1e-7);
      REQUIRE(std::fabs(all[std::size_t(items[i])] - dot) <= 1e-5 * bound + 1e-7);
    }
  }
}

TEST_CASE("SASRec quantized inference (W-A32, W-A8, 8/4/2 bits, mixed) matches the reference ops", "[models][sasrec][inference]") {
  SasrecConfig c = tiny_sasrec();
  c.d = 16, c.hidden = 20, c.max_len = 9;
  const SasrecModel model = perturbed_sasrec(c, 5);
  const std::vector<LayerShape> layers = describe(c).quantizable_shapes();
  REQUIRE(layers.size() == 2 + 6 * std::size_t(c.blocks));
  const std::vector<std::int32_t> history = history_of(11, c.num_items, 77);
  for (const KernelTable& kernels : usable_kernel_tables()) {
    for (int bits : {8, 4, 2})
      for (LinearMode mode : {LinearMode::mixed_f32, LinearMode::mixed_s8}) {
        const SasrecInference engine(model, uniform_options(layers, bits, mode, kernels));
        auto scratch = engine.make_scratch();
        std::vector<float> h(engine.state_size());
        engine.encode(0, history.data(), history.size(), scratch, h.data());
        const std::vector<float> oracle = reference_state(model, history, bits, mode);
        INFO(isa_name(kernels.isa) << "/" << kernels.backend << " w" << bits << " " << chord::to_string(mode));
        // W-A32: fp32 rounding only. W-A8: a rounding difference upstream may move an int8 code by one
        // step (1/127 of a row's range), so the bound is that of one quantization step per layer.
        REQUIRE(relative_distance(h, oracle) <= (mode == LinearMode::mixed_f32 ? 1e-4 : 3e-2));
        // The int8 path really quantizes the activations: it differs from W-A32 (and from the other
        // path's oracle) by more than rounding.
        if (mode == LinearMode::mixed_s8)
          REQUIRE(relative_distance(h, reference_state(model, history, bits, LinearMode::mixed_f32)) > 1e-5);
        // Candidate scores (row path) and full-catalogue scores (kernel path) agree.
        std::vector<std::int32_t> items(std::size_t(c.num_items));
        for (std::int32_t i = 0; i < c.num_items; ++i) items[std::size_t(i)] = i + 1;
        std::vector<float> some(items.size()), all(items.size() + 1);
        engine.score(h.data(), items.data(), items.size(), some.data(), scratch);
        engine.score_all(h.data(), all.data(), scratch);
        const double scale = norm2(h) * 8.0;  // |score| <= ||h|| ||row||; rows are O(1) here
        for (std::size_t i = 0; i < items.size(); ++i) REQUIRE(std::fabs(some[i] - all[i + 1]) <= 1e-5 * scale);
      }
    // A mixed strategy: every width, pruned channels included, layer by layer.
    InferenceOptions mixed;
    mixed.mode = LinearMode::mixed_s8;
    mixed.kernels = &kernels;
    nn::Rng rng(3);
    for (const LayerShape& l : layers) {
      std::vector<std::uint8_t> widths(l.channels);
      for (auto& w : widths) w = std::uint8_t(std::array<int, 4>{0, 2, 4, 8}[rng.below(4)]);
      mixed.bits.push_back(widths);
    }
    const SasrecInference engine(model, mixed);
    auto scratch = engine.make_scratch();
    std::vector<float> h(engine.state_size());
    engine.encode(0, history.data(), history.size(), scratch, h.data());
    for (float v : h) REQUIRE(std::isfinite(v));
  }
  // A plan of the wrong shape is refused, naming the layer.
  InferenceOptions bad = uniform_options(layers, 4, LinearMode::mixed_s8, best_kernels());
  bad.bits[3].pop_back();
  REQUIRE_THROWS_WITH(SasrecInference(model, bad), Catch::Contains("layer 3"));
}

TEST_CASE("Caser inference: fp32 equals the training graph; quantized paths agree", "[models][caser][inference]") {
  CaserConfig c = tiny_caser(0.5f);
  CaserModel model(c);
  model.init(8);
  const CaserInference engine(model, InferenceOptions{});
  auto scratch = engine.make_scratch();
  CaserWorkspace ws;
  ws.resize(c, 1);
  for (std::size_t len : {1, 3, 4, 9}) {
    const std::vector<std::int32_t> history = history_of(len, c.num_items, 100 + len);
    std::vector<std::int32_t> inputs(std::size_t(c.L), 0), targets(std::size_t(c.T), 1), negatives(std::size_t(c.T * c.negatives), 2);
    data::left_pad_last(history, c.L, inputs.data());
    model.load_row(0, 2, inputs.data(), targets.data(), negatives.data(), ws);
    nn::Rng rng(1);
    model.encode(model.params(), 1, ws, &rng, false);
    std::vector<float> x(engine.state_size());
    engine.encode(2, history.data(), history.size(), scratch, x.data());
    const std::vector<float> expected(ws.x.begin(), ws.x.begin() + std::ptrdiff_t(x.size()));
    INFO("history length " << len);
    REQUIRE(relative_distance(x, expected) <= 1e-5);
    for (int bits : {8, 4, 2})
      for (LinearMode mode : {LinearMode::mixed_f32, LinearMode::mixed_s8}) {
        const CaserInference q(model, uniform_options(describe(c).quantizable_shapes(), bits, mode, best_kernels()));
        auto qs = q.make_scratch();
        std::vector<float> xq(q.state_size());
        q.encode(2, history.data(), history.size(), qs, xq.data());
        std::vector<std::int32_t> items = {1, 5, 9, 15};
        std::vector<float> some(items.size()), all(std::size_t(c.num_items) + 1);
        q.score(xq.data(), items.data(), items.size(), some.data(), qs);
        q.score_all(xq.data(), all.data(), qs);
        for (std::size_t i = 0; i < items.size(); ++i)
          REQUIRE(std::fabs(some[i] - all[std::size_t(items[i])]) <= 1e-5 * (1.0 + std::fabs(all[std::size_t(items[i])])));
        // 8-bit weights stay close to fp32; fewer bits drift further but stay finite.
        if (bits == 8) REQUIRE(relative_distance(xq, x) <= 5e-2);
        for (float v : xq) REQUIRE(std::isfinite(v));
      }
  }
}

namespace {

// Popularity: every user gets the training-set counts as scores (the baseline a model must beat).
struct PopularityEngine {
  struct Scratch {};
  std::vector<float> counts;  // [num_items + 1]
  explicit PopularityEngine(const data::LeaveOneOutSplit& split) : counts(std::size_t(split.num_items) + 1, 0.0f) {
    for (const auto& seq : split.train)
      for (data::ItemId item : seq) counts[std::size_t(item)] += 1.0f;
  }
  Scratch make_scratch() const { return {}; }
  std::size_t state_size() const { return 1; }
  std::int32_t num_items() const { return std::int32_t(counts.size()) - 1; }
  void encode(std::int32_t, const std::int32_t*, std::size_t, Scratch&, float* state) const { state[0] = 0.0f; }
  void score(const float*, const std::int32_t* items, std::size_t m, float* out, Scratch&) const {
    for (std::size_t i = 0; i < m; ++i) out[i] = counts[std::size_t(items[i])];
  }
  void score_all(const float*, float* out, Scratch&) const { std::copy(counts.begin(), counts.end(), out); }
};

// Small and quick everywhere: sanitizer and emulator runs are 10-50x slower.
data::SyntheticOptions small_synthetic() {
  data::SyntheticOptions o;
  o.num_users = 300;
  o.num_items = 300;
  o.num_clusters = 4;
  o.min_length = 8;
  o.max_length = 24;
  o.noise = 0.1;
  o.seed = 7;
  return o;
}

TrainOptions quick_training(int epochs, std::size_t batch) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.lr = 5e-3f;  // a few hundred steps must do
  o.threads = 2;
  o.sequential_workers = kSequentialWorkers;
  o.eval_every = 0;  // no early stopping: the test compares the final model
  o.seed = 11;
  return o;
}

EvalOptions test_protocol(Protocol p) {
  EvalOptions e;
  e.phase = data::Phase::test;
  e.protocol = p;
  e.threads = 2;
  e.sequential_workers = kSequentialWorkers;
  return e;
}

}  // namespace

TEST_CASE("Training is reproducible: same seed, same model; another seed, another model", "[models][train]") {
  const data::LeaveOneOutSplit split = data::leave_one_out(data::make_synthetic(small_synthetic()).dataset);
  SasrecConfig c;
  c.num_items = split.num_items, c.d = 8, c.blocks = 1, c.heads = 1, c.max_len = 12, c.hidden = 8, c.dropout = 0.2f;
  auto train = [&](std::uint64_t seed) {
    SasrecModel model(c);
    model.init(seed);
    TrainOptions o = quick_training(1, 64);
    o.seed = seed;
    train_sasrec(model, split, o);
    const nn::Parameters& p = model.params();
    return std::vector<float>(p.values(), p.values() + p.flat_size());
  };
  const std::vector<float> a = train(1), b = train(1), other = train(2);
  REQUIRE(a == b);
  REQUIRE(a != other);
}

TEST_CASE("SASRec and Caser learn synthetic data: far better than popularity", "[models][train][e2e]") {
  const data::LeaveOneOutSplit split = data::leave_one_out(data::make_synthetic(small_synthetic()).dataset);
  const EvalResult popularity = evaluate(PopularityEngine(split), split, test_protocol(Protocol::both));
  SECTION("SASRec") {
    SasrecConfig c;
    c.num_items = split.num_items, c.d = 16, c.blocks = 1, c.heads = 1, c.max_len = 20, c.hidden = 16, c.dropout = 0.1f;
    SasrecModel model(c);
    model.init(1);
    const TrainResult r = train_sasrec(model, split, quick_training(15, 32));
    REQUIRE(r.epochs_run == 15);
    REQUIRE(r.epochs.back().loss < r.epochs.front().loss);
    const EvalResult e = evaluate(SasrecInference(model, InferenceOptions{}), split, test_protocol(Protocol::both));
    INFO("SASRec full NDCG@10 " << e.full.ndcg_10 << " vs popularity " << popularity.full.ndcg_10 << "; sampled "
                                << e.sampled.ndcg_10 << " vs " << popularity.sampled.ndcg_10);
    REQUIRE(e.full.users == popularity.full.users);
    REQUIRE(e.full.ndcg_10 >= 4.0 * popularity.full.ndcg_10);
    REQUIRE(e.sampled.ndcg_10 >= popularity.sampled.ndcg_10 + 0.1);
  }
  SECTION("Caser") {
    CaserConfig c;
    c.num_items = split.num_items, c.num_users = split.num_users, c.d = 16, c.L = 5, c.T = 3, c.nh = 4, c.nv = 2;
    c.negatives = 3, c.dropout = 0.2f;
    CaserModel model(c);
    model.init(1);
    TrainOptions o = quick_training(15, 64);
    o.lr = 1e-2f;
    const TrainResult r = train_caser(model, split, o);
    REQUIRE(r.epochs.back().loss < r.epochs.front().loss);
    const EvalResult e = evaluate(CaserInference(model, InferenceOptions{}), split, test_protocol(Protocol::both));
    INFO("Caser full NDCG@10 " << e.full.ndcg_10 << " vs popularity " << popularity.full.ndcg_10 << "; sampled "
                               << e.sampled.ndcg_10 << " vs " << popularity.sampled.ndcg_10);
    REQUIRE(e.full.ndcg_10 >= 4.0 * popularity.full.ndcg_10);
    REQUIRE(e.sampled.ndcg_10 >= popularity.sampled.ndcg_10 + 0.1);
    // 8-bit weights with int8 activations keep most of it.
    const EvalResult q = evaluate(
        CaserInference(model, uniform_options(describe(c).quantizable_shapes(), 8, LinearMode::mixed_s8, best_kernels())), split,
        test_protocol(Protocol::full));
    REQUIRE(q.full.ndcg_10 >= 0.8 * e.full.ndcg_10);
  }
}

TEST_CASE("End to end on a slice of ML-100K: train, save, load, evaluate", "[models][e2e][real]") {
  const std::string path = std::string(CHORD_SHARED_DATA_DIR) + "/ml-100k/u.data";
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else {
    WARN("skipped: " << path << " not found (the shared datasets are not on this machine)");
    return;
  }
  data::Dataset full = data::read_dataset(path);
  // The first 120 users, their last 40 events: seconds, not minutes.
  data::Dataset d;
  d.name = "ml-100k slice";
  d.num_items = full.num_items;
  for (std::size_t u = 0; u < 120; ++u) {
    const auto& s = full.sequences[u];
    d.sequences.emplace_back(s.end() - std::ptrdiff_t(std::min<std::size_t>(40, s.size())), s.end());
    d.user_ids.push_back(full.user_ids[u]);
  }
  d.num_users = std::int32_t(d.sequences.size());
  const data::LeaveOneOutSplit split = data::leave_one_out(d);
  SasrecConfig c;
  c.num_items = split.num_items, c.d = 16, c.blocks = 1, c.heads = 1, c.max_len = 40, c.hidden = 16, c.dropout = 0.2f;
  SasrecModel model(c);
  model.init(1);
  train_sasrec(model, split, quick_training(3, 32));
  const std::string file = "test_models_ml100k.safetensors";
  save_model(file, model, {{"data.source", "ml-100k slice"}});
  const LoadedModel loaded = load_model(file, "sasrec");
  std::remove(file.c_str());
  REQUIRE(loaded.sasrec.has_value());
  REQUIRE(loaded.metadata.at("data.source") == "ml-100k slice");
  const nn::Parameters& a = model.params();
  const nn::Parameters& b = loaded.sasrec->params();
  REQUIRE(std::equal(a.values(), a.values() + a.flat_size(), b.values()));
  const EvalResult e = evaluate(SasrecInference(*loaded.sasrec, InferenceOptions{}), split, test_protocol(Protocol::both));
  REQUIRE(e.sampled.users == 120);
  REQUIRE(e.full.users == 120);
  for (double m : {e.sampled.hr_10, e.sampled.ndcg_10, e.full.hr_10, e.full.ndcg_10}) REQUIRE((m >= 0.0 && m <= 1.0));
  // Three short epochs are not a trained model; they must still rank better than chance (10 of 101).
  REQUIRE(e.sampled.hr_10 > 0.12);
}

TEST_CASE("Embedding rows decode to the mixed matrix's codes (every width, awkward widths d)", "[models][inference]") {
  // gather and the candidate scores decode a channel straight from the packed panels; the oracle is
  // MixedMatrix::code / scale, element by element.
  nn::Rng rng(41);
  for (std::size_t d : {1, 3, 4, 5, 8, 15, 16, 17, 50, 64, 65}) {
    const std::size_t rows = 37;
    std::vector<float> table(rows * d);
    for (auto& v : table) v = float(rng.uniform()) * 2.0f - 1.0f;
    InferenceOptions o;
    o.mode = LinearMode::mixed_s8;
    o.kernels = &best_kernels();
    std::vector<std::uint8_t> widths(rows);
    for (auto& w : widths) w = std::uint8_t(std::array<int, 4>{0, 2, 4, 8}[rng.below(4)]);
    o.bits.push_back(widths);
    const RuntimeEmbedding e = RuntimeEmbedding::create(table.data(), rows, d, o, 0, "table");
    std::vector<std::uint32_t> ids(rows);
    for (std::size_t r = 0; r < rows; ++r) ids[r] = std::uint32_t(r);
    std::vector<float> gathered(rows * d);
    e.gather(ids.data(), rows, 0.5f, gathered.data());
    std::vector<std::int8_t> codes(d);
    for (std::size_t r = 0; r < rows; ++r) {
      INFO("d " << d << " row " << r << " width " << int(widths[r]));
      const float scale = e.channel_codes(r, codes.data());
      REQUIRE(scale == e.mixed().scale(r));
      for (std::size_t j = 0; j < d; ++j) {
        REQUIRE(int(codes[j]) == e.mixed().code(r, j));
        const float want = r == 0 ? 0.0f : float(e.mixed().code(r, j)) * (e.mixed().scale(r) * 0.5f);  // id 0: padding
        REQUIRE(gathered[r * d + j] == want);
      }
    }
  }
}
