// chord/backends/highway/attention-inl.hpp: the Highway attention core, per target (AttentionFn,
// AttentionRowFn in chord/ops/kernel_table.hpp).
//
// One query row, per head h (columns off = h*dh .. off+dh-1):
//   scores[s] = (q_h . k_h[s]) * (1 / sqrt dh)   s in [first, count), first = mask.left; masked: -inf
//     (4 keys at a time over the head's whole vectors, their lane sums by interleaving, scalar tail
//      for dh % lanes)
//   SoftmaxRow in place                           (rowops-inl.hpp: fp32, Highway Exp)
//   out_h = sum_s p[s] v_h[s]                     (vectorized over dh: up to 4 vectors per pass
//                                                  over the keys, even / odd keys in separate
//                                                  accumulators, scalar tail)
// The full causal sequence runs this row routine for every query t with count = t + 1, so a cached
// row is bit for bit the last row of the full sequence. Keys before `first` are never read.
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

// scores[s] = (q_h . k_h[s]) * scale for s in [first, count), -inf for masked keys. q, k: the head's
// columns (k: rows of stride d). Keys go 4 at a time (4 independent FMA chains sharing each load of
// q); a last, partial group repeats its last key (read, then dropped).
HWY_INLINE CHORD_HWY_ATTR void HeadScores(const float* q, const float* k, std::size_t first, std::size_t count,
                                          std::size_t d, std::size_t dh, float scale, const std::uint8_t* valid,
                                          float* scores) {
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
  if (valid != nullptr)
    for (std::size_t s = first; s < count; ++s)
      if (valid[s] == 0) scores[s] = -std::numeric_limits<float>::infinity();
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

HWY_INLINE CHORD_HWY_ATTR void HeadContext(const float* p, const float* v, std::size_t first, std::size_t count,
                                           std::size_t d, std::size_t dh, float* out) {
  const std::size_t lanes = hn::Lanes(DF());
  std::size_t j = 0;
  for (; j + 4 * lanes <= dh; j += 4 * lanes) ContextBlock<4>(p, v, first, count, d, j, out);
  switch ((dh - j) / lanes) {
    case 3: ContextBlock<3>(p, v, first, count, d, j, out); break;
    case 2: ContextBlock<2>(p, v, first, count, d, j, out); break;
    case 1: ContextBlock<1>(p, v, first, count, d, j, out); break;
    default: break;
  }
  j += (dh - j) / lanes * lanes;
  for (; j < dh; ++j) {  // the columns past the last whole vector
    float sum = 0.0f;
    for (std::size_t s = first; s < count; ++s) sum += p[s] * v[s * d + j];
    out[j] = sum;
  }
}

// See AttentionRowFn. scores: >= count floats.
CHORD_HWY_ATTR void AttentionRow(const float* q, const float* k, const float* v, std::size_t count, std::size_t d,
                                 std::size_t heads, KeyMask mask, float* scores, float* out) {
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));  // as ref::detail::head_weights
  const std::size_t first = mask.left < count ? mask.left : count;
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t offset = h * dh;
    HeadScores(q + offset, k + offset, first, count, d, dh, scale, mask.valid, scores);
    SoftmaxRow(scores + first, count - first, scores + first);
    HeadContext(scores, v + offset, first, count, d, dh, out + offset);
  }
}

// See AttentionFn: query t against keys 0..t.
CHORD_HWY_ATTR void Attention(const float* q, const float* k, const float* v, std::size_t length, std::size_t d,
                              std::size_t heads, KeyMask mask, float* scratch, float* out) {
  for (std::size_t t = 0; t < length; ++t) AttentionRow(q + t * d, k, v, t + 1, d, heads, mask, scratch, out + t * d);
}

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
