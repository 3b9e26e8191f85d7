// chord/backends/highway/attention-inl.hpp: the Highway attention steps, per target (AttentionFn,
// AttentionRowFn in chord/ops/kernel_table.hpp).
//
// The driver (heads, masks, K^T packing, 4-query blocks: chord/backends/shared/attention_driver-inl.hpp) is shared
// with every backend; this file holds only the vector steps it calls, as AttentionPolicy:
//   HeadScores     one query against 4 keys at a time over the head's whole vectors, their lane sums
//                  by interleaving (SumLanes4), scalar tail for dh % lanes
//   ContextBlock   a cached row's P V over dh: up to 4 vectors per pass over the keys, even / odd keys
//                  in separate accumulators
//   ScoreTile      4 queries x 2 vectors of keys, outer products against K^T
//   ContextTile    4 queries x R vectors of columns straight from V
//   ContextTail    the columns past the last whole vector, as dot products over the keys
// Included once per Highway target (toggle guard).

#if defined(CHORD_BACKENDS_HIGHWAY_ATTENTION_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHORD_BACKENDS_HIGHWAY_ATTENTION_INL_HPP_
#undef CHORD_BACKENDS_HIGHWAY_ATTENTION_INL_HPP_
#else
#define CHORD_BACKENDS_HIGHWAY_ATTENTION_INL_HPP_
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "chord/backends/highway/rowops-inl.hpp"
#include "chord/ops/kernel_table.hpp"

#if CHORD_HWY_HAVE_KERNELS
HWY_BEFORE_NAMESPACE();
namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE {

// sums[i] = the sum of the lanes of a_i, for 4 vectors at once: two rounds of interleave-and-add
// (Highway's interleaves work within 128-bit blocks on every target) leave every block holding one
// partial sum per vector, [a0 a1 a2 a3]; the blocks are then added up. One horizontal sum per key
// would cost more than the key's multiplies.
HWY_INLINE CHORD_HWY_ATTR void SumLanes4(VF a0, VF a1, VF a2, VF a3, float* sums) {
  const DF df;
  const hn::Repartition<std::uint64_t, DF> d64;
  const VF pairs01 = hn::Add(hn::InterleaveLower(a0, a1), hn::InterleaveUpper(df, a0, a1));  // [a0 a1 a0 a1]
  const VF pairs23 = hn::Add(hn::InterleaveLower(a2, a3), hn::InterleaveUpper(df, a2, a3));  // [a2 a3 a2 a3]
  const auto p01 = hn::BitCast(d64, pairs01), p23 = hn::BitCast(d64, pairs23);
  const VF quads = hn::Add(hn::BitCast(df, hn::InterleaveLower(p01, p23)),
                           hn::BitCast(df, hn::InterleaveUpper(d64, p01, p23)));  // [a0 a1 a2 a3] per block
  HWY_ALIGN float lanes[kMaxRowLanes];
  hn::Store(quads, df, lanes);
  const std::size_t count = hn::Lanes(df);
  for (std::size_t i = 0; i < 4; ++i) {
    float sum = lanes[i];
    for (std::size_t b = 4; b < count; b += 4) sum += lanes[b + i];
    sums[i] = sum;
  }
}

// scores[s] = (q_h . k_h[s]) * scale for s in [first, count) (the driver masks). q, k: the head's
// columns (k: rows of stride d). Keys go 4 at a time (4 independent FMA chains sharing each load of
// q); a last, partial group repeats its last key (read, then dropped).
HWY_INLINE CHORD_HWY_ATTR void HeadScores(const float* q, const float* k, std::size_t first, std::size_t count,
                                          std::size_t d, std::size_t dh, float scale, float* scores) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t whole = dh / lanes * lanes;  // the head's columns in whole vectors
  for (std::size_t s = first; s < count; s += 4) {
    const std::size_t keys = count - s < 4 ? count - s : 4;
    const float* row[4];
    for (std::size_t r = 0; r < 4; ++r) row[r] = k + (s + (r < keys ? r : keys - 1)) * d;
    VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    for (std::size_t j = 0; j < whole; j += lanes) {
      const VF qv = hn::LoadU(df, q + j);
      a0 = hn::MulAdd(qv, hn::LoadU(df, row[0] + j), a0);
      a1 = hn::MulAdd(qv, hn::LoadU(df, row[1] + j), a1);
      a2 = hn::MulAdd(qv, hn::LoadU(df, row[2] + j), a2);
      a3 = hn::MulAdd(qv, hn::LoadU(df, row[3] + j), a3);
    }
    float sums[4];
    SumLanes4(a0, a1, a2, a3, sums);
    for (std::size_t i = 0; i < keys; ++i) {
      float sum = sums[i];
      for (std::size_t j = whole; j < dh; ++j) sum += q[j] * row[i][j];  // past the last whole vector
      scores[s + i] = sum * scale;
    }
  }
}

// out[j0 .. j0 + R*lanes) = sum_{s in [first, count)} p[s] * v[s*d + j0 ..]   (v: the head's columns).
// Even and odd keys go to separate accumulators: one set would wait on the FMA latency every key.
template <std::size_t R>
HWY_INLINE CHORD_HWY_ATTR void ContextBlock(const float* p, const float* v, std::size_t first, std::size_t count,
                                            std::size_t d, std::size_t j0, float* out) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);  // even keys
  VF b0 = hn::Zero(df), b1 = hn::Zero(df), b2 = hn::Zero(df), b3 = hn::Zero(df);  // odd keys
  std::size_t s = first;
  for (; s + 2 <= count; s += 2) {
    const VF w0 = hn::Set(df, p[s]), w1 = hn::Set(df, p[s + 1]);
    const float* row0 = v + s * d + j0;
    const float* row1 = row0 + d;
    a0 = hn::MulAdd(w0, hn::LoadU(df, row0), a0);
    b0 = hn::MulAdd(w1, hn::LoadU(df, row1), b0);
    if constexpr (R > 1) a1 = hn::MulAdd(w0, hn::LoadU(df, row0 + lanes), a1);
    if constexpr (R > 1) b1 = hn::MulAdd(w1, hn::LoadU(df, row1 + lanes), b1);
    if constexpr (R > 2) a2 = hn::MulAdd(w0, hn::LoadU(df, row0 + 2 * lanes), a2);
    if constexpr (R > 2) b2 = hn::MulAdd(w1, hn::LoadU(df, row1 + 2 * lanes), b2);
    if constexpr (R > 3) a3 = hn::MulAdd(w0, hn::LoadU(df, row0 + 3 * lanes), a3);
    if constexpr (R > 3) b3 = hn::MulAdd(w1, hn::LoadU(df, row1 + 3 * lanes), b3);
  }
  if (s < count) {
    const VF w0 = hn::Set(df, p[s]);
    const float* row0 = v + s * d + j0;
    a0 = hn::MulAdd(w0, hn::LoadU(df, row0), a0);
    if constexpr (R > 1) a1 = hn::MulAdd(w0, hn::LoadU(df, row0 + lanes), a1);
    if constexpr (R > 2) a2 = hn::MulAdd(w0, hn::LoadU(df, row0 + 2 * lanes), a2);
    if constexpr (R > 3) a3 = hn::MulAdd(w0, hn::LoadU(df, row0 + 3 * lanes), a3);
  }
  hn::StoreU(hn::Add(a0, b0), df, out + j0);
  if constexpr (R > 1) hn::StoreU(hn::Add(a1, b1), df, out + j0 + lanes);
  if constexpr (R > 2) hn::StoreU(hn::Add(a2, b2), df, out + j0 + 2 * lanes);
  if constexpr (R > 3) hn::StoreU(hn::Add(a3, b3), df, out + j0 + 3 * lanes);
}

// Scores of 4 queries against 2 vectors of keys: sc[r][s0 .. s0 + 2*lanes) = scale * q_r . K^T[:, s].
// q[r]: the head's columns of query r; kt: K^T of the head, [dh, kp] (column s = key s); sc: [4, kp].
// Outer products: each step j broadcasts q_r[j] and multiplies a vector of K^T row j, so the dot
// products need no lane sums and dh needs no padding (8 accumulators: fits AVX2's 16 registers).
HWY_INLINE CHORD_HWY_ATTR void ScoreTile(const float* const* q, const float* kt, std::size_t kp, std::size_t dh,
                                         std::size_t s0, float scale, float* sc) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  VF a00 = hn::Zero(df), a01 = hn::Zero(df), a10 = hn::Zero(df), a11 = hn::Zero(df);
  VF a20 = hn::Zero(df), a21 = hn::Zero(df), a30 = hn::Zero(df), a31 = hn::Zero(df);
  const float* column = kt + s0;
  for (std::size_t j = 0; j < dh; ++j, column += kp) {
    const VF k0 = hn::LoadU(df, column), k1 = hn::LoadU(df, column + lanes);
    const VF q0 = hn::Set(df, q[0][j]), q1 = hn::Set(df, q[1][j]), q2 = hn::Set(df, q[2][j]), q3 = hn::Set(df, q[3][j]);
    a00 = hn::MulAdd(q0, k0, a00), a01 = hn::MulAdd(q0, k1, a01);
    a10 = hn::MulAdd(q1, k0, a10), a11 = hn::MulAdd(q1, k1, a11);
    a20 = hn::MulAdd(q2, k0, a20), a21 = hn::MulAdd(q2, k1, a21);
    a30 = hn::MulAdd(q3, k0, a30), a31 = hn::MulAdd(q3, k1, a31);
  }
  const VF vscale = hn::Set(df, scale);
  float* row = sc + s0;
  hn::StoreU(hn::Mul(a00, vscale), df, row), hn::StoreU(hn::Mul(a01, vscale), df, row + lanes), row += kp;
  hn::StoreU(hn::Mul(a10, vscale), df, row), hn::StoreU(hn::Mul(a11, vscale), df, row + lanes), row += kp;
  hn::StoreU(hn::Mul(a20, vscale), df, row), hn::StoreU(hn::Mul(a21, vscale), df, row + lanes), row += kp;
  hn::StoreU(hn::Mul(a30, vscale), df, row), hn::StoreU(hn::Mul(a31, vscale), df, row + lanes);
}

// out[j ..) = acc, only the columns < dh. A function, not a lambda: Clang does not give a lambda the
// enclosing function's target attribute, so StorePartial (always_inline, AVX-512) would not inline.
HWY_INLINE CHORD_HWY_ATTR void StoreContextColumns(VF acc, float* out, std::size_t j, std::size_t dh) {
  const DF df;
  if (j + hn::Lanes(df) <= dh)
    hn::StoreU(acc, df, out + j);
  else if (j < dh)
    StorePartial(acc, out + j, dh - j);
}

// One context row's R vectors from column j0 (a0 .. a3), only the columns < dh; out == null: skipped.
template <std::size_t R>
HWY_INLINE CHORD_HWY_ATTR void StoreContextRow(float* out, std::size_t j0, std::size_t dh, VF a0, VF a1, VF a2,
                                               VF a3) {
  if (out == nullptr) return;
  const std::size_t lanes = hn::Lanes(DF());
  StoreContextColumns(a0, out, j0, dh);
  if constexpr (R > 1) StoreContextColumns(a1, out, j0 + lanes, dh);
  if constexpr (R > 2) StoreContextColumns(a2, out, j0 + 2 * lanes, dh);
  if constexpr (R > 3) StoreContextColumns(a3, out, j0 + 3 * lanes, dh);
}

// Context of 4 queries for R vectors of the head's columns from j0:
//   out_r[j0 .. j0 + R*lanes) = sum_{s < count} p[r][s] vp[s][j0 ..]    p: [4, kp], vp: rows of stride ldv
// (4 x R accumulators: R <= 4 on 32-register targets, R <= 2 on AVX2). Stores only columns < dh.
template <std::size_t R>
HWY_INLINE CHORD_HWY_ATTR void ContextTile(const float* p, std::size_t kp, const float* vp, std::size_t ldv,
                                           std::size_t count, std::size_t j0, std::size_t dh, float* const* out) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  VF c00 = hn::Zero(df), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  VF c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (std::size_t s = 0; s < count; ++s) {
    const float* row = vp + s * ldv + j0;
    const VF w0 = hn::Set(df, p[s]), w1 = hn::Set(df, p[kp + s]), w2 = hn::Set(df, p[2 * kp + s]),
             w3 = hn::Set(df, p[3 * kp + s]);
    const VF v0 = hn::LoadU(df, row);
    c00 = hn::MulAdd(w0, v0, c00), c10 = hn::MulAdd(w1, v0, c10);
    c20 = hn::MulAdd(w2, v0, c20), c30 = hn::MulAdd(w3, v0, c30);
    if constexpr (R > 1) {
      const VF v1 = hn::LoadU(df, row + lanes);
      c01 = hn::MulAdd(w0, v1, c01), c11 = hn::MulAdd(w1, v1, c11);
      c21 = hn::MulAdd(w2, v1, c21), c31 = hn::MulAdd(w3, v1, c31);
    }
    if constexpr (R > 2) {
      const VF v2 = hn::LoadU(df, row + 2 * lanes);
      c02 = hn::MulAdd(w0, v2, c02), c12 = hn::MulAdd(w1, v2, c12);
      c22 = hn::MulAdd(w2, v2, c22), c32 = hn::MulAdd(w3, v2, c32);
    }
    if constexpr (R > 3) {
      const VF v3 = hn::LoadU(df, row + 3 * lanes);
      c03 = hn::MulAdd(w0, v3, c03), c13 = hn::MulAdd(w1, v3, c13);
      c23 = hn::MulAdd(w2, v3, c23), c33 = hn::MulAdd(w3, v3, c33);
    }
  }
  StoreContextRow<R>(out[0], j0, dh, c00, c01, c02, c03);
  StoreContextRow<R>(out[1], j0, dh, c10, c11, c12, c13);
  StoreContextRow<R>(out[2], j0, dh, c20, c21, c22, c23);
  StoreContextRow<R>(out[3], j0, dh, c30, c31, c32, c33);
}

// The head's last columns past its whole vectors (tail < lanes of them), for 4 queries, as dot products
// over the keys: out_r[j0 + c] = sum_{s < keys} p[r][s] vt[c][s]   (vt: V^T of those columns, [tail,
// kp]; keys a multiple of lanes, p and vt zero past the rows' keys). Two columns at a time (8
// accumulators); padding the columns to a whole vector would multiply 4 vectors per key for them.
HWY_INLINE CHORD_HWY_ATTR void ContextTail(const float* p, std::size_t kp, const float* vt, std::size_t keys,
                                           std::size_t tail, std::size_t j0, float* const* out) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  for (std::size_t c = 0; c < tail; c += 2) {
    const float* v0 = vt + c * kp;
    const float* v1 = vt + (c + 1 < tail ? c + 1 : c) * kp;  // a lone last column: computed twice, stored once
    VF a00 = hn::Zero(df), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (std::size_t s = 0; s < keys; s += lanes) {
      const VF x0 = hn::LoadU(df, v0 + s), x1 = hn::LoadU(df, v1 + s);
      const VF p0 = hn::LoadU(df, p + s), p1 = hn::LoadU(df, p + kp + s);
      const VF p2 = hn::LoadU(df, p + 2 * kp + s), p3 = hn::LoadU(df, p + 3 * kp + s);
      a00 = hn::MulAdd(p0, x0, a00), a01 = hn::MulAdd(p0, x1, a01);
      a10 = hn::MulAdd(p1, x0, a10), a11 = hn::MulAdd(p1, x1, a11);
      a20 = hn::MulAdd(p2, x0, a20), a21 = hn::MulAdd(p2, x1, a21);
      a30 = hn::MulAdd(p3, x0, a30), a31 = hn::MulAdd(p3, x1, a31);
    }
    const float sums[4][2] = {{ReduceSum(a00), ReduceSum(a01)},
                              {ReduceSum(a10), ReduceSum(a11)},
                              {ReduceSum(a20), ReduceSum(a21)},
                              {ReduceSum(a30), ReduceSum(a31)}};
    for (std::size_t r = 0; r < 4; ++r) {
      if (out[r] == nullptr) continue;
      out[r][j0 + c] = sums[r][0];
      if (c + 1 < tail) out[r][j0 + c + 1] = sums[r][1];
    }
  }
}

// The vector steps the shared driver calls (chord/backends/shared/attention_driver-inl.hpp).
struct AttentionPolicy {
  static HWY_INLINE CHORD_HWY_ATTR std::size_t lanes() { return hn::Lanes(DF()); }
  static constexpr int kMaxContextVectors = HWY_TARGET == HWY_AVX2 ? 2 : 4;  // AVX2: 16 registers
  static HWY_INLINE CHORD_HWY_ATTR void softmax_row(const float* x, std::size_t n, float* y) { SoftmaxRow(x, n, y); }
  static HWY_INLINE CHORD_HWY_ATTR void head_scores(const float* q, const float* k, std::size_t first,
                                                    std::size_t count, std::size_t d, std::size_t dh, float scale,
                                                    float* scores) {
    HeadScores(q, k, first, count, d, dh, scale, scores);
  }
  template <int R>
  static HWY_INLINE CHORD_HWY_ATTR void context_block(const float* p, const float* v, std::size_t first,
                                                      std::size_t count, std::size_t d, std::size_t j0, float* out) {
    ContextBlock<R>(p, v, first, count, d, j0, out);
  }
  static HWY_INLINE CHORD_HWY_ATTR void score_tile(const float* const* q, const float* kt, std::size_t kp,
                                                   std::size_t dh, std::size_t s0, float scale, float* sc) {
    ScoreTile(q, kt, kp, dh, s0, scale, sc);
  }
  template <int R>
  static HWY_INLINE CHORD_HWY_ATTR void context_tile(const float* p, std::size_t kp, const float* vp, std::size_t ldv,
                                                     std::size_t count, std::size_t j0, std::size_t dh,
                                                     float* const* out) {
    ContextTile<R>(p, kp, vp, ldv, count, j0, dh, out);
  }
  static HWY_INLINE CHORD_HWY_ATTR void context_tail(const float* p, std::size_t kp, const float* vt,
                                                     std::size_t keys, std::size_t tail, std::size_t j0,
                                                     float* const* out) {
    ContextTail(p, kp, vt, keys, tail, j0, out);
  }
};

#define CHORD_ATTENTION_ATTR CHORD_HWY_ATTR
#include "chord/backends/shared/attention_driver-inl.hpp"
#undef CHORD_ATTENTION_ATTR

// See AttentionRowFn. scores: >= count floats.
CHORD_HWY_ATTR void AttentionRow(const float* q, const float* k, const float* v, std::size_t count, std::size_t d,
                                 std::size_t heads, KeyMask mask, float* scores, float* out) {
  attention_row_driver<AttentionPolicy>(q, k, v, count, d, heads, mask, scores, out);
}

// See AttentionFn (scratch: attention_core_scratch_floats).
CHORD_HWY_ATTR void Attention(const float* q, const float* k, const float* v, std::size_t length, std::size_t d,
                              std::size_t heads, KeyMask mask, float* scratch, float* out) {
  blocked_attention_driver<AttentionPolicy>(q, k, v, length, d, heads, mask, scratch, out);
}

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
