// chord/nn/attention.hpp: causal multi-head self-attention with left padding (SASRec's attention).
//
// One sequence of L positions, the first `pad` of which are left padding, model width d, `heads`
// heads of width dh = d / heads (head h owns columns [h dh, (h+1) dh) of Q, K, V):
//   S_h = Q_h K_h^T / sqrt(dh)                          [L, L]
//   P_h[i][j] = softmax_j(S_h[i][j]) over pad <= j <= i   (causal, padding keys masked)
//   C_h = P_h V_h                                       [L, dh]  -> context C [L, d]
// A padding query (i < pad) has no key to attend to: its context row and probabilities are zero.
// In training, dropout may be applied to P before the product with V (AttentionDropout).
// The layer adds the Q/K/V projections (and optionally an output projection, as torch's
// nn.MultiheadAttention that the PyTorch SASRec uses; the original TF SASRec has none).
//
// Work skipped on purpose: rows and columns before `pad`, and the upper triangle. The valid block is
// processed in strips of kCausalRowBlock query rows; strip [r0, r1) only needs keys [0, r1), so the
// products cost about half of the full L x L ones.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"
#include "chord/nn/dropout.hpp"
#include "chord/nn/gemm_f32.hpp"
#include "chord/nn/linear.hpp"
#include "chord/nn/random.hpp"

namespace chord::nn {

inline constexpr std::size_t kCausalRowBlock = 32;

// Optional dropout on the attention probabilities (both SASRec reference implementations apply it):
// the context is computed from D = dropout(P); P itself stays saved for the softmax backward.
// Null or inactive (eval, p = 0): no dropout, and the buffers below are not touched.
struct AttentionDropout {
  const Dropout* dropout = nullptr;
  bool training = false;
  Rng* rng = nullptr;             // forward only: the decisions' stream
  float* dropped = nullptr;       // [heads, L, L]: D (saved by forward)
  std::uint8_t* keep = nullptr;   // [heads, L, L]: the decisions (saved by forward)

  bool active() const { return dropout != nullptr && dropout->active(training); }
};

// One sequence. q, k, v: [L, d] (forward inputs)  ->  context: [L, d], probs: [heads, L, L] (saved).
inline void causal_attention_forward(const float* q, const float* k, const float* v, float* context, float* probs,
                                     std::size_t L, std::size_t d, std::size_t heads, std::size_t pad,
                                     const AttentionDropout& drop = {}) {
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const bool dropping = drop.active();
  pad = std::min(pad, L);
  const std::size_t n = L - pad;  // valid positions
  std::fill(context, context + pad * d, 0.0f);
  for (std::size_t h = 0; h < heads; ++h) {
    float* ph = probs + h * L * L;
    std::fill(ph, ph + pad * L, 0.0f);  // padding queries
    if (dropping) std::fill(drop.dropped + h * L * L, drop.dropped + h * L * L + pad * L, 0.0f);
    const float* qh = q + pad * d + h * dh;
    const float* kh = k + pad * d + h * dh;
    const float* vh = v + pad * d + h * dh;
    float* p = ph + pad * L + pad;  // valid block, row stride L
    float* dp = dropping ? drop.dropped + h * L * L + pad * L + pad : p;  // what the context uses
    float* ch = context + pad * d + h * dh;
    for (std::size_t r0 = 0; r0 < n; r0 += kCausalRowBlock) {
      const std::size_t r1 = std::min(n, r0 + kCausalRowBlock);
      // scores of strip rows [r0, r1) against keys [0, r1):  [r1 - r0, r1]
      gemm_nt(r1 - r0, r1, dh, qh + r0 * d, d, kh, d, nullptr, p + r0 * L, L, false);
      for (std::size_t i = r0; i < r1; ++i) {
        float* row = p + i * L;
        float max_score = row[0] * scale;
        for (std::size_t j = 0; j <= i; ++j) max_score = std::max(max_score, row[j] *= scale);
        float sum = 0.0f;
        for (std::size_t j = 0; j <= i; ++j) sum += (row[j] = std::exp(row[j] - max_score));
        const float inv = 1.0f / sum;  // sum >= 1: the maximum contributes exp(0)
        for (std::size_t j = 0; j <= i; ++j) row[j] *= inv;
        std::fill(row + i + 1, row + n, 0.0f);  // future keys
        std::fill(row - pad, row, 0.0f);         // padding keys
        if (dropping) {  // D row: dropout over keys 0..i, zeros elsewhere like P
          float* drow = dp + i * L;
          drop.dropout->forward(row, drow, drop.keep + (drow - drop.dropped), i + 1, *drop.rng, true);
          std::fill(drow + i + 1, drow + n, 0.0f);
          std::fill(drow - pad, drow, 0.0f);
        }
      }
      // context rows [r0, r1) = D[r0:r1, 0:r1] V[0:r1]:  [r1 - r0, dh]   (D = P without dropout)
      gemm_nn(r1 - r0, dh, r1, dp + r0 * L, L, vh, d, ch + r0 * d, d, false);
    }
  }
}

// One sequence. dcontext: [L, d]; q, k, v: [L, d], probs: [heads, L, L] and `drop`'s buffers from
// forward; scratch: [kCausalRowBlock, L]  ->  dq, dk, dv: [L, d] +=.   (Padding rows get nothing.)
//   dD = dC V^T,  dV += D^T dC,  dP = dD * keep / (1 - p_drop)  (dP = dD without dropout),
//   dS = P * (dP - rowsum(P * dP)) / sqrt(dh),  dQ += dS K,  dK += dS^T Q
inline void causal_attention_backward(const float* dcontext, const float* q, const float* k, const float* v,
                                      const float* probs, float* dq, float* dk, float* dv, float* scratch,
                                      std::size_t L, std::size_t d, std::size_t heads, std::size_t pad,
                                      const AttentionDropout& drop = {}) {
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const bool dropping = drop.active();
  const float keep_scale = dropping ? drop.dropout->keep_scale() : 1.0f;
  pad = std::min(pad, L);
  const std::size_t n = L - pad;
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t off = pad * d + h * dh;
    const std::size_t block = h * L * L + pad * L + pad;  // valid block of this head, row stride L
    const float* p = probs + block;
    const float* dp = dropping ? drop.dropped + block : p;
    for (std::size_t r0 = 0; r0 < n; r0 += kCausalRowBlock) {
      const std::size_t r1 = std::min(n, r0 + kCausalRowBlock), rows = r1 - r0;
      const float* dc = dcontext + off + r0 * d;
      // dD strip: [rows, r1] = dC[r0:r1] V[0:r1]^T
      gemm_nt(rows, r1, dh, dc, d, v + off, d, nullptr, scratch, L, false);
      // dV[0:r1] += D[r0:r1, 0:r1]^T dC[r0:r1]
      gemm_tn(r1, dh, rows, dp + r0 * L, L, dc, d, dv + off, d);
      for (std::size_t i = 0; i < rows; ++i) {  // through dropout and softmax, in place: dD -> dS
        const float* prow = p + (r0 + i) * L;
        float* g = scratch + i * L;
        const std::size_t last = r0 + i;  // causal: keys 0..last
        if (dropping) {
          const std::uint8_t* keep = drop.keep + block + (r0 + i) * L;
          for (std::size_t j = 0; j <= last; ++j) g[j] = keep[j] ? g[j] * keep_scale : 0.0f;
        }
        float dot = 0.0f;
        for (std::size_t j = 0; j <= last; ++j) dot += prow[j] * g[j];
        for (std::size_t j = 0; j <= last; ++j) g[j] = prow[j] * (g[j] - dot) * scale;
        std::fill(g + last + 1, g + r1, 0.0f);
      }
      // dQ[r0:r1] += dS K[0:r1];  dK[0:r1] += dS^T Q[r0:r1]
      gemm_nn(rows, dh, r1, scratch, L, k + off, d, dq + off + r0 * d, d, true);
      gemm_tn(r1, dh, rows, scratch, L, q + off + r0 * d, d, dk + off, d);
    }
  }
}

// What one worker keeps for a batch of B sequences of length L (forward saves, backward scratch).
struct AttentionWorkspace {
  AlignedVector<float> q, k, v, context;    // [B, L, d]: saved by forward
  AlignedVector<float> probs;               // [B, heads, L, L]: saved by forward
  AlignedVector<float> dropped;             // [B, heads, L, L]: probabilities after dropout (saved)
  AlignedVector<std::uint8_t> keep;         // [B, heads, L, L]: attention dropout decisions (saved)
  AlignedVector<float> dq, dk, dv, dcontext;  // [B, L, d]: backward scratch
  AlignedVector<float> dscores;             // [kCausalRowBlock, L]: backward scratch

  void resize(std::size_t batch, std::size_t L, std::size_t d, std::size_t heads) {
    for (auto* buffer : {&q, &k, &v, &context, &dq, &dk, &dv, &dcontext}) buffer->resize(batch * L * d);
    probs.resize(batch * heads * L * L);
    dropped.resize(batch * heads * L * L);
    keep.resize(batch * heads * L * L);
    dscores.resize(kCausalRowBlock * L);
  }
};

// Q, K, V projections "<name>.q/.k/.v" and optional output projection "<name>.out", each Linear(d, d).
// Queries and keys/values may come from different inputs: the PyTorch SASRec feeds the layer-normed
// sequence as queries and the un-normed one as keys and values. `attention_dropout` drops attention
// probabilities in training (see AttentionDropout).
struct CausalSelfAttention {
  std::size_t d = 0, heads = 1;
  bool has_output_projection = true;
  Linear q, k, v, out;
  Dropout attention_dropout;

  static CausalSelfAttention create(Parameters& p, const std::string& name, std::size_t d, std::size_t heads,
                                    bool output_projection = true, float attention_dropout = 0.0f) {
    CHORD_CHECK(heads > 0 && d > 0 && d % heads == 0, "CausalSelfAttention '", name, "': width ", d,
                " is not divisible into ", heads, " heads");
    CausalSelfAttention a;
    a.d = d, a.heads = heads, a.has_output_projection = output_projection;
    a.attention_dropout = Dropout(attention_dropout);
    a.q = Linear::create(p, name + ".q", d, d);
    a.k = Linear::create(p, name + ".k", d, d);
    a.v = Linear::create(p, name + ".v", d, d);
    if (output_projection) a.out = Linear::create(p, name + ".out", d, d);
    return a;
  }
  void init(Parameters& p, Rng& rng) const {
    for (const Linear* l : {&q, &k, &v}) l->init(p, rng);
    if (has_output_projection) out.init(p, rng);
  }

  // xq, xkv: [B, L, d] (may be the same buffer), pads: [B] leading padding positions per sequence
  //   -> y: [B, L, d]; ws holds what backward needs (ws.resize(B, L, d, heads) first).
  // rng drives the attention dropout when training.
  void forward(const Parameters& p, const float* xq, const float* xkv, const std::size_t* pads, std::size_t B,
               std::size_t L, AttentionWorkspace& ws, float* y, Rng& rng, bool training) const {
    check_workspace(ws, B, L);
    const std::size_t m = B * L;
    q.forward(p, xq, ws.q.data(), m);
    k.forward(p, xkv, ws.k.data(), m);
    v.forward(p, xkv, ws.v.data(), m);
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t o = b * L * d;
      causal_attention_forward(ws.q.data() + o, ws.k.data() + o, ws.v.data() + o, ws.context.data() + o,
                               ws.probs.data() + b * heads * L * L, L, d, heads, pads[b],
                               dropout_of(ws, b, L, &rng, training));
    }
    if (has_output_projection)
      out.forward(p, ws.context.data(), y, m);
    else
      std::copy(ws.context.begin(), ws.context.begin() + m * d, y);
  }

  // dy: [B, L, d] -> dxq, dxkv: [B, L, d] += (may be the same buffer); g += all projection gradients.
  void backward(const Parameters& p, GradientBuffer& g, const float* xq, const float* xkv, const std::size_t* pads,
                std::size_t B, std::size_t L, AttentionWorkspace& ws, const float* dy, float* dxq, float* dxkv,
                bool training) const {
    check_workspace(ws, B, L);
    const std::size_t m = B * L;
    for (auto* buffer : {&ws.dq, &ws.dk, &ws.dv}) std::fill(buffer->begin(), buffer->begin() + m * d, 0.0f);
    const float* dcontext = dy;
    if (has_output_projection) {
      std::fill(ws.dcontext.begin(), ws.dcontext.begin() + m * d, 0.0f);
      out.backward(p, g, ws.context.data(), dy, ws.dcontext.data(), m);
      dcontext = ws.dcontext.data();
    }
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t o = b * L * d;
      causal_attention_backward(dcontext + o, ws.q.data() + o, ws.k.data() + o, ws.v.data() + o,
                                ws.probs.data() + b * heads * L * L, ws.dq.data() + o, ws.dk.data() + o,
                                ws.dv.data() + o, ws.dscores.data(), L, d, heads, pads[b],
                                dropout_of(ws, b, L, nullptr, training));
    }
    q.backward(p, g, xq, ws.dq.data(), dxq, m);
    k.backward(p, g, xkv, ws.dk.data(), dxkv, m);
    v.backward(p, g, xkv, ws.dv.data(), dxkv, m);
  }

 private:
  AttentionDropout dropout_of(AttentionWorkspace& ws, std::size_t b, std::size_t L, Rng* rng, bool training) const {
    const std::size_t at = b * heads * L * L;
    return AttentionDropout{&attention_dropout, training, rng, ws.dropped.data() + at, ws.keep.data() + at};
  }
  void check_workspace(const AttentionWorkspace& ws, std::size_t B, std::size_t L) const {
    CHORD_CHECK(ws.q.size() >= B * L * d && ws.probs.size() >= B * heads * L * L &&
                    ws.keep.size() >= B * heads * L * L && ws.dscores.size() >= kCausalRowBlock * L,
                "CausalSelfAttention: workspace is smaller than batch ", B, " x length ", L,
                " (call AttentionWorkspace::resize)");
  }
};

}  // namespace chord::nn
