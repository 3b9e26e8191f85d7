// chord/backends/scalar/attention.hpp: the portable attention core (AttentionFn / AttentionRowFn in
// chord/ops/kernel_table.hpp), the shape every SIMD backend's cached row follows:
//   for each head h:   scores[s] = q_h . k_h[s] / sqrt(dh)  for the keys s in [first, count)
//                      (first = mask.left; masked keys -> -inf), softmax in place (fp32),
//                      out_h = sum_s p[s] v_h[s]
// The full causal sequence is one such row per query t with count = t + 1 (the keys 0..t), so
// attention_row on a K/V cache equals the last row of the full sequence bit for bit here (the SIMD
// backends run the full sequence in blocks of queries instead: within rounding).
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

// See AttentionFn: query t attends to keys 0..t.
inline void attention(const float* q, const float* k, const float* v, std::size_t length, std::size_t d,
                      std::size_t heads, KeyMask mask, float* scratch, float* out) {
  for (std::size_t t = 0; t < length; ++t) attention_row(q + t * d, k, v, t + 1, d, heads, mask, scratch, out + t * d);
}

}  // namespace chord::backends::scalar
