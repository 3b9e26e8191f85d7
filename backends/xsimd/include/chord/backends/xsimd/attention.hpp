// chord/backends/xsimd/attention.hpp: the xsimd backend's attention core (AttentionFn, AttentionRowFn in
// chord/ops/kernel_table.hpp), one template per ISA tag, and with_row_kernels<Tag>(), which adds every
// row kernel of this backend (rowops.hpp, this file) to a table.
//
// One query row, per head h (columns off = h*dh .. off+dh-1):
//   scores[s] = (q_h . k_h[s]) * (1 / sqrt dh)   s in [first, count), first = mask.left; masked: -inf
//     (blocks of `lanes` keys: one accumulator register per key, their lane sums in one register;
//      scalar tail for dh % lanes; a last, partial block repeats its last key)
//   softmax_row<Tag> in place                     (rowops.hpp: fp32, xsimd exp)
//   out_h = sum_s p[s] v_h[s]                     (vectorized over dh: up to 4 registers per pass
//                                                  over the keys, even / odd keys in separate
//                                                  accumulators, scalar tail)
// The full causal sequence runs this row routine for every query t with count = t + 1, so a cached
// row is bit for bit the last row of the full sequence. Keys before `first` are never read.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "chord/backends/xsimd/common.hpp"
#include "chord/backends/xsimd/rowops.hpp"

namespace chord::backends::xsimd {

namespace attention_detail {

// The lane sums of `lanes` registers as one register: result lane i = sum of rows[i]'s lanes.
// Intrinsics: xsimd 8.1's haddp mixes up lanes 2-5 and 10-13 on AVX-512 (checked against a loop).
template <class Tag>
inline row_detail::FloatBatch<Tag> sum_lanes_of(const row_detail::FloatBatch<Tag>* rows) {
  using B = row_detail::FloatBatch<Tag>;
#if defined(CHORD_XSIMD_AVX2) || defined(CHORD_XSIMD_AVX512_VNNI)
  // 8 registers of 8 lanes -> their 8 sums: two rounds of hadd, then add the 128-bit halves.
  const auto sums_of_8 = [](const __m256* h) {
    const __m256 ab = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
    const __m256 cd = _mm256_hadd_ps(_mm256_hadd_ps(h[4], h[5]), _mm256_hadd_ps(h[6], h[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(ab, cd, 0x20), _mm256_permute2f128_ps(ab, cd, 0x31));
  };
#endif
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) {
    __m256 halves[16];  // each zmm folded to 8 lanes with the same sum
    for (int i = 0; i < 16; ++i)
      halves[i] = _mm256_add_ps(_mm512_castps512_ps256(rows[i]), _mm512_extractf32x8_ps(rows[i], 1));
    return B(_mm512_insertf32x8(_mm512_castps256_ps512(sums_of_8(halves)), sums_of_8(halves + 8), 1));
  }
#endif
#if defined(CHORD_XSIMD_AVX2)
  if constexpr (std::is_same_v<Tag, isa::avx2>) {
    __m256 registers[8];
    for (int i = 0; i < 8; ++i) registers[i] = rows[i];
    return B(sums_of_8(registers));
  }
#endif
#if defined(CHORD_XSIMD_NEON)
  if constexpr (std::is_same_v<Tag, isa::neon> || std::is_same_v<Tag, isa::neon_dotprod>)
    return B(vpaddq_f32(vpaddq_f32(rows[0], rows[1]), vpaddq_f32(rows[2], rows[3])));  // pairwise sums
#endif
}

// scores[s] = (q_h . k_h[s]) * scale for s in [first, count), -inf for masked keys. q, k: the head's
// columns (k: rows of stride d). Keys go in blocks of `lanes`: one accumulator register per key (over
// the head's whole registers, 4 keys at a time so that 4 FMA chains share each load of q), then
// sum_lanes_of sums the lanes of all of them at once into one register of dot products: a
// horizontal sum per key would cost more than the key's multiplies.
template <class Tag>
inline void head_scores(const float* q, const float* k, std::size_t first, std::size_t count, std::size_t d,
                        std::size_t dh, float scale, const std::uint8_t* valid, float* scores) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  const std::size_t whole = dh / kLanes * kLanes;  // the head's columns in whole registers
  for (std::size_t s = first; s < count; s += kLanes) {
    // The last block may hold fewer keys: its missing rows repeat the last key (read, then dropped).
    const std::size_t keys = count - s < kLanes ? count - s : kLanes;
    B acc[kLanes];
    for (std::size_t i = 0; i < kLanes; i += 4) {  // 4 keys at a time: 4 independent FMA chains
      const float* row[4];
      for (std::size_t r = 0; r < 4; ++r) row[r] = k + (s + (i + r < keys ? i + r : keys - 1)) * d;
      B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
      for (std::size_t j = 0; j < whole; j += kLanes) {
        const B qv = B::load_unaligned(q + j);
        a0 = fused_multiply_add<Tag>(qv, B::load_unaligned(row[0] + j), a0);
        a1 = fused_multiply_add<Tag>(qv, B::load_unaligned(row[1] + j), a1);
        a2 = fused_multiply_add<Tag>(qv, B::load_unaligned(row[2] + j), a2);
        a3 = fused_multiply_add<Tag>(qv, B::load_unaligned(row[3] + j), a3);
      }
      acc[i] = a0, acc[i + 1] = a1, acc[i + 2] = a2, acc[i + 3] = a3;
    }
    B dots = sum_lanes_of<Tag>(acc);
    if (whole < dh) {  // the columns past the last whole register, per key
      alignas(64) float tail[kLanes] = {};
      for (std::size_t i = 0; i < keys; ++i) {
        float sum = 0.0f;
        for (std::size_t j = whole; j < dh; ++j) sum += q[j] * k[(s + i) * d + j];
        tail[i] = sum;
      }
      dots += B::load_aligned(tail);
    }
    dots *= B(scale);
    if (keys == kLanes) {
      dots.store_unaligned(scores + s);
    } else {
      row_detail::store_partial<Tag>(dots, scores + s, keys);
    }
  }
  if (valid != nullptr)
    for (std::size_t s = first; s < count; ++s)
      if (valid[s] == 0) scores[s] = -std::numeric_limits<float>::infinity();
}

// out[j0 .. j0 + R*lanes) = sum_{s in [first, count)} p[s] * v[s*d + j0 ..]   (v: the head's columns).
// Two sets of accumulators (even and odd keys): one set would wait on the FMA latency every key.
template <class Tag, int R>
inline void context_block(const float* p, const float* v, std::size_t first, std::size_t count, std::size_t d,
                          std::size_t j0, float* out) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  // (The unroll pragmas keep the accumulators in registers: a rolled loop over an array of registers
  // compiles to a load, FMA and store per step, and the store-to-load latency doubles the time.)
  B even[R], odd[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) even[r] = odd[r] = B(0.0f);
  std::size_t s = first;
  for (; s + 2 <= count; s += 2) {
    const B w0(p[s]), w1(p[s + 1]);
    const float* row0 = v + s * d + j0;
    const float* row1 = row0 + d;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      even[r] = fused_multiply_add<Tag>(w0, B::load_unaligned(row0 + r * kLanes), even[r]);
      odd[r] = fused_multiply_add<Tag>(w1, B::load_unaligned(row1 + r * kLanes), odd[r]);
    }
  }
  if (s < count) {
    const B w0(p[s]);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
      even[r] = fused_multiply_add<Tag>(w0, B::load_unaligned(v + s * d + j0 + r * kLanes), even[r]);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) (even[r] + odd[r]).store_unaligned(out + j0 + r * kLanes);
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
    attention_detail::head_scores<Tag>(q + offset, k + offset, first, count, d, dh, scale, mask.valid, scores);
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
