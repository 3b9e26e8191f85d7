// chord/models/sasrec_inference.hpp: SASRec's inference graph: one user's history -> hidden state -> scores.
//
// The eval-mode forward of models/sasrec.hpp (no dropout), rebuilt from the trained weights with every
// quantizable layer as a runtime layer (fp32, W-A32 or W-A8; see runtime_layers.hpp). Layernorms,
// softmax and the attention products stay fp32 (docs/design.md#kernels). Two shortcuts a device wants and the
// training graph cannot take:
//   - only the history's n <= max_len valid positions are computed (as in training; chord's variant);
//   - only the LAST position's hidden state is needed to score the next item, so the last block
//     computes keys and values for every position but the query, attention, output projection and FFN
//     for the last row only (about 1/5 of that block's work).
// Every graph variant of config.hpp (SasrecConfig::variant) runs here; those that run the padded
// positions compute max_len rows per history (sasrec_history_rows).
// Scores: score(item) = h . item_emb[item], the shared (unscaled) item embedding.
// With a kernel table (InferenceOptions::kernels; required by the quantized modes) layernorm, the
// attention core / row and the activation quantizer run the table's SIMD kernels (ops/); without one
// (the trainer's validation) chord::nn's, which are the training graph's own code.
// Quantizable layers: models/description.hpp describe(SasrecConfig), held in slots().
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chord/core/aligned.hpp"
#include "chord/core/strategy.hpp"
#include "chord/models/description.hpp"
#include "chord/models/engine_slots.hpp"
#include "chord/models/runtime_layers.hpp"
#include "chord/models/sasrec.hpp"
#include "chord/nn/attention.hpp"
#include "chord/nn/elementwise.hpp"
#include "chord/nn/layernorm.hpp"
#include "chord/ops/attention.hpp"
#include "chord/ops/elementwise.hpp"
#include "chord/ops/norm.hpp"

namespace chord::models {

class SasrecInference : public PersonalizedSlots<SasrecInference> {
 public:
  // Per-thread buffers for one history of up to max_len positions.
  struct Scratch {
    std::vector<std::uint32_t> ids, positions;
    AlignedVector<float> x, q, k, v, ctx, a, f, hidden, probs, mean, rstd, tmp;
    QuantizedRows rows;
  };

  SasrecInference(const SasrecModel& model, const InferenceOptions& options)
      : SasrecInference(model, options, describe(model.config())) {}

  // With `description` (the model's own up to which tensors are personalized: models/description.hpp).
  SasrecInference(const SasrecModel& model, const InferenceOptions& options, ModelDescription description)
      : config_(model.config()), description_(std::move(description)), kernels_(options.kernels) {
    description_.check_same_tensors(describe(config_));
    const nn::Parameters& p = model.params();
    blocks_.resize(model.blocks.size());
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      blocks_[b].has_out = model.blocks[b].attn.has_output_projection;
      blocks_[b].ln_attn = Norm::from(p, model.blocks[b].ln_attn, kernels_);
      blocks_[b].ln_ffn = Norm::from(p, model.blocks[b].ln_ffn, kernels_);
    }
    ln_final_ = Norm::from(p, model.ln_final, kernels_);
    build_slots(slots(), description_, p, options);
  }

  // The runtime layer of each described tensor (models/description.hpp), in its order.
  std::vector<RuntimeSlot> slots() {
    std::vector<RuntimeSlot> out = {{nullptr, &item_emb_}, {nullptr, &pos_emb_}};
    for (Block& b : blocks_)
      for (RuntimeLinear* l : b.projections()) out.push_back({l, nullptr});
    return out;
  }
  // (rebuild_personalized, install_personalized: PersonalizedSlots, engine_slots.hpp)

  const ModelDescription& description() const { return description_; }
  const SasrecConfig& config() const { return config_; }
  std::size_t state_size() const { return std::size_t(config_.d); }
  std::int32_t num_items() const { return config_.num_items; }

  Scratch make_scratch() const {
    Scratch s;
    const std::size_t L = std::size_t(config_.max_len), d = std::size_t(config_.d);
    s.ids.resize(L), s.positions.resize(L);
    for (auto* v : {&s.x, &s.q, &s.k, &s.v, &s.ctx, &s.a, &s.f, &s.tmp}) v->resize(L * d);
    s.hidden.resize(L * std::size_t(config_.hidden));
    s.probs.resize(std::size_t(config_.heads) * L * L);
    s.mean.resize(L), s.rstd.resize(L);
    return s;
  }

  // history: [len] item ids, oldest first (the last max_len are used) -> h: [d], the last position's
  // final hidden state. (`user` is unused: SASRec has no user embedding; the argument keeps one
  // signature for every model.) An empty history gives h = LN_final(0) = its bias.
  void encode(std::int32_t /*user*/, const std::int32_t* history, std::size_t len, Scratch& s, float* h) const {
    const std::size_t d = std::size_t(config_.d);
    const std::size_t n = sasrec_history_rows(config_, history, len, s.ids.data(), s.positions.data());
    if (n == 0) {
      std::vector<float> zero(d, 0.0f);
      ln_final_.apply(zero.data(), h, 1, s);
      return;
    }
    for (std::size_t t = 0; t < n; ++t) {
      const std::uint32_t item = s.ids[t];
      CHORD_CHECK(s.positions[t] == 0 || (item >= 1 && item <= std::uint32_t(config_.num_items)), "sasrec: history item ",
                  std::int32_t(item), " is outside 1..", config_.num_items);
    }
    float* x = s.x.data();
    item_emb_.gather(s.ids.data(), n, std::sqrt(float(d)), x);  // padding rows (id 0, position 0): zero
    pos_emb_.gather(s.positions.data(), n, 1.0f, s.tmp.data());
    add(x, s.tmp.data(), x, n * d);
    for (std::size_t b = 0; b < blocks_.size(); ++b) run_block(blocks_[b], n, b + 1 == blocks_.size(), s);
    // run_block leaves the block output in s.x; after the last block only row n - 1 is valid
    ln_final_.apply(s.x.data() + (n - 1) * d, h, 1, s);
  }

  // h: [d]; items: [m] ids in 1..num_items -> out: [m] scores.
  void score(const float* h, const std::int32_t* items, std::size_t m, float* out, Scratch& s) const {
    std::vector<std::uint32_t>& ids = s.ids;
    if (ids.size() < m) ids.resize(m);
    for (std::size_t i = 0; i < m; ++i) {
      CHORD_CHECK(items[i] >= 1 && items[i] <= config_.num_items, "sasrec: candidate item ", items[i],
                  " is outside 1..", config_.num_items);
      ids[i] = std::uint32_t(items[i]);
    }
    item_emb_.score_rows(h, ids.data(), m, out, s.rows);
  }

  // h: [d] -> out: [num_items + 1] scores indexed by item id (out[0], the padding id, is meaningless).
  void score_all(const float* h, float* out, Scratch& s) const { item_emb_.score_all(h, out, s.rows); }

  // Bytes of weights the device keeps (quantized layers packed; norms fp32).
  std::size_t weight_bytes() const {
    std::size_t bytes = item_emb_.bytes() + pos_emb_.bytes() + ln_final_.bytes();
    for (const Block& b : blocks_) {
      for (const RuntimeLinear* l : {&b.q, &b.k, &b.v, &b.out, &b.fc1, &b.fc2}) bytes += linear_bytes(*l);
      bytes += b.ln_attn.bytes() + b.ln_ffn.bytes();
    }
    return bytes;
  }

 private:
  struct Norm {
    std::vector<float> gamma, beta;
    float eps = 1e-8f;
    const KernelTable* kernels = nullptr;
    static Norm from(const nn::Parameters& p, const nn::LayerNorm& ln, const KernelTable* kernels) {
      Norm n;
      n.kernels = kernels;
      n.gamma.assign(p.value(ln.gamma), p.value(ln.gamma) + ln.d);
      n.beta.assign(p.value(ln.beta), p.value(ln.beta) + ln.d);
      n.eps = ln.eps;
      return n;
    }
    // x: [m, d] -> y: [m, d] (may alias)
    void apply(const float* x, float* y, std::size_t m, Scratch& s) const {
      if (kernels != nullptr)
        ops::layernorm(*kernels, x, m, gamma.size(), gamma.data(), beta.data(), eps, y);
      else
        nn::layernorm_forward(x, gamma.data(), beta.data(), y, s.mean.data(), s.rstd.data(), m, gamma.size(), eps);
    }
    std::size_t bytes() const { return (gamma.size() + beta.size()) * sizeof(float); }
  };
  struct Block {
    RuntimeLinear q, k, v, out, fc1, fc2;
    bool has_out = true;
    Norm ln_attn, ln_ffn;
    std::vector<RuntimeLinear*> projections() {  // in the description's order
      if (has_out) return {&q, &k, &v, &out, &fc1, &fc2};
      return {&q, &k, &v, &fc1, &fc2};
    }
  };

  static std::size_t linear_bytes(const RuntimeLinear& l) {
    if (l.layer.out == 0) return 0;
    const std::size_t bias = l.layer.bias.size() * sizeof(float);
    return bias + (l.layer.mode == LinearMode::dense_f32 ? l.layer.weight.size() * sizeof(float) : l.layer.mixed.bytes());
  }

  // y = a + b and x = relu(x) over n floats: the table's SIMD kernels when there is one, else
  // chord::nn's (the same results: one fp32 addition; ReLU keeping NaN).
  void add(const float* a, const float* b, float* y, std::size_t n) const {
    if (kernels_ != nullptr)
      ops::residual_add(*kernels_, a, b, n, y);
    else
      nn::residual_forward(a, b, y, n);
  }
  void relu(float* x, std::size_t n) const {
    if (kernels_ != nullptr)
      ops::relu(*kernels_, x, n, x);
    else
      nn::relu_forward(x, x, n);
  }

  // One block on s.x: [n, d] -> s.x, in the arrangement of config_.variant (config.hpp).
  // last: only row n - 1 of the output is computed.
  void run_block(const Block& b, std::size_t n, bool last, Scratch& s) const {
    const std::size_t d = std::size_t(config_.d), heads = std::size_t(config_.heads), dh = d / heads;
    const std::size_t hidden_width = std::size_t(config_.hidden);
    const bool norm_first = config_.variant == SasrecVariant::norm_first;
    const bool post_ln = config_.variant == SasrecVariant::post_ln;
    float* x = s.x.data();
    // keys and values: from x, or (norm-first) from LN_attn(x), every position (into s.q)
    const float* kv_in = x;
    if (norm_first) {
      b.ln_attn.apply(x, s.q.data(), n, s);
      kv_in = s.q.data();
    }
    if (b.k.layer.mode == LinearMode::mixed_s8 && b.v.layer.mode == LinearMode::mixed_s8) {
      quantize_activations(kernels_, kv_in, n, d, d, s.rows);  // once for both
      b.k.forward_quantized(s.rows, s.k.data(), d);
      b.v.forward_quantized(s.rows, s.v.data(), d);
    } else {
      b.k.forward(kv_in, d, s.k.data(), d, n, s.rows);
      b.v.forward(kv_in, d, s.v.data(), d, n, s.rows);
    }
    // queries of rows [first, n): LN_attn(x) (chord, legacy; stored from row 0 of s.q), the keys' input
    // (norm-first) or x itself (post-ln)
    const std::size_t first = last ? n - 1 : 0, rows = n - first;
    const float* q_in = post_ln ? x + first * d : norm_first ? s.q.data() + first * d : s.q.data();
    if (!post_ln && !norm_first) b.ln_attn.apply(x + first * d, s.q.data(), rows, s);
    float* q = s.a.data();
    b.q.forward(q_in, d, q, d, rows, s.rows);
    float* ctx = s.ctx.data();
    attend(q, n, last, heads, dh, s, ctx);
    // x1 = residual + O(ctx), the residual being the normed queries (chord, legacy) or x; post-ln norms
    // the sum (into s.f's rows)
    float* x1 = s.f.data();
    if (b.has_out)
      b.out.forward(ctx, d, x1, d, rows, s.rows);
    else
      std::copy(ctx, ctx + rows * d, x1);
    add(x1, norm_first || post_ln ? x + first * d : q_in, x1, rows * d);
    if (post_ln) b.ln_attn.apply(x1, x1, rows, s);
    // out = residual + fc2(relu(fc1 ffn_in)) -> s.x rows [first, n): ffn_in = LN_ffn(x1) (residual itself
    // for chord and legacy, x1 for norm-first) or x1 (post-ln, which norms the sum)
    const float* ffn_in = x1;
    if (!post_ln) {
      b.ln_ffn.apply(x1, s.tmp.data(), rows, s);
      ffn_in = s.tmp.data();
    }
    float* hidden = s.hidden.data();
    b.fc1.forward(ffn_in, d, hidden, hidden_width, rows, s.rows);
    relu(hidden, rows * hidden_width);
    float* out = x + first * d;
    b.fc2.forward(hidden, hidden_width, out, d, rows, s.rows);
    add(out, norm_first ? x1 : ffn_in, out, rows * d);
    if (post_ln) b.ln_ffn.apply(out, out, rows, s);
  }

  // Causal attention of the query rows q ([n, d], or the last row only when `last`) over s.k, s.v
  // ([n, d]) -> ctx. Every key is attended (the padding rows a variant runs are keys too).
  void attend(const float* q, std::size_t n, bool last, std::size_t heads, std::size_t dh, Scratch& s, float* ctx) const {
    const std::size_t d = heads * dh;
    if (kernels_ != nullptr && !last) {
      ops::attention_core(*kernels_, q, s.k.data(), s.v.data(), n, d, heads, ops::KeyPadding{}, ctx);
    } else if (kernels_ != nullptr) {
      ops::attention_row(*kernels_, q, s.k.data(), s.v.data(), n, d, heads, ops::KeyPadding{}, ctx);
    } else if (!last) {
      nn::causal_attention_forward(q, s.k.data(), s.v.data(), ctx, s.probs.data(), n, d, heads, 0);
    } else {
      const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
      float* p = s.probs.data();
      for (std::size_t hd = 0; hd < heads; ++hd) {
        nn::gemm_nt(1, n, dh, q + hd * dh, d, s.k.data() + hd * dh, d, nullptr, p, n, false);
        float max_score = p[0] * scale;
        for (std::size_t j = 0; j < n; ++j) max_score = std::max(max_score, p[j] *= scale);
        float sum = 0.0f;
        for (std::size_t j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - max_score));
        const float inv = 1.0f / sum;
        for (std::size_t j = 0; j < n; ++j) p[j] *= inv;
        nn::gemm_nn(1, dh, n, p, n, s.v.data() + hd * dh, d, ctx + hd * dh, d, false);
      }
    }
  }

  SasrecConfig config_;
  ModelDescription description_;
  const KernelTable* kernels_ = nullptr;
  RuntimeEmbedding item_emb_, pos_emb_;
  std::vector<Block> blocks_;
  Norm ln_final_;
};

}  // namespace chord::models
