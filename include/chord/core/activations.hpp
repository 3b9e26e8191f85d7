// chord/core/activations.hpp: int8 per-row (per-token) dynamic activation quantization.
//
// Row r of an fp32 activation matrix [m, k] becomes int8 codes a_rj in [-127, 127] and one scale:
//   inv = 127 / max_j |x_rj|,   a_rj = nearbyint(x_rj * inv),   scale_r = max_j |x_rj| / 127.
// -128 is never produced: the symmetric range keeps a dot product's bound |a| * |u| <= 127 * 255 and
// makes extreme inputs saturate at +-127 instead of wrapping. nearbyint rounds half to even, like
// cvtps2dq and NEON fcvtns, so SIMD quantizers can reproduce these codes bit for bit.
// Each row is padded with zeros to a multiple of kMaxGroupK (the longest packed k-group) so that any
// kernel may read whole panels; a row whose largest |x| is below 127 / FLT_MAX (~4e-37, denormal
// territory) is treated as zero, since its inverse scale would overflow; the row sums feed the unsigned-offset correction of packed.hpp.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"
#include "chord/core/packed.hpp"

namespace chord {

struct QuantizedRows {
  std::size_t m = 0, k = 0, stride = 0;  // stride = round_up(k, kMaxGroupK)
  AlignedVector<std::int8_t> codes;      // [m, stride], zero past k
  AlignedVector<float> scales;           // [m]
  AlignedVector<std::int32_t> sums;      // [m]: sum of the codes of each row

  const std::int8_t* row(std::size_t r) const { return codes.data() + r * stride; }
};

// x: [m, k] fp32 with row stride ldx (>= k). Non-finite inputs throw (they would poison a whole row).
inline void quantize_rows(const float* x, std::size_t m, std::size_t k, std::size_t ldx, QuantizedRows& out) {
  out.m = m, out.k = k, out.stride = round_up(k, kMaxGroupK);
  out.codes.assign(m * out.stride, 0);
  out.scales.assign(m, 0.0f);
  out.sums.assign(m, 0);
  for (std::size_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    float max_abs = 0.0f;
    for (std::size_t j = 0; j < k; ++j) {
      CHORD_CHECK(std::isfinite(xr[j]), "quantize_rows: activation (", r, ", ", j, ") is not finite");
      max_abs = std::fmax(max_abs, std::fabs(xr[j]));
    }
    const float inv = 127.0f / max_abs;
    if (!std::isfinite(inv)) continue;  // all-zero row, or so tiny (< 4e-37) that 127/max overflows
    out.scales[r] = max_abs / 127.0f;
    std::int32_t sum = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const float q = std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(xr[j] * inv)));
      out.codes[r * out.stride + j] = static_cast<std::int8_t>(q);
      sum += static_cast<std::int32_t>(q);
    }
    out.sums[r] = sum;
  }
}

inline QuantizedRows quantize_rows(const float* x, std::size_t m, std::size_t k) {
  QuantizedRows out;
  quantize_rows(x, m, k, k, out);
  return out;
}

}  // namespace chord
