// chord/core/quantize_rows.hpp: int8 per-row (per-token) dynamic activation quantization.
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
#include <cstring>

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

// The longest k whose int8 dot products every kernel sums exactly in int32: the unsigned-offset weight
// codes u in [0, 255] times activation codes a in [-127, 127] give |sum u a| <= 255 * 127 * k, which
// stays below 2^31 for k <= 66311 (2^31 / 32385 = 66311.1). Beyond it the sums would wrap silently.
inline constexpr std::size_t kMaxS8DotK = 66311;

// The contract of every int8 kernel, checked by the public ops (ops/gemm.hpp) before they run one:
// k within kMaxS8DotK, the buffers as large as m x stride, and no code -128 (which would break the
// bound and, on AVX2's vpmaddubsw path, the sign). quantize_rows never writes -128; a hand-filled
// QuantizedRows is refused. The scan is one memchr over m x stride bytes: 1/n of the GEMM's work.
inline void check_s8_rows(const QuantizedRows& a, const char* op) {
  CHORD_CHECK(a.k <= kMaxS8DotK, op, ": k = ", a.k, " exceeds kMaxS8DotK = ", kMaxS8DotK,
              ", the longest dot product an int32 accumulator holds exactly (255 * 127 * k < 2^31)");
  CHORD_CHECK(a.stride >= a.k && a.codes.size() >= a.m * a.stride && a.scales.size() >= a.m && a.sums.size() >= a.m,
              op, ": QuantizedRows buffers are smaller than m = ", a.m, " rows of stride ", a.stride);
  if (a.m == 0 || a.stride == 0) return;
  const void* bad = std::memchr(a.codes.data(), 0x80, a.m * a.stride);
  if (bad != nullptr) {
    const auto at = std::size_t(static_cast<const std::int8_t*>(bad) - a.codes.data());
    throw Error(detail::error_message(op, ": activation code -128 at (", at / a.stride, ", ", at % a.stride,
                                      "): QuantizedRows codes must be in [-127, 127]"));
  }
}

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
