// chord/ref/attention.hpp: reference causal multi-head self-attention, SASRec style.
//
//   Q = x_q Wq^T + bq,  K = x_kv Wk^T + bk,  V = x_kv Wv^T + bv               all [L, d]
//   per head h (columns h*dh .. h*dh+dh-1, dh = d / heads):
//     P_h = softmax(Q_h K_h^T / sqrt(dh) + mask)                              [L, L]
//     C_h = P_h V_h                                                            [L, dh]
//   y = C Wo^T + bo                                                           [L, d]
// mask: position t attends to keys 0..t (causal) that are not padding. SASRec left-pads short
// sequences, so the padding is given either as a count of leading positions or as a per-position
// mask (or both). A query with no key left (a padded position under left padding) gets a context of
// zeros rather than NaN. Padded *queries* are not zeroed here: SASRec multiplies its hidden states by
// the padding mask after each block, and that is the model's business.
//
// Three levels, so that each kernel can be tested on its own:
//   attention_core     already projected Q, K, V -> context C               (the fp32 part)
//   attention_row      one query against a K/V cache -> one context row    (incremental decoding)
//   causal_attention   with the four projections as `LinearLayer` layers (dense, W-A32 or W-A8)
// Projections are quantized; the softmax and the P V product stay fp32 (docs/design.md#kernels).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/ref/linear.hpp"
#include "chord/ref/norm.hpp"

namespace chord::ref {

// Which key positions are padding. Non-owning: `valid` must outlive the call.
//   KeyPadding{}                 no padding
//   KeyPadding{3}                positions 0, 1, 2 are padding (SASRec's left padding)
//   KeyPadding{0, mask.data()}   mask[s] == 0 marks position s as padding; mask: [L]
struct KeyPadding {
  std::size_t left = 0;
  const std::uint8_t* valid = nullptr;

  bool is_key(std::size_t s) const { return s >= left && (valid == nullptr || valid[s] != 0); }
};

namespace detail {

inline std::size_t head_dim(std::size_t d, std::size_t heads, const char* where) {
  CHORD_CHECK(heads > 0, where, ": the number of heads must be positive");
  CHORD_CHECK(d % heads == 0, where, ": model dimension ", d, " is not divisible by ", heads, " heads");
  return d / heads;
}

inline void check_padding(const KeyPadding& padding, std::size_t length, const char* where) {
  CHORD_CHECK(padding.left <= length, where, ": left padding ", padding.left, " exceeds the sequence length ",
              length);
}

// The attention weights of one query of one head over keys 0..count-1 (all rows of stride d):
//   p[s] = softmax_s(q_h . k_h[s] / sqrt(dh)), padded keys -> weight 0, no valid key -> all 0.
// q: [d] (head columns from `offset`), k: [count, d], p: [count].
inline void head_weights(const float* q, const float* k, std::size_t count, std::size_t d, std::size_t offset,
                         std::size_t dh, const KeyPadding& padding, float* p) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  for (std::size_t s = 0; s < count; ++s) {
    if (!padding.is_key(s)) {
      p[s] = -std::numeric_limits<float>::infinity();  // softmax_row's "masked"
      continue;
    }
    float dot = 0.0f;
    for (std::size_t j = 0; j < dh; ++j) dot += q[offset + j] * k[s * d + offset + j];
    p[s] = dot * scale;
  }
  softmax_row(p, count, p);
}

// One head's context for one query: out[offset + j] = sum_s p[s] * v[s][offset + j].
// p: [count], v: [count, d], out: [d] (only the head's dh columns are written).
inline void head_context(const float* p, const float* v, std::size_t count, std::size_t d, std::size_t offset,
                         std::size_t dh, float* out) {
  for (std::size_t j = 0; j < dh; ++j) {
    float sum = 0.0f;
    for (std::size_t s = 0; s < count; ++s) sum += p[s] * v[s * d + offset + j];
    out[offset + j] = sum;
  }
}

}  // namespace detail

// The attention weights themselves (for tests, inspection and the training graph's backward pass).
// q, k: [L, d], heads divides d -> weights: [heads, L, L], weights[h][t][s] = 0 for s > t or s padded.
inline void attention_weights(const float* q, const float* k, std::size_t length, std::size_t d,
                              std::size_t heads, const KeyPadding& padding, float* weights) {
  const std::size_t dh = detail::head_dim(d, heads, "attention_weights");
  detail::check_padding(padding, length, "attention_weights");
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t t = 0; t < length; ++t) {
      float* row = weights + (h * length + t) * length;
      detail::head_weights(q + t * d, k, t + 1, d, h * dh, dh, padding, row);  // keys 0..t: causal
      for (std::size_t s = t + 1; s < length; ++s) row[s] = 0.0f;
    }
}

// (a) Causal attention on projected inputs. q, k, v: [L, d]; heads divides d; out: [L, d] (must not
// overlap q, k or v). Row t of out is the concatenation over heads of sum_{s<=t} P_h[t][s] V_h[s].
inline void attention_core(const float* q, const float* k, const float* v, std::size_t length, std::size_t d,
                           std::size_t heads, const KeyPadding& padding, float* out) {
  const std::size_t dh = detail::head_dim(d, heads, "attention_core");
  detail::check_padding(padding, length, "attention_core");
  std::vector<float> p(length);
  for (std::size_t t = 0; t < length; ++t)
    for (std::size_t h = 0; h < heads; ++h) {
      detail::head_weights(q + t * d, k, t + 1, d, h * dh, dh, padding, p.data());
      detail::head_context(p.data(), v, t + 1, d, h * dh, dh, out + t * d);
    }
}

// (b) Incremental decoding: the newest token's query against the cache of all keys and values so far,
// its own included (the caller appends its k and v before calling). Causality is implicit: the
// cache holds only the past. q: [d], k_cache, v_cache: [count, d], padding indexes cache positions,
// out: [d]. Equal to row count-1 of attention_core on the same inputs.
inline void attention_row(const float* q, const float* k_cache, const float* v_cache, std::size_t count,
                          std::size_t d, std::size_t heads, const KeyPadding& padding, float* out) {
  const std::size_t dh = detail::head_dim(d, heads, "attention_row");
  detail::check_padding(padding, count, "attention_row");
  std::vector<float> p(count);
  for (std::size_t h = 0; h < heads; ++h) {
    detail::head_weights(q, k_cache, count, d, h * dh, dh, padding, p.data());
    detail::head_context(p.data(), v_cache, count, d, h * dh, dh, out);
  }
}

// (c) Causal multi-head attention with projections. Queries come from x_q, keys and values from x_kv
// (SASRec's pre-LN block feeds layernorm(x) as queries and x itself as keys and values).
// x_q, x_kv: [L, d], d = layer.dim() -> y: [L, d]; y may alias x_q or x_kv.
inline void causal_attention(const AttentionLayer& layer, const float* x_q, const float* x_kv, std::size_t length,
                             const KeyPadding& padding, float* y) {
  layer.validate("causal_attention");
  detail::check_padding(padding, length, "causal_attention");
  const std::size_t d = layer.dim();
  const std::vector<float> q = linear_forward(layer.query, x_q, length);
  const std::vector<float> k = linear_forward(layer.key, x_kv, length);
  const std::vector<float> v = linear_forward(layer.value, x_kv, length);
  std::vector<float> context(length * d);
  attention_core(q.data(), k.data(), v.data(), length, d, layer.heads, padding, context.data());
  linear_forward(layer.output, context.data(), d, y, d, length);  // x is no longer read: y may alias it
}

// Self-attention: queries, keys and values from the same x: [L, d] -> y: [L, d]; y may alias x.
inline void causal_self_attention(const AttentionLayer& layer, const float* x, std::size_t length,
                                  const KeyPadding& padding, float* y) {
  causal_attention(layer, x, x, length, padding, y);
}

}  // namespace chord::ref
