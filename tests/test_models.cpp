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
#include "chord/ref/attention.hpp"
#include "chord/ref/norm.hpp"

using namespace chord;
using namespace chord::models;

namespace {

#ifdef CHORD_TEST_NO_THREADS
constexpr bool kSequentialWorkers = true;
#else
constexpr bool kSequentialWorkers = false;
#endif

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
  SasrecModel model(tiny_sasrec());
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
  CaserModel model(tiny_caser());
  model.init(4);
  nn::Rng rng(11);
  // Larger embeddings than the init's N(0, 1/d), so the conv outputs sit away from ReLU's kink.
  for (std::size_t i = 0; i < model.params().info(model.item_emb.weight).size; ++i)
    model.params().value(model.item_emb.weight)[i] *= 6.0f;
  model.item_emb.zero_padding_row(model.params());
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
  const FdResult fd = finite_differences(model.params(), g, loss, 10, 6);
  INFO("error " << fd.error << " norm " << fd.norm << " over " << fd.checked);
  REQUIRE(fd.checked > 100);
  REQUIRE(fd.norm > 0.0);
  REQUIRE(fd.error <= 2e-2 * fd.norm + 2e-4 * std::sqrt(double(fd.checked)));
}
