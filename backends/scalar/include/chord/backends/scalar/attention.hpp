// chord/backends/scalar/attention.hpp: the portable attention core (AttentionFn / AttentionRowFn in
// chord/ops/kernel_table.hpp): the shared driver (chord/backends/shared/attention_driver-inl.hpp: heads, masks,
// K^T packing, 4-query blocks) over plain loops on "vectors" of 16 floats, loops a compiler may
// vectorize at any baseline. The SIMD backends run the same driver over their registers, so this
// table's results differ from theirs only in rounding.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "chord/backends/scalar/rowops.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::backends::scalar {

// The steps the shared driver calls, in plain loops (see the driver for each contract).
struct AttentionPolicy {
  // "Vectors" of 16 floats: the tiles' arrays then span whole SIMD registers at any baseline, and a
  // context tile covers up to 64 columns (every column of d = 64) in one pass over the keys.
  static constexpr std::size_t kLanes = 16;
  static constexpr std::size_t lanes() { return kLanes; }
  static constexpr int kMaxContextVectors = 4;
  static void softmax_row(const float* x, std::size_t n, float* y) { scalar::softmax_row(x, n, y); }

  static void head_scores(const float* q, const float* k, std::size_t first, std::size_t count, std::size_t d,
                          std::size_t dh, float scale, float* scores) {
    for (std::size_t s = first; s < count; ++s) {
      float dot = 0.0f;
      for (std::size_t j = 0; j < dh; ++j) dot += q[j] * k[s * d + j];
      scores[s] = dot * scale;
    }
  }

  template <int R>
  static void context_block(const float* p, const float* v, std::size_t first, std::size_t count, std::size_t d,
                            std::size_t j0, float* out) {
    float acc[R * kLanes] = {};
    for (std::size_t s = first; s < count; ++s)
      for (std::size_t c = 0; c < R * kLanes; ++c) acc[c] += p[s] * v[s * d + j0 + c];
    for (std::size_t c = 0; c < R * kLanes; ++c) out[j0 + c] = acc[c];
  }

  static void score_tile(const float* const* q, const float* kt, std::size_t kp, std::size_t dh, std::size_t s0,
                         float scale, float* sc) {
    float tile[4][2 * kLanes] = {};
    for (std::size_t j = 0; j < dh; ++j)
      for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 2 * kLanes; ++c) tile[r][c] += q[r][j] * kt[j * kp + s0 + c];
    for (std::size_t r = 0; r < 4; ++r)
      for (std::size_t c = 0; c < 2 * kLanes; ++c) sc[r * kp + s0 + c] = tile[r][c] * scale;
  }

  template <int R>
  static void context_tile(const float* p, std::size_t kp, const float* vp, std::size_t ldv, std::size_t count,
                           std::size_t j0, std::size_t dh, float* const* out) {
    float acc[4][R * kLanes] = {};
    for (std::size_t s = 0; s < count; ++s)
      for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < R * kLanes; ++c) acc[r][c] += p[r * kp + s] * vp[s * ldv + j0 + c];
    for (std::size_t r = 0; r < 4; ++r)
      if (out[r] != nullptr)
        for (std::size_t c = 0; c < R * kLanes && j0 + c < dh; ++c) out[r][j0 + c] = acc[r][c];
  }

  static void context_tail(const float* p, std::size_t kp, const float* vt, std::size_t keys, std::size_t tail,
                           std::size_t j0, float* const* out) {
    for (std::size_t c = 0; c < tail; ++c)
      for (std::size_t r = 0; r < 4; ++r) {
        float sum = 0.0f;
        for (std::size_t s = 0; s < keys; ++s) sum += p[r * kp + s] * vt[c * kp + s];
        if (out[r] != nullptr) out[r][j0 + c] = sum;
      }
  }
};

#define CHORD_ATTENTION_ATTR
#include "chord/backends/shared/attention_driver-inl.hpp"
#undef CHORD_ATTENTION_ATTR

// See AttentionRowFn. scores: >= count floats.
inline void attention_row(const float* q, const float* k, const float* v, std::size_t count, std::size_t d,
                          std::size_t heads, KeyMask mask, float* scores, float* out) {
  attention_row_driver<AttentionPolicy>(q, k, v, count, d, heads, mask, scores, out);
}

// See AttentionFn (scratch: attention_core_scratch_floats).
inline void attention(const float* q, const float* k, const float* v, std::size_t length, std::size_t d,
                      std::size_t heads, KeyMask mask, float* scratch, float* out) {
  blocked_attention_driver<AttentionPolicy>(q, k, v, length, d, heads, mask, scratch, out);
}

}  // namespace chord::backends::scalar
