// chord/backends/shared/attention_driver-inl.hpp: the attention core's driver, written once for every
// backend (AttentionFn, AttentionRowFn in chord/ops/kernel_table.hpp). A backend supplies only its vector
// steps as a policy P; the driver holds everything else: heads, the scale, key masks and padding,
// K^T / V^T packing, the 4-query blocking of the causal sequence and the column splits.
//
// Included INSIDE a backend's namespace, after that backend defines its policy and the macro
// CHORD_ATTENTION_ATTR (the function attribute its vector code needs: Highway's per-target
// attribute, empty for xsimd and scalar, whose translation units are compiled for one ISA), so that
// the driver is compiled with the backend's instruction set and inlines its steps. No include guard
// of its own: the including header's guard (or Highway's per-target toggle) includes it once per
// namespace. The includer includes <cmath>, <cstddef>, <cstdint>, <limits> and kernel_table.hpp first.
//
// The policy P (static members; "vector" = P::lanes() floats):
//   lanes()                                   floats per vector (a run-time value: SVE)
//   kMaxContextVectors                        widest context tile R (4 x R accumulators must fit)
//   softmax_row(x, n, y)                      the backend's fp32 softmax of one row
//   head_scores(q, k, first, count, d, dh, scale, scores)
//       scores[s] = scale * q . k[s]  for s in [first, count), k rows of stride d, unmasked
//   context_block<R>(p, v, first, count, d, j0, out)
//       out[j0 .. j0 + R lanes) = sum_{s in [first, count)} p[s] v[s d + j0 ..]
//   score_tile(q[4], kt, kp, dh, s0, scale, sc)
//       sc[r][s0 .. s0 + 2 lanes) = scale * q_r . kt[:, s]        kt: [dh, kp], sc: [4, kp]
//   context_tile<R>(p, kp, vp, ldv, count, j0, dh, out[4])
//       out_r[j0 .. j0 + R lanes) = sum_{s < count} p[r][s] vp[s ldv + j0 ..], columns < dh only,
//       out_r == null: not stored
//   context_tail(p, kp, vt, keys, tail, j0, out[4])
//       out_r[j0 + c] = sum_{s < keys} p[r][s] vt[c][s] for c < tail  (vt: [tail, kp], keys a
//       multiple of lanes, p and vt zero past the rows' keys)

// One query row against a K/V cache (AttentionRowFn), per head h (columns h dh .. h dh + dh - 1):
//   scores[s] = q_h . k_h[s] / sqrt(dh)   s in [first, count), first = mask.left; masked: -inf
//   softmax in place;  out_h = sum_s p[s] v_h[s]
// scores: >= count floats. Keys before `first` are never read.
template <class P>
CHORD_ATTENTION_ATTR inline void attention_row_driver(const float* q, const float* k, const float* v,
                                                      std::size_t count, std::size_t d, std::size_t heads,
                                                      KeyMask mask, float* scores, float* out) {
  const std::size_t lanes = P::lanes();
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));  // as ref::detail::head_weights
  const std::size_t first = mask.left < count ? mask.left : count;
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t offset = h * dh;
    P::head_scores(q + offset, k + offset, first, count, d, dh, scale, scores);
    if (mask.valid != nullptr)
      for (std::size_t s = first; s < count; ++s)
        if (mask.valid[s] == 0) scores[s] = -std::numeric_limits<float>::infinity();
    P::softmax_row(scores + first, count - first, scores + first);
    const float* vh = v + offset;
    float* oh = out + offset;
    std::size_t j = 0;
    for (; j + 4 * lanes <= dh; j += 4 * lanes) P::template context_block<4>(scores, vh, first, count, d, j, oh);
    switch ((dh - j) / lanes) {
      case 3: P::template context_block<3>(scores, vh, first, count, d, j, oh); break;
      case 2: P::template context_block<2>(scores, vh, first, count, d, j, oh); break;
      case 1: P::template context_block<1>(scores, vh, first, count, d, j, oh); break;
      default: break;
    }
    j += (dh - j) / lanes * lanes;
    for (; j < dh; ++j) {  // the columns past the last whole vector
      float sum = 0.0f;
      for (std::size_t s = first; s < count; ++s) sum += scores[s] * vh[s * d + j];
      oh[j] = sum;
    }
  }
}

// The full causal sequence (AttentionFn): query t against keys 0..t, in blocks of 4 queries (scratch:
// attention_core_scratch_floats). Per head, K^T and the V^T of the columns past the head's whole
// vectors are packed once; per block: the scores of its keys (score_tile), the masks (only the
// diagonal tiles hold keys after a query), softmax per query, then P V: the whole vectors of columns
// straight from V (context_tile), the last columns as dot products over the keys (context_tail:
// padding them to a whole vector would multiply 4 vectors per key for them). Within rounding of
// attention_row_driver, not bit for bit: the sums run in other orders.
template <class P>
CHORD_ATTENTION_ATTR inline void blocked_attention_driver(const float* q, const float* k, const float* v,
                                                          std::size_t length, std::size_t d, std::size_t heads,
                                                          KeyMask mask, float* scratch, float* out) {
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  constexpr int kMaxR = P::kMaxContextVectors;
  const std::size_t lanes = P::lanes();
  const std::size_t dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));  // as ref::detail::head_weights
  const std::size_t first = mask.left < length ? mask.left : length;
  for (std::size_t t = 0; t < first; ++t)  // queries before the first key: no key at all
    for (std::size_t j = 0; j < d; ++j) out[t * d + j] = 0.0f;
  const std::size_t n = length - first;  // keys (and queries) from `first`
  if (n == 0) return;
  const std::size_t kp = (n + 2 * lanes - 1) / (2 * lanes) * (2 * lanes);
  const std::size_t whole_cols = dh / lanes * lanes, tail = dh - whole_cols;  // tail < lanes
  float* kt = scratch;        // [dh, kp]: K^T of the head, zeros past n
  float* vt = kt + dh * kp;   // [tail, kp]: V^T of the head's last columns, zeros past n
  float* p = vt + tail * kp;  // [4, kp]: the block's scores, then weights
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t offset = h * dh;
    for (std::size_t s = 0; s < n; ++s) {
      const float* key = k + (first + s) * d + offset;
      for (std::size_t j = 0; j < dh; ++j) kt[j * kp + s] = key[j];
    }
    for (std::size_t j = 0; j < dh; ++j)
      for (std::size_t s = n; s < kp; ++s) kt[j * kp + s] = 0.0f;
    const float* values = v + first * d + offset;  // rows of stride d
    for (std::size_t c = 0; c < tail; ++c)
      for (std::size_t s = 0; s < kp; ++s) vt[c * kp + s] = s < n ? values[s * d + whole_cols + c] : 0.0f;
    for (std::size_t t0 = 0; t0 < n; t0 += 4) {  // queries first + t0 .. first + t0 + 3
      const std::size_t rows = n - t0 < 4 ? n - t0 : 4, keys = t0 + rows;
      const float* qr[4];
      float* outr[4];
      for (std::size_t r = 0; r < 4; ++r) {  // a partial block repeats its last query (computed, not stored)
        qr[r] = q + (first + t0 + (r < rows ? r : rows - 1)) * d + offset;
        outr[r] = r < rows ? out + (first + t0 + r) * d + offset : nullptr;
      }
      const std::size_t key_vectors = (keys + lanes - 1) / lanes * lanes;  // <= kp
      for (std::size_t s0 = 0; s0 < keys; s0 += 2 * lanes) P::score_tile(qr, kt, kp, dh, s0, scale, p);
      for (std::size_t r = 0; r < 4; ++r) {
        float* row = p + r * kp;
        const std::size_t count = r < rows ? t0 + r + 1 : 0;  // causal: keys 0 .. t0 + r
        if (mask.valid != nullptr)
          for (std::size_t s = 0; s < count; ++s)
            if (mask.valid[first + s] == 0) row[s] = kMinusInf;
        // -inf up to a whole vector: the softmax then needs no partial loads, and exp(-inf) = 0 gives
        // the same sums as its own padding.
        const std::size_t whole = (count + lanes - 1) / lanes * lanes;
        for (std::size_t s = count; s < whole; ++s) row[s] = kMinusInf;
        P::softmax_row(row, whole, row);
        for (std::size_t s = whole; s < key_vectors; ++s) row[s] = 0.0f;  // context_tail reads them
      }
      std::size_t j = 0;
      for (; j + kMaxR * lanes <= whole_cols; j += kMaxR * lanes)
        P::template context_tile<kMaxR>(p, kp, values, d, keys, j, dh, outr);
      switch ((whole_cols - j) / lanes) {
        case 3: P::template context_tile<3>(p, kp, values, d, keys, j, dh, outr); break;
        case 2: P::template context_tile<2>(p, kp, values, d, keys, j, dh, outr); break;
        case 1: P::template context_tile<1>(p, kp, values, d, keys, j, dh, outr); break;
        default: break;
      }
      if (tail != 0) P::context_tail(p, kp, vt, key_vectors, tail, whole_cols, outr);
    }
  }
}
