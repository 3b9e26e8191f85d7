// chord/backends/scalar/attention.hpp: the portable attention core (AttentionFn / AttentionRowFn in
// chord/ops/kernel_table.hpp), the shape every SIMD backend's cached row follows:
//   for each head h:   scores[s] = q_h . k_h[s] / sqrt(dh)  for the keys s in [first, count)
//                      (first = mask.left; masked keys -> -inf), softmax in place (fp32),
//                      out_h = sum_s p[s] v_h[s]
// The full causal sequence (attention) runs the SIMD backends' blocked shape in plain loops: per head
// K^T packed once, per block of 4 queries a 4 x 8 score tile per 8 keys (loops a compiler may
// vectorize at any baseline), softmax_row per query, then P V for the 4 queries; attention_row on a
// K/V cache agrees with its last row within rounding (the sums run in other orders).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "chord/backends/scalar/rowops.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::backends::scalar {

// See AttentionRowFn. scores: >= count floats.
inline void attention_row(const float* q, const float* k, const float* v, std::size_t count, std::size_t d,
                          std::size_t heads, KeyMask mask, float* scores, float* out) {
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));  // as ref::detail::head_weights
  const std::size_t first = mask.left < count ? mask.left : count;  // keys before `first` are padding
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t offset = h * dh;
    for (std::size_t s = first; s < count; ++s) {
      if (mask.valid != nullptr && mask.valid[s] == 0) {
        scores[s] = -std::numeric_limits<float>::infinity();
        continue;
      }
      float dot = 0.0f;
      for (std::size_t j = 0; j < dh; ++j) dot += q[offset + j] * k[s * d + offset + j];
      scores[s] = dot * scale;
    }
    softmax_row(scores + first, count - first, scores + first);
    for (std::size_t j = 0; j < dh; ++j) {
      float sum = 0.0f;
      for (std::size_t s = first; s < count; ++s) sum += scores[s] * v[s * d + offset + j];
      out[offset + j] = sum;
    }
  }
}

// See AttentionFn: query t attends to keys 0..t, in blocks of 4 queries (scratch:
// attention_core_scratch_floats).
inline void attention(const float* q, const float* k, const float* v, std::size_t length, std::size_t d,
                      std::size_t heads, KeyMask mask, float* scratch, float* out) {
  constexpr std::size_t kQueries = 4, kKeys = 8;  // one score tile
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));  // as ref::detail::head_weights
  const std::size_t first = mask.left < length ? mask.left : length;
  for (std::size_t t = 0; t < first; ++t)  // queries before the first key: no key at all
    for (std::size_t j = 0; j < d; ++j) out[t * d + j] = 0.0f;
  const std::size_t n = length - first;  // keys (and queries) from `first`
  if (n == 0) return;
  const std::size_t kp = (n + kKeys - 1) / kKeys * kKeys;
  float* kt = scratch;                  // [dh, kp]: K^T of one head, zeros past n
  float* p = kt + dh * kp;              // [4, kp]: the block's scores, then weights
  float* context = p + kQueries * kp;   // [4, dh]
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t offset = h * dh;
    for (std::size_t s = 0; s < kp; ++s)
      for (std::size_t j = 0; j < dh; ++j) kt[j * kp + s] = s < n ? k[(first + s) * d + offset + j] : 0.0f;
    for (std::size_t t0 = 0; t0 < n; t0 += kQueries) {  // queries first + t0 .. first + t0 + 3
      const std::size_t rows = n - t0 < kQueries ? n - t0 : kQueries, keys = t0 + rows;
      for (std::size_t s0 = 0; s0 < keys; s0 += kKeys) {
        float tile[kQueries][kKeys] = {};
        for (std::size_t j = 0; j < dh; ++j)
          for (std::size_t r = 0; r < rows; ++r) {
            const float qj = q[(first + t0 + r) * d + offset + j];
            for (std::size_t c = 0; c < kKeys; ++c) tile[r][c] += qj * kt[j * kp + s0 + c];
          }
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = 0; c < kKeys; ++c) p[r * kp + s0 + c] = tile[r][c] * scale;
      }
      for (std::size_t r = 0; r < rows; ++r) {
        float* row = p + r * kp;
        const std::size_t count = t0 + r + 1;  // causal: keys 0 .. t0 + r
        if (mask.valid != nullptr)
          for (std::size_t s = 0; s < count; ++s)
            if (mask.valid[first + s] == 0) row[s] = -std::numeric_limits<float>::infinity();
        softmax_row(row, count, row);
        for (std::size_t j = 0; j < dh; ++j) context[r * dh + j] = 0.0f;
        for (std::size_t s = 0; s < count; ++s) {  // only the row's own keys: none after the diagonal
          const float w = row[s];
          const float* value = v + (first + s) * d + offset;
          for (std::size_t j = 0; j < dh; ++j) context[r * dh + j] += w * value[j];
        }
        for (std::size_t j = 0; j < dh; ++j) out[(first + t0 + r) * d + offset + j] = context[r * dh + j];
      }
    }
  }
}

}  // namespace chord::backends::scalar
