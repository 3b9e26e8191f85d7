// chord/backends/shared/quantize_rows_driver-inl.hpp: QuantizeRowsFn (chord/ops/kernel_table.hpp) written
// once for every SIMD backend, bit-identical to chord/core/quantize_rows.hpp. A backend supplies only the vector
// passes over a row as a policy P; the driver holds the edges: non-finite detection, the all-zero (or
// too small to invert) row, the scale, the sums, and the one-by-one tails below.
//
// Included INSIDE a backend's namespace after it defines its policy and CHORD_QUANTIZE_ATTR (the
// function attribute its vector code needs; empty where the translation unit is compiled for one ISA),
// like attention_driver-inl.hpp, so that the driver inlines the policy's steps. No include guard of
// its own. The includer includes <cmath>, <cstddef>, <cstdint> and <cstring> first.
//
// Why the largest |x| is found on bit patterns: for finite floats, the order of the sign-cleared bit
// patterns (as int32) is the order of the magnitudes, and any pattern above FLT_MAX's is an infinity or
// a NaN, so one integer max both finds the scale and detects bad input.
//
// The policy P (static members):
//   max_magnitude_bits(x, k)                 the largest sign-cleared bit pattern of x[0 .. k)
//   quantize_row(x, k, inv, codes, stride)   codes[j] = clamp(nearbyint(x[j] inv), -127, 127) for j < k,
//                                            0 for j in [k, stride); returns the sum of the codes

// A policy's tails, past its last whole vector j: the same steps one value at a time (cheaper than a
// padded vector for a few values). Templates on the policy, as everything compiled per ISA must be.
template <class P>
CHORD_QUANTIZE_ATTR inline std::int32_t tail_max_magnitude_bits(const float* x, std::size_t j, std::size_t k,
                                                                std::int32_t largest) {
  for (; j < k; ++j) {
    std::int32_t bits;
    std::memcpy(&bits, x + j, sizeof bits);
    bits &= 0x7fffffff;
    largest = bits > largest ? bits : largest;
  }
  return largest;
}

// codes[j .. k) and zeros up to stride; returns their sum. Clamping before rounding equals core's
// clamping after it (the bounds are integers), and std::nearbyint rounds ties to even as the vector
// converts do.
template <class P>
CHORD_QUANTIZE_ATTR inline std::int32_t quantize_tail(const float* x, std::size_t j, std::size_t k, float inv,
                                                      std::int8_t* codes, std::size_t stride) {
  std::int32_t sum = 0;
  for (; j < k; ++j) {
    float v = x[j] * inv;
    v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
    const std::int32_t q = static_cast<std::int32_t>(std::nearbyint(v));
    codes[j] = static_cast<std::int8_t>(q);
    sum += q;
  }
  if (stride > k) std::memset(codes + k, 0, stride - k);
  return sum;
}

// See QuantizeRowsFn: returns m, or the first row holding a non-finite value.
template <class P>
CHORD_QUANTIZE_ATTR inline std::size_t quantize_rows_driver(const float* x, std::size_t ldx, std::size_t m,
                                                            std::size_t k, std::int8_t* codes, std::size_t stride,
                                                            float* scales, std::int32_t* sums) {
  constexpr std::int32_t kMaxFinite = 0x7f7fffff;  // FLT_MAX's bits
  for (std::size_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    std::int8_t* cr = codes + r * stride;
    const std::int32_t largest = P::max_magnitude_bits(xr, k);
    if (largest > kMaxFinite) return r;
    float max_abs;
    std::memcpy(&max_abs, &largest, sizeof max_abs);
    const float inv = 127.0f / max_abs;
    if (!std::isfinite(inv)) {  // all zero, or too small to invert: codes 0, scale 0
      if (stride > 0) std::memset(cr, 0, stride);
      scales[r] = 0.0f;
      sums[r] = 0;
      continue;
    }
    sums[r] = P::quantize_row(xr, k, inv, cr, stride);
    scales[r] = max_abs / 127.0f;
  }
  return m;
}
