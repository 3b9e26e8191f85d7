// chord/backends/xsimd/attention.hpp: the xsimd backend's attention steps (AttentionFn, AttentionRowFn
// in chord/ops/kernel_table.hpp), one template per ISA tag, and with_row_kernels<Tag>(), which adds every
// row kernel of this backend (rowops.hpp, this file) to a table.
//
// The driver (heads, masks, K^T packing, 4-query blocks: chord/backends/shared/attention_driver-inl.hpp) is shared
// with every backend; this file holds only the vector steps it calls, as AttentionPolicy<Tag>:
//   head_scores     one query against keys in blocks of `lanes` keys: one accumulator register per
//                   key, their lane sums in one register (sum_lanes_of); scalar tail for dh % lanes
//   context_block   a cached row's P V over dh: up to 4 registers per pass over the keys, even / odd
//                   keys in separate accumulators
//   score_tile      4 queries x 2 registers of keys, outer products against K^T
//   context_tile    4 queries x R registers of columns straight from V
//   context_tail    the columns past the last whole register, as dot products over the keys
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "chord/backends/xsimd/common.hpp"
#include "chord/backends/xsimd/rowops.hpp"
#include "chord/ops/kernel_table.hpp"

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

// scores[s] = (q_h . k_h[s]) * scale for s in [first, count) (the driver masks). q, k: the head's
// columns (k: rows of stride d). Keys go in blocks of `lanes`: one accumulator register per key (over
// the head's whole registers, 4 keys at a time so that 4 FMA chains share each load of q), then
// sum_lanes_of sums the lanes of all of them at once into one register of dot products: a
// horizontal sum per key would cost more than the key's multiplies.
template <class Tag>
inline void head_scores(const float* q, const float* k, std::size_t first, std::size_t count, std::size_t d,
                        std::size_t dh, float scale, float* scores) {
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


// Scores of 4 queries against 2 registers of keys: sc[r][s0 .. s0 + 2*lanes) = scale * q_r . K^T[:, s].
// q_r: the head's columns of query r; kt: K^T of the head, [dh, kp] (column s = key s); sc: [4, kp].
// Outer products: each step j broadcasts q_r[j] and multiplies a register of K^T row j, so the dot
// products need no lane sums and dh needs no padding (8 accumulators: fits AVX2's 16 registers).
template <class Tag>
inline void score_tile(const float* const* q, const float* kt, std::size_t kp, std::size_t dh, std::size_t s0,
                       float scale, float* sc) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  B a00(0.0f), a01(0.0f), a10(0.0f), a11(0.0f), a20(0.0f), a21(0.0f), a30(0.0f), a31(0.0f);
  const float* column = kt + s0;
  for (std::size_t j = 0; j < dh; ++j, column += kp) {
    const B k0 = B::load_unaligned(column), k1 = B::load_unaligned(column + kLanes);
    const B q0(q[0][j]), q1(q[1][j]), q2(q[2][j]), q3(q[3][j]);
    a00 = fused_multiply_add<Tag>(q0, k0, a00), a01 = fused_multiply_add<Tag>(q0, k1, a01);
    a10 = fused_multiply_add<Tag>(q1, k0, a10), a11 = fused_multiply_add<Tag>(q1, k1, a11);
    a20 = fused_multiply_add<Tag>(q2, k0, a20), a21 = fused_multiply_add<Tag>(q2, k1, a21);
    a30 = fused_multiply_add<Tag>(q3, k0, a30), a31 = fused_multiply_add<Tag>(q3, k1, a31);
  }
  const B vscale(scale);
  float* row = sc + s0;
  (a00 * vscale).store_unaligned(row), (a01 * vscale).store_unaligned(row + kLanes), row += kp;
  (a10 * vscale).store_unaligned(row), (a11 * vscale).store_unaligned(row + kLanes), row += kp;
  (a20 * vscale).store_unaligned(row), (a21 * vscale).store_unaligned(row + kLanes), row += kp;
  (a30 * vscale).store_unaligned(row), (a31 * vscale).store_unaligned(row + kLanes);
}

// Context of 4 queries for R registers of the head's columns from j0:
//   out_r[j0 .. j0 + R*lanes) = sum_{s < count} p[r][s] vp[s][j0 ..]     p: [4, kp], vp: [count, cp]
// (4 x R accumulators: R <= 4 on 32-register ISAs, R <= 2 on AVX2). Stores only columns < dh.
template <class Tag, int R>
inline void context_tile(const float* p, std::size_t kp, const float* vp, std::size_t cp, std::size_t count,
                         std::size_t j0, std::size_t dh, float* const* out) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  B acc[4][R];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < R; ++c) acc[r][c] = B(0.0f);
  for (std::size_t s = 0; s < count; ++s) {
    const float* row = vp + s * cp + j0;
    B values[R];
#pragma GCC unroll 4
    for (int c = 0; c < R; ++c) values[c] = B::load_unaligned(row + c * kLanes);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const B w(p[r * kp + s]);
#pragma GCC unroll 4
      for (int c = 0; c < R; ++c) acc[r][c] = fused_multiply_add<Tag>(w, values[c], acc[r][c]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    if (out[r] == nullptr) continue;
#pragma GCC unroll 4
    for (int c = 0; c < R; ++c) {
      const std::size_t j = j0 + c * kLanes;
      if (j + kLanes <= dh)
        acc[r][c].store_unaligned(out[r] + j);
      else if (j < dh)
        row_detail::store_partial<Tag>(acc[r][c], out[r] + j, dh - j);
    }
  }
}

// The head's last columns past its whole registers (tail < lanes of them), for 4 queries, as dot
// products over the keys: out_r[j0 + c] = sum_{s < keys} p[r][s] vt[c][s]   (vt: V^T of those columns,
// [tail, kp]; keys a multiple of lanes, p and vt zero past the rows' keys). Two columns at a time (8
// accumulators). Padding those columns to a whole register instead would multiply 4 registers per key
// for them, where this takes tail / 2 per register of keys (dh = 50 on AVX-512: 2 columns of 16).
template <class Tag>
inline void context_tail(const float* p, std::size_t kp, const float* vt, std::size_t keys, std::size_t tail,
                         std::size_t j0, float* const* out) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  for (std::size_t c = 0; c < tail; c += 2) {
    const float* v0 = vt + c * kp;
    const float* v1 = vt + (c + 1 < tail ? c + 1 : c) * kp;  // a lone last column: computed twice, stored once
    B a00(0.0f), a01(0.0f), a10(0.0f), a11(0.0f), a20(0.0f), a21(0.0f), a30(0.0f), a31(0.0f);
    for (std::size_t s = 0; s < keys; s += kLanes) {
      const B x0 = B::load_unaligned(v0 + s), x1 = B::load_unaligned(v1 + s);
      const B p0 = B::load_unaligned(p + s), p1 = B::load_unaligned(p + kp + s);
      const B p2 = B::load_unaligned(p + 2 * kp + s), p3 = B::load_unaligned(p + 3 * kp + s);
      a00 = fused_multiply_add<Tag>(p0, x0, a00), a01 = fused_multiply_add<Tag>(p0, x1, a01);
      a10 = fused_multiply_add<Tag>(p1, x0, a10), a11 = fused_multiply_add<Tag>(p1, x1, a11);
      a20 = fused_multiply_add<Tag>(p2, x0, a20), a21 = fused_multiply_add<Tag>(p2, x1, a21);
      a30 = fused_multiply_add<Tag>(p3, x0, a30), a31 = fused_multiply_add<Tag>(p3, x1, a31);
    }
    const float sums[4][2] = {{::xsimd::hadd(a00), ::xsimd::hadd(a01)},
                              {::xsimd::hadd(a10), ::xsimd::hadd(a11)},
                              {::xsimd::hadd(a20), ::xsimd::hadd(a21)},
                              {::xsimd::hadd(a30), ::xsimd::hadd(a31)}};
    for (std::size_t r = 0; r < 4; ++r) {
      if (out[r] == nullptr) continue;
      out[r][j0 + c] = sums[r][0];
      if (c + 1 < tail) out[r][j0 + c + 1] = sums[r][1];
    }
  }
}

}  // namespace attention_detail

// The vector steps the shared driver calls (chord/backends/shared/attention_driver-inl.hpp).
template <class Tag>
struct AttentionPolicy {
  static constexpr std::size_t lanes() { return row_detail::FloatBatch<Tag>::size; }
  static constexpr int kMaxContextVectors = lanes() == 8 ? 2 : 4;  // AVX2: 16 registers
  static void softmax_row(const float* x, std::size_t n, float* y) { xsimd::softmax_row<Tag>(x, n, y); }
  static void head_scores(const float* q, const float* k, std::size_t first, std::size_t count, std::size_t d,
                          std::size_t dh, float scale, float* scores) {
    attention_detail::head_scores<Tag>(q, k, first, count, d, dh, scale, scores);
  }
  template <int R>
  static void context_block(const float* p, const float* v, std::size_t first, std::size_t count, std::size_t d,
                            std::size_t j0, float* out) {
    attention_detail::context_block<Tag, R>(p, v, first, count, d, j0, out);
  }
  static void score_tile(const float* const* q, const float* kt, std::size_t kp, std::size_t dh, std::size_t s0,
                         float scale, float* sc) {
    attention_detail::score_tile<Tag>(q, kt, kp, dh, s0, scale, sc);
  }
  template <int R>
  static void context_tile(const float* p, std::size_t kp, const float* vp, std::size_t ldv, std::size_t count,
                           std::size_t j0, std::size_t dh, float* const* out) {
    attention_detail::context_tile<Tag, R>(p, kp, vp, ldv, count, j0, dh, out);
  }
  static void context_tail(const float* p, std::size_t kp, const float* vt, std::size_t keys, std::size_t tail,
                           std::size_t j0, float* const* out) {
    attention_detail::context_tail<Tag>(p, kp, vt, keys, tail, j0, out);
  }
};

#define CHORD_ATTENTION_ATTR
#include "chord/backends/shared/attention_driver-inl.hpp"
#undef CHORD_ATTENTION_ATTR

// See AttentionRowFn. scores: >= count floats.
template <class Tag>
void attention_row(const float* q, const float* k, const float* v, std::size_t count, std::size_t d,
                   std::size_t heads, KeyMask mask, float* scores, float* out) {
  attention_row_driver<AttentionPolicy<Tag>>(q, k, v, count, d, heads, mask, scores, out);
}

// See AttentionFn (scratch: attention_core_scratch_floats).
template <class Tag>
void attention(const float* q, const float* k, const float* v, std::size_t length, std::size_t d, std::size_t heads,
               KeyMask mask, float* scratch, float* out) {
  blocked_attention_driver<AttentionPolicy<Tag>>(q, k, v, length, d, heads, mask, scratch, out);
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
