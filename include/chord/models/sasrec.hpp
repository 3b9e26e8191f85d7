// chord/models/sasrec.hpp: SASRec's training graph (fp32, forward + backward), one sequence at a time.
//
// The model (Kang & McAuley 2018, in the arrangement of SASRec.pytorch):
//   x0 = dropout(item_emb[ids] * sqrt(d) + pos_emb[positions])                       [n, d]
//   per block:  q  = LN_attn(x);  x1 = q + MHA(queries q, keys/values x)              (causal)
//               f  = LN_ffn(x1);  x  = f + FFN(f)      FFN = dropout(fc2(dropout(relu(fc1 f))))
//   h  = LN_final(x)                                                                   [n, d]
//   logit(t, item) = h[t] . item_emb[item]         (shared item embedding, not scaled)
//   loss = BCE(positive at t) + BCE(one sampled negative at t), over the valid positions
// Padding: the sampler left-pads a row of max_len positions; positions are numbered 1..max_len over the
// padded row (0 = padding), so the last item always has position max_len. The padded rows never reach a
// valid row (they are masked keys, and the reference multiplies them by 0 after every block), so this
// graph runs each sequence on its n valid positions only: the same results, and an ML-1M epoch costs
// the real lengths instead of 200 positions for everyone.
// Graph variants (SasrecConfig::variant, config.hpp; docs/models.md): SASRec.pytorch's legacy, norm-first
// and post-ln arrangements of the same parameters; those run the padded positions too (load() and
// sasrec_history_rows give the rows), with the loss masked to the valid ones (ws.valid).
// Parameter names follow PyTorch's state_dict style: "item_emb.weight", "blocks.0.attn.q.weight", ...
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"
#include "chord/models/config.hpp"
#include "chord/nn/attention.hpp"
#include "chord/nn/dropout.hpp"
#include "chord/nn/elementwise.hpp"
#include "chord/nn/embedding.hpp"
#include "chord/nn/ffn.hpp"
#include "chord/nn/init.hpp"
#include "chord/nn/layernorm.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {
struct BceLoss;  // nn/loss.hpp: the training loss, kept out of the device's includes
}  // namespace chord::nn

namespace chord::models {

struct SasrecBlock {
  nn::LayerNorm ln_attn;
  nn::CausalSelfAttention attn;
  nn::LayerNorm ln_ffn;
  nn::PointwiseFeedForward ffn;
};

// What one worker keeps for one sequence of up to max_len positions (forward saves, backward scratch).
struct SasrecWorkspace {
  // The names follow chord's graph; the variants keep their own intermediates in the same buffers
  // (norm-first: x1 = x + MHA, out = x1 + FFN(f); post-ln: q = x + MHA, x1 = LN_attn(q),
  // f = x1 + FFN(x1), out = LN_ffn(f)), as encode() says.
  struct Block {
    const float* x = nullptr;              // block input [n, d] (x0 or the previous block's out)
    AlignedVector<float> q, q_mean, q_rstd; // LN_attn(x)
    nn::AttentionWorkspace attn;
    AlignedVector<float> x1;               // q + attention
    AlignedVector<float> f, f_mean, f_rstd; // LN_ffn(x1)
    nn::FeedForwardWorkspace ffn;
    AlignedVector<float> out;              // f + FFN(f)
  };
  std::size_t n = 0;  // valid positions of the current sequence
  std::vector<std::uint32_t> ids, positions, pos_items, neg_items;  // [n]
  AlignedVector<float> x0;                 // [n, d] after dropout
  AlignedVector<std::uint8_t> x0_keep;     // [n, d]
  std::vector<Block> blocks;
  AlignedVector<float> h, h_mean, h_rstd;  // final LN
  AlignedVector<float> pos_logits, neg_logits, dpos, dneg;  // [n]
  AlignedVector<std::uint8_t> valid;       // [n]: 1 where the row is a real position (load())
  AlignedVector<float> g0, g1, g2;         // [n, d] backward scratch

  void resize(const SasrecConfig& c) {
    const std::size_t L = std::size_t(c.max_len), d = std::size_t(c.d), hidden = std::size_t(c.hidden);
    for (auto* v : {&ids, &positions, &pos_items, &neg_items}) v->resize(L);
    x0.resize(L * d), x0_keep.resize(L * d);
    blocks.resize(std::size_t(c.blocks));
    for (Block& b : blocks) {
      b.q.resize(L * d), b.q_mean.resize(L), b.q_rstd.resize(L);
      b.attn.resize(1, L, d, std::size_t(c.heads));
      b.x1.resize(L * d);
      b.f.resize(L * d), b.f_mean.resize(L), b.f_rstd.resize(L);
      b.ffn.resize(L, d, hidden);
      b.out.resize(L * d);
    }
    h.resize(L * d), h_mean.resize(L), h_rstd.resize(L);
    for (auto* v : {&pos_logits, &neg_logits, &dpos, &dneg}) v->resize(L);
    valid.resize(L);
    for (auto* v : {&g0, &g1, &g2}) v->resize(L * d);
  }
};

// The rows a SASRec of config c runs for a history (oldest first; the last max_len items are used):
// ids and positions [max_len] (positions 1..max_len over the left-padded row, as the sampler numbers
// them; the padding rows, when c.runs_padding(), id 0 and position 0). Returns the row count; the
// history's last item is the last row. An empty history gives 0 rows. Ids are not checked here.
inline std::size_t sasrec_history_rows(const SasrecConfig& c, const std::int32_t* history, std::size_t len,
                                       std::uint32_t* ids, std::uint32_t* positions) {
  const std::size_t L = std::size_t(c.max_len), n = std::min(len, L), pad = L - n;
  const std::size_t first = c.runs_padding() && n > 0 ? 0 : pad;
  for (std::size_t at = first; at < L; ++at) {
    const bool real = at >= pad;
    ids[at - first] = real ? std::uint32_t(history[len - n + (at - pad)]) : 0;
    positions[at - first] = real ? std::uint32_t(at + 1) : 0;
  }
  return L - first;
}

class SasrecModel {
 public:
  explicit SasrecModel(const SasrecConfig& config) : config_(config) {
    config_.validate();
    const std::size_t d = std::size_t(config_.d);
    item_emb = nn::Embedding::create(params_, "item_emb", std::size_t(config_.num_items) + 1, d);
    pos_emb = nn::Embedding::create(params_, "pos_emb", std::size_t(config_.max_len) + 1, d);
    for (std::int32_t b = 0; b < config_.blocks; ++b) {
      const std::string name = "blocks." + std::to_string(b);
      SasrecBlock block;
      block.ln_attn = nn::LayerNorm::create(params_, name + ".ln_attn", d, config_.layernorm_eps);
      block.attn = nn::CausalSelfAttention::create(params_, name + ".attn", d, std::size_t(config_.heads),
                                                   config_.output_projection, config_.dropout);
      block.ln_ffn = nn::LayerNorm::create(params_, name + ".ln_ffn", d, config_.layernorm_eps);
      block.ffn = nn::PointwiseFeedForward::create(params_, name + ".ffn", d, std::size_t(config_.hidden),
                                                   config_.dropout);
      blocks.push_back(block);
    }
    ln_final = nn::LayerNorm::create(params_, "ln_final", d, config_.layernorm_eps);
    emb_dropout = nn::Dropout(config_.dropout);
  }

  // SASRec.pytorch's initialization: PyTorch defaults, then xavier_normal on every tensor of two or
  // more dimensions (embeddings included), attention biases 0 (nn.MultiheadAttention's), padding rows 0.
  void init(std::uint64_t seed) {
    nn::Rng rng(seed, 0x5A5);
    for (const SasrecBlock& b : blocks) {
      b.ln_attn.init(params_);
      b.attn.init(params_, rng);
      b.ln_ffn.init(params_);
      b.ffn.init(params_, rng);
      for (const nn::Linear* l : {&b.attn.q, &b.attn.k, &b.attn.v})
        nn::fill_constant(params_.value(l->bias), l->out, 0.0f);
      if (b.attn.has_output_projection) nn::fill_constant(params_.value(b.attn.out.bias), b.attn.out.out, 0.0f);
    }
    ln_final.init(params_);
    for (const nn::ParamInfo& info : params_.infos())
      if (info.shape.size() >= 2) nn::xavier_normal(params_, params_.id(info.name), rng);
    item_emb.zero_padding_row(params_);
    pos_emb.zero_padding_row(params_);
  }

  const SasrecConfig& config() const { return config_; }
  nn::Parameters& params() { return params_; }
  const nn::Parameters& params() const { return params_; }

  // --- one sequence -----------------------------------------------------------------------------
  // inputs, positives, negatives: [max_len] as SasrecSampler::fill_row writes them (left-padded with 0).
  // Loads the rows that run into ws: the valid positions, or (config().runs_padding()) all max_len of
  // them, padding included (id 0, position 0: zero-embedded; the loss skips them through ws.valid).
  // Returns the number of valid positions (0 when the row has no pair; then nothing runs).
  std::size_t load(const std::int32_t* inputs, const std::int32_t* positives, const std::int32_t* negatives,
                   SasrecWorkspace& ws) const {
    const std::size_t L = std::size_t(config_.max_len);
    std::size_t pad = 0;
    while (pad < L && inputs[pad] == 0) ++pad;
    const std::size_t first = config_.runs_padding() && pad < L ? 0 : pad;
    ws.n = L - first;
    for (std::size_t t = 0; t < ws.n; ++t) {
      const std::size_t at = first + t;
      const bool real = at >= pad;
      ws.ids[t] = real ? std::uint32_t(inputs[at]) : 0;
      ws.positions[t] = real ? std::uint32_t(at + 1) : 0;
      ws.pos_items[t] = real ? std::uint32_t(positives[at]) : 0;
      ws.neg_items[t] = real ? std::uint32_t(negatives[at]) : 0;
      ws.valid[t] = real ? 1 : 0;
    }
    return L - pad;
  }

  // Forward of the loaded sequence: fills ws (activations) and the logits. training: dropout on.
  void forward(const nn::Parameters& p, SasrecWorkspace& ws, nn::Rng& rng, bool training) const {
    encode(p, ws.ids.data(), ws.positions.data(), ws.n, ws, rng, training);
    const std::size_t d = std::size_t(config_.d), n = ws.n;
    const float* table = p.value(item_emb.weight);
    nn::check_embedding_ids(ws.pos_items.data(), n, item_emb.rows);
    nn::check_embedding_ids(ws.neg_items.data(), n, item_emb.rows);
    for (std::size_t t = 0; t < n; ++t) {
      ws.pos_logits[t] = dot(ws.h.data() + t * d, table + std::size_t(ws.pos_items[t]) * d, d);
      ws.neg_logits[t] = dot(ws.h.data() + t * d, table + std::size_t(ws.neg_items[t]) * d, d);
    }
  }

  // The encoder alone: ids, positions: [n] -> ws.h: [n, d] (the final hidden states).
  void encode(const nn::Parameters& p, const std::uint32_t* ids, const std::uint32_t* positions, std::size_t n,
              SasrecWorkspace& ws, nn::Rng& rng, bool training) const {
    CHORD_CHECK(n <= std::size_t(config_.max_len), "sasrec: sequence of ", n, " positions exceeds max_len ",
                config_.max_len);
    const std::size_t d = std::size_t(config_.d);
    ws.n = n;
    if (ws.ids.data() != ids) std::copy(ids, ids + n, ws.ids.begin());
    if (ws.positions.data() != positions) std::copy(positions, positions + n, ws.positions.begin());
    float* x0 = ws.x0.data();
    item_emb.forward(p, ws.ids.data(), n, x0, std::sqrt(float(d)));
    float* tmp = ws.g0.data();
    pos_emb.forward(p, ws.positions.data(), n, tmp);
    nn::residual_forward(x0, tmp, x0, n * d);
    emb_dropout.forward(x0, x0, ws.x0_keep.data(), n * d, rng, training);
    const float* x = x0;
    const std::size_t no_padding = 0;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const SasrecBlock& block = blocks[b];
      SasrecWorkspace::Block& c = ws.blocks[b];
      c.x = x;
      if (config_.variant == SasrecVariant::post_ln) {
        // c.q = x + MHA(x, x); c.x1 = LN_a(c.q); c.f = c.x1 + FFN(c.x1); c.out = LN_f(c.f)
        block.attn.forward(p, x, x, &no_padding, 1, n, c.attn, c.q.data(), rng, training);
        nn::residual_forward(c.q.data(), x, c.q.data(), n * d);
        block.ln_attn.forward(p, c.q.data(), c.x1.data(), c.q_mean.data(), c.q_rstd.data(), n);
        block.ffn.forward(p, c.x1.data(), c.f.data(), n, c.ffn, rng, training);
        nn::residual_forward(c.f.data(), c.x1.data(), c.f.data(), n * d);
        block.ln_ffn.forward(p, c.f.data(), c.out.data(), c.f_mean.data(), c.f_rstd.data(), n);
      } else if (config_.variant == SasrecVariant::norm_first) {
        // c.q = LN_a(x); c.x1 = x + MHA(c.q, c.q); c.f = LN_f(c.x1); c.out = c.x1 + FFN(c.f)
        block.ln_attn.forward(p, x, c.q.data(), c.q_mean.data(), c.q_rstd.data(), n);
        block.attn.forward(p, c.q.data(), c.q.data(), &no_padding, 1, n, c.attn, c.x1.data(), rng, training);
        nn::residual_forward(c.x1.data(), x, c.x1.data(), n * d);
        block.ln_ffn.forward(p, c.x1.data(), c.f.data(), c.f_mean.data(), c.f_rstd.data(), n);
        block.ffn.forward(p, c.f.data(), c.out.data(), n, c.ffn, rng, training);
        nn::residual_forward(c.out.data(), c.x1.data(), c.out.data(), n * d);
      } else {
        // chord, legacy: c.q = LN_a(x); c.x1 = c.q + MHA(c.q, x); c.f = LN_f(c.x1); c.out = c.f + FFN(c.f)
        block.ln_attn.forward(p, x, c.q.data(), c.q_mean.data(), c.q_rstd.data(), n);
        block.attn.forward(p, c.q.data(), x, &no_padding, 1, n, c.attn, c.x1.data(), rng, training);
        nn::residual_forward(c.x1.data(), c.q.data(), c.x1.data(), n * d);
        block.ln_ffn.forward(p, c.x1.data(), c.f.data(), c.f_mean.data(), c.f_rstd.data(), n);
        block.ffn.forward(p, c.f.data(), c.out.data(), n, c.ffn, rng, training);
        nn::residual_forward(c.out.data(), c.f.data(), c.out.data(), n * d);
      }
      x = c.out.data();
    }
    ln_final.forward(p, x, ws.h.data(), ws.h_mean.data(), ws.h_rstd.data(), n);
  }

  // Loss of the loaded, forwarded sequence; writes ws.dpos / ws.dneg. pos_count: valid positions of
  // the whole batch (the normalizer shared by every worker, see nn/loss.hpp).
  // Defined in models/training_loss.hpp (include it to call this): the device includes this class
  // (model files, inference graphs) but none of the training-only code (nn/loss.hpp).
  nn::BceLoss loss(SasrecWorkspace& ws, std::size_t pos_count) const;

  // Backward of forward + loss: adds every parameter gradient into g.
  void backward(const nn::Parameters& p, nn::GradientBuffer& g, SasrecWorkspace& ws, bool training) const {
    const std::size_t d = std::size_t(config_.d), n = ws.n;
    if (n == 0) return;
    const float* table = p.value(item_emb.weight);
    float* dtable = g.of(item_emb.weight);
    // logits -> dh, and the output side of the shared item embedding
    float* dh = ws.g1.data();
    for (std::size_t t = 0; t < n; ++t) {
      const float* ht = ws.h.data() + t * d;
      const float* ep = table + std::size_t(ws.pos_items[t]) * d;
      const float* en = table + std::size_t(ws.neg_items[t]) * d;
      float* dep = dtable + std::size_t(ws.pos_items[t]) * d;
      float* den = dtable + std::size_t(ws.neg_items[t]) * d;
      const float gp = ws.dpos[t], gn = ws.dneg[t];
      for (std::size_t j = 0; j < d; ++j) {
        dh[t * d + j] = gp * ep[j] + gn * en[j];
        dep[j] += gp * ht[j];
        den[j] += gn * ht[j];
      }
    }
    backward_encoder(p, g, ws, dh, training);
  }

  // Backward of encode() from dh: [n, d], the gradient of the final hidden states (may be ws.g1): adds
  // every encoder parameter gradient into g. backward() is the loss head followed by this; a caller
  // with its own head (e.g. scoring one position against many items) calls it directly.
  void backward_encoder(const nn::Parameters& p, nn::GradientBuffer& g, SasrecWorkspace& ws, const float* dh,
                        bool training) const {
    const std::size_t d = std::size_t(config_.d), n = ws.n;
    if (n == 0) return;
    // final LN: dx (the last block's out) into g0
    std::fill(ws.g0.begin(), ws.g0.begin() + std::ptrdiff_t(n * d), 0.0f);
    const float* last = blocks.empty() ? ws.x0.data() : ws.blocks.back().out.data();
    ln_final.backward(p, g, last, ws.h_mean.data(), ws.h_rstd.data(), dh, ws.g0.data(), n);
    for (std::size_t b = blocks.size(); b-- > 0;) {
      const SasrecBlock& block = blocks[b];
      SasrecWorkspace::Block& c = ws.blocks[b];
      switch (config_.variant) {
        case SasrecVariant::post_ln: backward_post_ln_block(p, g, block, c, n, training, ws); break;
        case SasrecVariant::norm_first: backward_norm_first_block(p, g, block, c, n, training, ws); break;
        default: backward_chord_block(p, g, block, c, n, training, ws); break;
      }
    }
    const float* dout = ws.g0.data();  // every block leaves its input's gradient in g0
    // x0 = dropout(item * sqrt(d) + pos)
    float* demb = ws.g1.data();
    std::fill(demb, demb + n * d, 0.0f);
    emb_dropout.backward(dout, ws.x0_keep.data(), demb, n * d, training);
    item_emb.backward(g, ws.ids.data(), n, demb, std::sqrt(float(d)));
    pos_emb.backward(g, ws.positions.data(), n, demb);
  }

  nn::Embedding item_emb, pos_emb;
  std::vector<SasrecBlock> blocks;
  nn::LayerNorm ln_final;
  nn::Dropout emb_dropout;

 private:
  // Backward of one block: the gradient of its output in ws.g0 -> the gradient of its input in ws.g0
  // (ws.g1, ws.g2: scratch); adds the block's parameter gradients into g. One per variant's forward.
  void backward_chord_block(const nn::Parameters& p, nn::GradientBuffer& g, const SasrecBlock& block,
                            SasrecWorkspace::Block& c, std::size_t n, bool training, SasrecWorkspace& ws) const {
    const std::size_t d = std::size_t(config_.d), no_padding = 0;
    float *dout = ws.g0.data(), *df = ws.g1.data(), *dx1 = ws.g2.data();
    // out = f + FFN(f):  df = dout + FFN^T(dout)
    std::copy(dout, dout + n * d, df);
    block.ffn.backward(p, g, c.f.data(), dout, df, n, c.ffn, training);
    // f = LN_ffn(x1)
    std::fill(dx1, dx1 + n * d, 0.0f);
    block.ln_ffn.backward(p, g, c.x1.data(), c.f_mean.data(), c.f_rstd.data(), df, dx1, n);
    // x1 = q + MHA(q, x):  dq = dx1 + MHA_q^T (into g1), dx = MHA_kv^T (into g0)
    float *dq = ws.g1.data(), *dx = ws.g0.data();
    std::copy(dx1, dx1 + n * d, dq);
    std::fill(dx, dx + n * d, 0.0f);
    block.attn.backward(p, g, c.q.data(), c.x, &no_padding, 1, n, c.attn, dx1, dq, dx, training);
    // q = LN_attn(x)
    block.ln_attn.backward(p, g, c.x, c.q_mean.data(), c.q_rstd.data(), dq, dx, n);
  }
  void backward_norm_first_block(const nn::Parameters& p, nn::GradientBuffer& g, const SasrecBlock& block,
                                 SasrecWorkspace::Block& c, std::size_t n, bool training, SasrecWorkspace& ws) const {
    const std::size_t d = std::size_t(config_.d), no_padding = 0;
    float *dout = ws.g0.data(), *scratch = ws.g1.data(), *dx1 = ws.g2.data();
    // out = x1 + FFN(f), f = LN_ffn(x1):  dx1 = dout + LN_ffn^T(FFN^T(dout))
    std::copy(dout, dout + n * d, dx1);
    float* df = scratch;
    std::fill(df, df + n * d, 0.0f);
    block.ffn.backward(p, g, c.f.data(), dout, df, n, c.ffn, training);
    block.ln_ffn.backward(p, g, c.x1.data(), c.f_mean.data(), c.f_rstd.data(), df, dx1, n);
    // x1 = x + MHA(a, a), a = LN_attn(x):  dx = dx1 + LN_attn^T(MHA_q^T + MHA_kv^T)
    float *da = scratch, *dx = ws.g0.data();
    std::fill(da, da + n * d, 0.0f);
    block.attn.backward(p, g, c.q.data(), c.q.data(), &no_padding, 1, n, c.attn, dx1, da, da, training);
    std::copy(dx1, dx1 + n * d, dx);
    block.ln_attn.backward(p, g, c.x, c.q_mean.data(), c.q_rstd.data(), da, dx, n);
  }
  void backward_post_ln_block(const nn::Parameters& p, nn::GradientBuffer& g, const SasrecBlock& block,
                              SasrecWorkspace::Block& c, std::size_t n, bool training, SasrecWorkspace& ws) const {
    const std::size_t d = std::size_t(config_.d), no_padding = 0;
    float *dout = ws.g0.data(), *ds = ws.g1.data(), *dx1 = ws.g2.data();
    // out = LN_ffn(s2), s2 = x1 + FFN(x1):  dx1 = ds2 + FFN^T(ds2)
    std::fill(ds, ds + n * d, 0.0f);
    block.ln_ffn.backward(p, g, c.f.data(), c.f_mean.data(), c.f_rstd.data(), dout, ds, n);
    std::copy(ds, ds + n * d, dx1);
    block.ffn.backward(p, g, c.x1.data(), ds, dx1, n, c.ffn, training);
    // x1 = LN_attn(s1), s1 = x + MHA(x, x):  dx = ds1 + MHA_q^T(ds1) + MHA_kv^T(ds1)
    std::fill(ds, ds + n * d, 0.0f);
    block.ln_attn.backward(p, g, c.q.data(), c.q_mean.data(), c.q_rstd.data(), dx1, ds, n);
    float* dx = ws.g0.data();
    std::copy(ds, ds + n * d, dx);
    block.attn.backward(p, g, c.x, c.x, &no_padding, 1, n, c.attn, ds, dx, dx, training);
  }

  static float dot(const float* a, const float* b, std::size_t n) {
    float s = 0.0f;
    for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  }

  SasrecConfig config_;
  nn::Parameters params_;
};

}  // namespace chord::models
