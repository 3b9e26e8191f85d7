// chord/backends/xsimd/attention.hpp: the xsimd backend's attention core (AttentionFn, AttentionRowFn in
// chord/ops/kernel_table.hpp), one template per ISA tag, and with_row_kernels<Tag>(), which adds every
// row kernel of this backend (rowops.hpp, this file) to a table.
//
// One query row, per head h (columns off = h*dh .. off+dh-1):
//   scores[s] = (q_h . k_h[s]) * (1 / sqrt dh)   s in [first, count), first = mask.left; masked: -inf
//     (dot over dh in registers of the head's columns, two accumulators, scalar tail for dh % lanes)
//   softmax_row<Tag> in place                     (rowops.hpp: fp32, xsimd exp)
//   out_h = sum_s p[s] v_h[s]                     (vectorized over dh: up to 4 registers of
//                                                  accumulators per pass over the keys, scalar tail)
// The full causal sequence runs this row routine for every query t with count = t + 1, so a cached
// row is bit for bit the last row of the full sequence. Keys before `first` are never read.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "chord/backends/xsimd/common.hpp"
#include "chord/backends/xsimd/rowops.hpp"

namespace chord::backends::xsimd {

namespace attention_detail {

// q_h . k_h for one key: dh floats from each.
template <class Tag>
inline float dot(const float* q, const float* k, std::size_t dh) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  B acc0(0.0f), acc1(0.0f);
  std::size_t j = 0;
  for (; j + 2 * kLanes <= dh; j += 2 * kLanes) {
    acc0 = fused_multiply_add<Tag>(B::load_unaligned(q + j), B::load_unaligned(k + j), acc0);
    acc1 = fused_multiply_add<Tag>(B::load_unaligned(q + j + kLanes), B::load_unaligned(k + j + kLanes), acc1);
  }
  if (j + kLanes <= dh) {
    acc0 = fused_multiply_add<Tag>(B::load_unaligned(q + j), B::load_unaligned(k + j), acc0);
    j += kLanes;
  }
  float sum = ::xsimd::hadd(acc0 + acc1);
  for (; j < dh; ++j) sum += q[j] * k[j];
  return sum;
}

// out[j0 .. j0 + R*lanes) = sum_{s in [first, count)} p[s] * v[s*d + j0 ..]   (v: the head's columns)
template <class Tag, int R>
inline void context_block(const float* p, const float* v, std::size_t first, std::size_t count, std::size_t d,
                          std::size_t j0, float* out) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  B acc[R];
  for (int r = 0; r < R; ++r) acc[r] = B(0.0f);
  for (std::size_t s = first; s < count; ++s) {
    const B weight(p[s]);
    const float* row = v + s * d + j0;
    for (int r = 0; r < R; ++r) acc[r] = fused_multiply_add<Tag>(weight, B::load_unaligned(row + r * kLanes), acc[r]);
  }
  for (int r = 0; r < R; ++r) acc[r].store_unaligned(out + j0 + r * kLanes);
}

template <class Tag>
inline void context(const float* p, const float* v, std::size_t first, std::size_t count, std::size_t d,
                    std::size_t dh, float* out) {
  constexpr std::size_t kLanes = row_detail::FloatBatch<Tag>::size;
  std::size_t j = 0;
  for (; j + 4 * kLanes <= dh; j += 4 * kLanes) context_block<Tag, 4>(p, v, first, count, d, j, out);
  switch ((dh - j) / kLanes) {
    case 3: context_block<Tag, 3>(p, v, first, count, d, j, out); break;
    case 2: context_block<Tag, 2>(p, v, first, count, d, j, out); break;
    case 1: context_block<Tag, 1>(p, v, first, count, d, j, out); break;
    default: break;
  }
  j += (dh - j) / kLanes * kLanes;
  for (; j < dh; ++j) {  // the columns past the last whole register
    float sum = 0.0f;
    for (std::size_t s = first; s < count; ++s) sum += p[s] * v[s * d + j];
    out[j] = sum;
  }
}

}  // namespace attention_detail

// See AttentionRowFn. scores: >= count floats.
template <class Tag>
void attention_row(const float* q, const float* k, const float* v, std::size_t count, std::size_t d,
                   std::size_t heads, KeyMask mask, float* scores, float* out) {
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));  // as ref::detail::head_weights
  const std::size_t first = mask.left < count ? mask.left : count;
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t offset = h * dh;
    for (std::size_t s = first; s < count; ++s)
      scores[s] = mask.valid != nullptr && mask.valid[s] == 0
                      ? -std::numeric_limits<float>::infinity()
                      : attention_detail::dot<Tag>(q + offset, k + s * d + offset, dh) * scale;
    softmax_row<Tag>(scores + first, count - first, scores + first);
    attention_detail::context<Tag>(scores, v + offset, first, count, d, dh, out + offset);
  }
}

// See AttentionFn: query t against keys 0..t.
template <class Tag>
void attention(const float* q, const float* k, const float* v, std::size_t length, std::size_t d, std::size_t heads,
               KeyMask mask, float* scratch, float* out) {
  for (std::size_t t = 0; t < length; ++t)
    attention_row<Tag>(q + t * d, k, v, t + 1, d, heads, mask, scratch, out + t * d);
}

// `table` with this backend's row kernels for Tag (quantize_rows, the fp32 row ops, attention).
template <class Tag>
KernelTable with_row_kernels(KernelTable table) {
  table.quantize_rows = &quantize_rows<Tag>;
  table.layernorm = &layernorm<Tag>;
  table.softmax = &softmax<Tag>;
  table.relu = &relu<Tag>;
  table.gelu = &gelu<Tag>;
  table.add = &add<Tag>;
  table.attention = &attention<Tag>;
  table.attention_row = &attention_row<Tag>;
  return table;
}

}  // namespace chord::backends::xsimd
