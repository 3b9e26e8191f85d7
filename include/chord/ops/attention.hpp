// chord/ops/attention.hpp: causal multi-head self-attention (SASRec) through a KernelTable.
//
// The reference's three levels (ref/attention.hpp), same arguments plus the table:
//   attention_core     projected Q, K, V: [L, d] -> context [L, d]          (kernel: table.attention)
//   attention_row      one query against a K/V cache -> one context row    (kernel: table.attention_row)
//   causal_attention   with the four projections as LinearLayer layers (ops::linear_forward: dense,
//                      W-A32 or W-A8), the softmax and P V in fp32
// and, for incremental decoding, a KvCache: causal_attention_step projects one new token, appends its
// key and value to the cache and attends its query to every cached position. Row t of the full
// sequence and step t of the decoding agree within rounding: the full sequence runs blocks of queries
// (outer-product tiles) and a cached row its own routine, which sum in different orders; and the
// projections of one row and of a whole sequence may round differently on the fp32-activation path,
// whose gemm blocks rows.
// Scratch: the thread's Workspace (workspace.hpp, slots scores, q, k, v, context).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/ops/quantize_rows.hpp"
#include "chord/ops/kernel_table.hpp"
#include "chord/ops/linear.hpp"
#include "chord/ops/workspace.hpp"
#include "chord/ref/attention.hpp"

namespace chord::ops {

using ref::KeyPadding;

namespace detail {
inline KeyMask key_mask(const KeyPadding& padding) { return KeyMask{padding.left, padding.valid}; }
}  // namespace detail

// (a) q, k, v: [L, d]; heads divides d; out: [L, d] (must not overlap q, k or v). Row t of out is the
// concatenation over heads of sum_{s <= t, s not padding} P_h[t][s] V_h[s]; zeros for a query with no key.
inline void attention_core(const KernelTable& kernels, const float* q, const float* k, const float* v,
                           std::size_t length, std::size_t d, std::size_t heads, const KeyPadding& padding,
                           float* out) {
  const AttentionFn kernel = detail::require(kernels.attention, kernels, "attention");
  ref::detail::head_dim(d, heads, "attention_core");
  ref::detail::check_padding(padding, length, "attention_core");
  if (length == 0) return;
  float* scratch = Workspace::reserve(Workspace::local().scores, attention_core_scratch_floats(length, d));
  kernel(q, k, v, length, d, heads, detail::key_mask(padding), scratch, out);
}

// (b) The newest token's query against all cached keys and values, its own included. q: [d],
// k_cache, v_cache: [count, d], padding indexes cache positions, out: [d]. Row count-1 of
// attention_core on the same inputs, within rounding.
inline void attention_row(const KernelTable& kernels, const float* q, const float* k_cache, const float* v_cache,
                          std::size_t count, std::size_t d, std::size_t heads, const KeyPadding& padding,
                          float* out) {
  const AttentionRowFn kernel = detail::require(kernels.attention_row, kernels, "attention_row");
  ref::detail::head_dim(d, heads, "attention_row");
  ref::detail::check_padding(padding, count, "attention_row");
  float* scratch = Workspace::reserve(Workspace::local().scores, attention_scratch_floats(count));
  kernel(q, k_cache, v_cache, count, d, heads, detail::key_mask(padding), scratch, out);
}

// (c) Causal multi-head attention with projections: queries from x_q, keys and values from x_kv
// (SASRec's pre-LN block: layernorm(x) and x). x_q, x_kv: [L, d], d = layer.dim() -> y: [L, d]; y may
// alias x_q or x_kv.
inline void causal_attention(const KernelTable& kernels, const AttentionLayer& layer, const float* x_q,
                             const float* x_kv, std::size_t length, const KeyPadding& padding, float* y) {
  layer.validate("causal_attention");
  ref::detail::check_padding(padding, length, "causal_attention");
  if (length == 0) return;
  const std::size_t d = layer.dim();
  Workspace& work = Workspace::local();
  float* q = Workspace::reserve(work.q, length * d);
  float* k = Workspace::reserve(work.k, length * d);
  float* v = Workspace::reserve(work.v, length * d);
  float* context = Workspace::reserve(work.context, length * d);
  linear_forward(kernels, layer.query, x_q, d, q, d, length);
  linear_forward(kernels, layer.key, x_kv, d, k, d, length);
  linear_forward(kernels, layer.value, x_kv, d, v, d, length);
  attention_core(kernels, q, k, v, length, d, layer.heads, padding, context);
  linear_forward(kernels, layer.output, context, d, y, d, length);  // x is no longer read: y may alias it
}

// Self-attention: x: [L, d] -> y: [L, d]; y may alias x.
inline void causal_self_attention(const KernelTable& kernels, const AttentionLayer& layer, const float* x,
                                  std::size_t length, const KeyPadding& padding, float* y) {
  causal_attention(kernels, layer, x, x, length, padding, y);
}

// The projected keys and values of every position decoded so far: [count, d] each, row t = position t.
// Grows by one row per append (amortized; reserve `capacity` rows up front to never reallocate).
class KvCache {
 public:
  explicit KvCache(std::size_t d, std::size_t capacity = 0) : d_(d) {
    keys_.reserve(capacity * d);
    values_.reserve(capacity * d);
  }

  // Appends one position's projected key and value (k, v: [d]).
  void append(const float* k, const float* v) {
    keys_.insert(keys_.end(), k, k + d_);
    values_.insert(values_.end(), v, v + d_);
  }
  // Keeps the first `positions` positions (fewer than size(): undoes steps; capacity is kept).
  void truncate(std::size_t positions) {
    if (positions >= size()) return;
    keys_.resize(positions * d_);
    values_.resize(positions * d_);
  }
  void clear() { truncate(0); }

  std::size_t dim() const { return d_; }
  std::size_t size() const { return d_ == 0 ? 0 : keys_.size() / d_; }  // positions cached
  const float* keys() const { return keys_.data(); }                     // [size(), d]
  const float* values() const { return values_.data(); }                 // [size(), d]

 private:
  std::size_t d_;
  std::vector<float> keys_, values_;
};

// attention_row on a cache: q: [d] against every cached position -> out: [d].
inline void attention_row(const KernelTable& kernels, const float* q, const KvCache& cache, std::size_t heads,
                          const KeyPadding& padding, float* out) {
  attention_row(kernels, q, cache.keys(), cache.values(), cache.size(), cache.dim(), heads, padding, out);
}

// One step of incremental decoding for the token at position cache.size(): projects its key and value
// from x_kv and appends them, projects its query from x_q, attends to positions 0..size()-1 (its own
// included), and applies the output projection. x_q, x_kv: [d] -> y: [d] (y may alias x_q or x_kv).
// Equals row cache.size() of causal_attention over the whole sequence (see the file comment). padding
// indexes cache positions (e.g. KeyPadding{left} for SASRec's left padding).
inline void causal_attention_step(const KernelTable& kernels, const AttentionLayer& layer, const float* x_q,
                                  const float* x_kv, KvCache& cache, const KeyPadding& padding, float* y) {
  layer.validate("causal_attention_step");
  const std::size_t d = layer.dim();
  CHORD_CHECK(cache.dim() == d, "causal_attention_step: the cache holds rows of ", cache.dim(),
              " values, the layer's dimension is ", d);
  Workspace& work = Workspace::local();
  float* q = Workspace::reserve(work.q, d);
  float* k = Workspace::reserve(work.k, d);
  float* v = Workspace::reserve(work.v, d);
  float* context = Workspace::reserve(work.context, d);
  linear_forward(kernels, layer.key, x_kv, d, k, d, 1);
  linear_forward(kernels, layer.value, x_kv, d, v, d, 1);
  linear_forward(kernels, layer.query, x_q, d, q, d, 1);
  cache.append(k, v);
  attention_row(kernels, q, cache, layer.heads, padding, context);
  linear_forward(kernels, layer.output, context, d, y, d, 1);
}

}  // namespace chord::ops
