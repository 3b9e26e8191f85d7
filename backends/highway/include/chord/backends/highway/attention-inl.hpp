// chord/backends/highway/attention-inl.hpp: the Highway attention core, per target (AttentionFn,
// AttentionRowFn in chord/ops/kernel_table.hpp).
//
// One query row, per head h (columns off = h*dh .. off+dh-1):
//   scores[s] = (q_h . k_h[s]) * (1 / sqrt dh)   s in [first, count), first = mask.left; masked: -inf
//     (dot over dh in vectors of the head's columns, two accumulators, scalar tail for dh % lanes)
//   SoftmaxRow in place                           (rowops-inl.hpp: fp32, Highway Exp)
//   out_h = sum_s p[s] v_h[s]                     (vectorized over dh: up to 4 vectors of
//                                                  accumulators per pass over the keys, scalar tail)
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

// q_h . k_h for one key: dh floats from each.
HWY_INLINE CHORD_HWY_ATTR float HeadDot(const float* q, const float* k, std::size_t dh) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  VF a0 = hn::Zero(df), a1 = hn::Zero(df);
  std::size_t j = 0;
  for (; j + 2 * lanes <= dh; j += 2 * lanes) {
    a0 = hn::MulAdd(hn::LoadU(df, q + j), hn::LoadU(df, k + j), a0);
    a1 = hn::MulAdd(hn::LoadU(df, q + j + lanes), hn::LoadU(df, k + j + lanes), a1);
  }
  if (j + lanes <= dh) {
    a0 = hn::MulAdd(hn::LoadU(df, q + j), hn::LoadU(df, k + j), a0);
    j += lanes;
  }
  float sum = ReduceSum(hn::Add(a0, a1));
  for (; j < dh; ++j) sum += q[j] * k[j];
  return sum;
}

// out[j0 .. j0 + R*lanes) = sum_{s in [first, count)} p[s] * v[s*d + j0 ..]   (v: the head's columns)
template <std::size_t R>
HWY_INLINE CHORD_HWY_ATTR void ContextBlock(const float* p, const float* v, std::size_t first, std::size_t count,
                                            std::size_t d, std::size_t j0, float* out) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  for (std::size_t s = first; s < count; ++s) {
    const VF weight = hn::Set(df, p[s]);
    const float* row = v + s * d + j0;
    a0 = hn::MulAdd(weight, hn::LoadU(df, row), a0);
    if constexpr (R > 1) a1 = hn::MulAdd(weight, hn::LoadU(df, row + lanes), a1);
    if constexpr (R > 2) a2 = hn::MulAdd(weight, hn::LoadU(df, row + 2 * lanes), a2);
    if constexpr (R > 3) a3 = hn::MulAdd(weight, hn::LoadU(df, row + 3 * lanes), a3);
  }
  hn::StoreU(a0, df, out + j0);
  if constexpr (R > 1) hn::StoreU(a1, df, out + j0 + lanes);
  if constexpr (R > 2) hn::StoreU(a2, df, out + j0 + 2 * lanes);
  if constexpr (R > 3) hn::StoreU(a3, df, out + j0 + 3 * lanes);
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
    for (std::size_t s = first; s < count; ++s)
      scores[s] = mask.valid != nullptr && mask.valid[s] == 0 ? -std::numeric_limits<float>::infinity()
                                                              : HeadDot(q + offset, k + s * d + offset, dh) * scale;
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
