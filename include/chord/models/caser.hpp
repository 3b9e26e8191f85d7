// chord/models/caser.hpp: Caser's training graph (fp32, forward + backward) over a batch of windows.
//
// The model (Tang & Wang 2018, in the arrangement of caser_pytorch), per window of the last L items:
//   E   = item_emb[inputs]                                    [L, d]     (padding id 0 -> zero row, or
//                                                                         row 0 when learned_padding_row)
//   v   = conv_v(E)  (nv filters [L] over time)               [nv * d]
//   o_h = maxpool_t relu(conv_h(E))  (nh filters per height)  [L * nh]
//   c   = dropout([v | o_h])                                  [F = nv d + L nh]
//   z   = relu(fc1 c)                                         [d]
//   x   = [z | user_emb[user]]                                [2d]
//   logit(item) = out_emb[item] . x + out_bias[item]          (W2 and b2 of the reference)
//   loss = mean BCE over the real targets (target 0 = padding: skipped) + mean BCE over their negatives
// User u (dense index 0..num_users-1) is embedding row u + 1: row 0 is nn::Embedding's padding row.
// Initialization follows caser_pytorch: item/user embeddings N(0, 1/d), out_emb N(0, 1/(2d)),
// out_bias 0, convolutions and fc1 PyTorch's defaults.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"
#include "chord/models/config.hpp"
#include "chord/nn/conv.hpp"
#include "chord/nn/dropout.hpp"
#include "chord/nn/elementwise.hpp"
#include "chord/nn/embedding.hpp"
#include "chord/nn/init.hpp"
#include "chord/nn/linear.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {
struct BceLoss;  // nn/loss.hpp: the training loss, kept out of the device's includes
}  // namespace chord::nn

namespace chord::models {

// What one worker keeps for a sub-batch of up to `rows` windows.
struct CaserWorkspace {
  std::size_t rows = 0;
  std::vector<std::uint32_t> inputs;       // [rows, L]
  std::vector<std::uint32_t> users;        // [rows] embedding rows (user + 1)
  std::vector<std::uint32_t> items;        // [rows, T (1 + N)]: per target, the target then its negatives
  AlignedVector<float> E;                  // [rows, L, d]
  AlignedVector<float> v, h, conv_scratch; // [rows, nv d], [rows, L nh], [rows L, nh]
  std::vector<std::uint32_t> argmax;       // [rows, L nh]
  AlignedVector<float> c;                  // [rows, F] after dropout
  AlignedVector<std::uint8_t> c_keep;      // [rows, F]
  AlignedVector<float> z, x;               // [rows, d], [rows, 2d]
  AlignedVector<float> logits, dlogits;    // [rows, T (1 + N)]
  std::vector<std::uint8_t> mask;          // [rows, T (1 + N)]
  AlignedVector<float> pos, neg, dpos, dneg;            // loss views
  std::vector<std::uint8_t> pos_mask, neg_mask;
  AlignedVector<float> dx, dz, dc, dv, dh, dE;          // backward scratch

  void resize(const CaserConfig& cfg, std::size_t max_rows) {
    const std::size_t L = std::size_t(cfg.L), d = std::size_t(cfg.d), T = std::size_t(cfg.T);
    const std::size_t per = T * (1 + std::size_t(cfg.negatives)), F = std::size_t(cfg.conv_features());
    const std::size_t nvd = std::size_t(cfg.nv) * d, lnh = L * std::size_t(cfg.nh);
    inputs.resize(max_rows * L), users.resize(max_rows), items.resize(max_rows * per);
    E.resize(max_rows * L * d), dE.resize(max_rows * L * d);
    v.resize(max_rows * nvd), dv.resize(max_rows * nvd);
    h.resize(max_rows * lnh), dh.resize(max_rows * lnh), argmax.resize(max_rows * lnh);
    conv_scratch.resize(max_rows * L * std::size_t(cfg.nh));
    c.resize(max_rows * F), c_keep.resize(max_rows * F), dc.resize(max_rows * F);
    z.resize(max_rows * d), dz.resize(max_rows * d);
    x.resize(max_rows * 2 * d), dx.resize(max_rows * 2 * d);
    logits.resize(max_rows * per), dlogits.resize(max_rows * per), mask.resize(max_rows * per);
    pos.resize(max_rows * T), dpos.resize(max_rows * T), pos_mask.resize(max_rows * T);
    neg.resize(max_rows * per), dneg.resize(max_rows * per), neg_mask.resize(max_rows * per);
  }
};

class CaserModel {
 public:
  explicit CaserModel(const CaserConfig& config) : config_(config) {
    config_.validate();
    const std::size_t d = std::size_t(config_.d), L = std::size_t(config_.L);
    item_emb = nn::Embedding::create(params_, "item_emb", std::size_t(config_.num_items) + 1, d);
    item_emb.zero_padding = !config_.learned_padding_row;
    user_emb = nn::Embedding::create(params_, "user_emb", std::size_t(config_.num_users) + 1, d);
    conv_v = nn::CaserVerticalConv::create(params_, "conv_v", L, d, std::size_t(config_.nv));
    conv_h = nn::CaserHorizontalConv::create(params_, "conv_h", L, d, std::size_t(config_.nh));
    fc1 = nn::Linear::create(params_, "fc1", std::size_t(config_.conv_features()), d);
    out_emb = nn::Embedding::create(params_, "out_emb", std::size_t(config_.num_items) + 1, 2 * d);
    out_bias = params_.add("out_bias.weight", {std::size_t(config_.num_items) + 1}, /*weight_decay=*/false);
    dropout = nn::Dropout(config_.dropout);
  }

  void init(std::uint64_t seed) {
    nn::Rng rng(seed, 0xCA5);
    const std::size_t d = std::size_t(config_.d);
    nn::fill_normal(params_.value(item_emb.weight), item_emb.rows * d, 0.0f, 1.0f / float(d), rng);
    nn::fill_normal(params_.value(user_emb.weight), user_emb.rows * d, 0.0f, 1.0f / float(d), rng);
    conv_v.init(params_, rng);
    conv_h.init(params_, rng);
    fc1.init(params_, rng);
    nn::fill_normal(params_.value(out_emb.weight), out_emb.rows * 2 * d, 0.0f, 1.0f / float(2 * d), rng);
    nn::fill_constant(params_.value(out_bias), out_emb.rows, 0.0f);
    if (item_emb.zero_padding) item_emb.zero_padding_row(params_);
    user_emb.zero_padding_row(params_);
  }

  const CaserConfig& config() const { return config_; }
  nn::Parameters& params() { return params_; }
  const nn::Parameters& params() const { return params_; }
  std::size_t items_per_row() const { return std::size_t(config_.T) * (1 + std::size_t(config_.negatives)); }

  // Loads one window as CaserSampler::fill_row writes it (inputs [L], targets [T], negatives [T, N])
  // into row r of the workspace.
  void load_row(std::size_t r, std::int32_t user, const std::int32_t* inputs, const std::int32_t* targets,
                const std::int32_t* negatives, CaserWorkspace& ws) const {
    const std::size_t L = std::size_t(config_.L), T = std::size_t(config_.T), N = std::size_t(config_.negatives);
    CHORD_CHECK(user >= 0 && user < config_.num_users, "caser: user ", user, " is not in 0..", config_.num_users - 1);
    for (std::size_t i = 0; i < L; ++i) ws.inputs[r * L + i] = std::uint32_t(inputs[i]);
    ws.users[r] = std::uint32_t(user) + 1;
    std::uint32_t* items = ws.items.data() + r * items_per_row();
    for (std::size_t j = 0; j < T; ++j) {
      items[j * (1 + N)] = std::uint32_t(targets[j]);
      for (std::size_t k = 0; k < N; ++k) items[j * (1 + N) + 1 + k] = std::uint32_t(negatives[j * N + k]);
    }
  }

  // The encoder: ws.inputs / ws.users of `rows` windows -> ws.x: [rows, 2d]. rngs: one per row (dropout).
  void encode(const nn::Parameters& p, std::size_t rows, CaserWorkspace& ws, nn::Rng* rngs, bool training) const {
    const std::size_t L = std::size_t(config_.L), d = std::size_t(config_.d);
    const std::size_t nvd = std::size_t(config_.nv) * d, lnh = L * std::size_t(config_.nh);
    const std::size_t F = std::size_t(config_.conv_features());
    ws.rows = rows;
    item_emb.forward(p, ws.inputs.data(), rows * L, ws.E.data());
    conv_v.forward(p, ws.E.data(), rows, ws.v.data());
    conv_h.forward(p, ws.E.data(), rows, ws.h.data(), ws.argmax.data(), ws.conv_scratch.data());
    for (std::size_t r = 0; r < rows; ++r) {
      float* c = ws.c.data() + r * F;
      std::copy(ws.v.data() + r * nvd, ws.v.data() + (r + 1) * nvd, c);
      std::copy(ws.h.data() + r * lnh, ws.h.data() + (r + 1) * lnh, c + nvd);
      if (dropout.active(training)) dropout.forward(c, c, ws.c_keep.data() + r * F, F, rngs[r], training);
    }
    fc1.forward(p, ws.c.data(), ws.z.data(), rows);
    nn::relu_forward(ws.z.data(), ws.z.data(), rows * d);
    float* user = ws.dx.data();  // scratch: [rows, d] user embeddings
    user_emb.forward(p, ws.users.data(), rows, user);
    for (std::size_t r = 0; r < rows; ++r) {
      std::copy(ws.z.data() + r * d, ws.z.data() + (r + 1) * d, ws.x.data() + r * 2 * d);
      std::copy(user + r * d, user + (r + 1) * d, ws.x.data() + r * 2 * d + d);
    }
  }

  // Forward + logits of every (target or negative) item of the loaded rows.
  void forward(const nn::Parameters& p, std::size_t rows, CaserWorkspace& ws, nn::Rng* rngs, bool training) const {
    encode(p, rows, ws, rngs, training);
    const std::size_t d2 = 2 * std::size_t(config_.d), per = items_per_row();
    nn::check_embedding_ids(ws.items.data(), rows * per, out_emb.rows);
    const float* W = p.value(out_emb.weight);
    const float* b = p.value(out_bias);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < per; ++i) {
        const std::uint32_t item = ws.items[r * per + i];
        const float* w = W + std::size_t(item) * d2;
        const float* x = ws.x.data() + r * d2;
        float s = b[item];
        for (std::size_t j = 0; j < d2; ++j) s += w[j] * x[j];
        ws.logits[r * per + i] = s;
        ws.mask[r * per + i] = item != 0;
      }
  }

  // Valid targets and negatives of the loaded rows (the batch normalizers: see nn/loss.hpp).
  std::pair<std::size_t, std::size_t> count_valid(std::size_t rows, const CaserWorkspace& ws) const {
    const std::size_t per = items_per_row(), N = std::size_t(config_.negatives);
    std::size_t pos = 0, neg = 0;
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < per; ++i)
        if (ws.items[r * per + i] != 0) (i % (1 + N) == 0 ? pos : neg) += 1;
    return {pos, neg};
  }

  // BCE of the forwarded rows; fills ws.dlogits. Counts: the whole batch's valid targets / negatives.
  // Defined in models/training_loss.hpp (include it to call this): see SasrecModel::loss.
  nn::BceLoss loss(CaserWorkspace& ws, std::size_t pos_count, std::size_t neg_count) const;

  // Backward of forward + loss: adds every parameter gradient into g.
  void backward(const nn::Parameters& p, nn::GradientBuffer& g, CaserWorkspace& ws, bool training) const {
    const std::size_t rows = ws.rows, L = std::size_t(config_.L), d = std::size_t(config_.d), d2 = 2 * d;
    const std::size_t nvd = std::size_t(config_.nv) * d, lnh = L * std::size_t(config_.nh);
    const std::size_t F = std::size_t(config_.conv_features()), per = items_per_row();
    const float* W = p.value(out_emb.weight);
    float* dW = g.of(out_emb.weight);
    float* db = g.of(out_bias);
    std::fill(ws.dx.begin(), ws.dx.begin() + rows * d2, 0.0f);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < per; ++i) {
        const float gl = ws.dlogits[r * per + i];
        const std::uint32_t item = ws.items[r * per + i];
        if (gl == 0.0f || item == 0) continue;
        const float* w = W + std::size_t(item) * d2;
        float* dw = dW + std::size_t(item) * d2;
        const float* x = ws.x.data() + r * d2;
        float* dx = ws.dx.data() + r * d2;
        db[item] += gl;
        for (std::size_t j = 0; j < d2; ++j) {
          dx[j] += gl * w[j];
          dw[j] += gl * x[j];
        }
      }
    // x = [relu(fc1 c) | user]
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < d; ++j) {
        const float z = ws.z[r * d + j];
        ws.dz[r * d + j] = z > 0.0f ? ws.dx[r * d2 + j] : 0.0f;
      }
    float* duser = ws.dE.data();  // scratch [rows, d] (dE is zeroed below, after use)
    for (std::size_t r = 0; r < rows; ++r)
      std::copy(ws.dx.data() + r * d2 + d, ws.dx.data() + (r + 1) * d2, duser + r * d);
    user_emb.backward(g, ws.users.data(), rows, duser);
    std::fill(ws.dc.begin(), ws.dc.begin() + rows * F, 0.0f);
    fc1.backward(p, g, ws.c.data(), ws.dz.data(), ws.dc.data(), rows);
    // c = dropout([v | h])
    for (std::size_t r = 0; r < rows; ++r) {
      float* dc = ws.dc.data() + r * F;
      if (dropout.active(training)) {
        const std::uint8_t* keep = ws.c_keep.data() + r * F;
        const float scale = dropout.keep_scale();
        for (std::size_t j = 0; j < F; ++j) dc[j] = keep[j] ? dc[j] * scale : 0.0f;
      }
      std::copy(dc, dc + nvd, ws.dv.data() + r * nvd);
      std::copy(dc + nvd, dc + F, ws.dh.data() + r * lnh);
    }
    std::fill(ws.dE.begin(), ws.dE.begin() + rows * L * d, 0.0f);
    conv_v.backward(p, g, ws.E.data(), rows, ws.dv.data(), ws.dE.data());
    conv_h.backward(p, g, ws.E.data(), rows, ws.h.data(), ws.argmax.data(), ws.dh.data(), ws.dE.data());
    item_emb.backward(g, ws.inputs.data(), rows * L, ws.dE.data());
  }

  nn::Embedding item_emb, user_emb;
  nn::CaserVerticalConv conv_v;
  nn::CaserHorizontalConv conv_h;
  nn::Linear fc1;
  nn::Embedding out_emb;
  nn::ParamId out_bias = 0;
  nn::Dropout dropout;

 private:
  CaserConfig config_;
  nn::Parameters params_;
};

}  // namespace chord::models
