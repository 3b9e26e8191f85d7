// chord/core/quantize_rows.hpp: int8 per-row (per-token) dynamic activation quantization.
//
// Row r of an fp32 activation matrix [m, k] becomes int8 codes a_rj in [-127, 127] and one scale:
//   inv = 127 / max_j |x_rj|,   a_rj = nearbyint(x_rj * inv),   scale_r = max_j |x_rj| / 127.
// -128 is never produced: the symmetric range keeps a dot product's bound |a| * |u| <= 127 * 255 and
// makes extreme inputs saturate at +-127 instead of wrapping. nearbyint rounds half to even, like
// cvtps2dq and NEON fcvtns, so SIMD quantizers can reproduce these codes bit for bit.
// Each row is padded with zeros to a multiple of kMaxGroupK (the longest packed k-group) so that any
// kernel may read whole panels; a row whose largest |x| is below 127 / FLT_MAX (~4e-37, denormal
// territory) is treated as zero, since its inverse scale would overflow; the row sums feed the
// unsigned-offset correction of packed.hpp.
//
// [-127, 127] holds by construction, not by a check at each op: QuantizedRows' storage is private and
// only three writers fill it: chord::quantize_rows below, ops::quantize_rows (a kernel table's
// QuantizeRowsFn, whose contract is these same codes; tests/test_kernels_ops.cpp checks every table
// bit for bit against this file), and QuantizedRows::from_codes, which refuses -128 (and any code or
// scale out of range) when it copies hand-made codes in. Readers get const pointers: no copy, no scan.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"
#include "chord/core/packed.hpp"

namespace chord {

struct KernelTable;
class QuantizedRows;
namespace ops {
// The table-driven quantizer (ops/quantize_rows.hpp), declared here to be QuantizedRows' friend.
inline void quantize_rows(const KernelTable& kernels, const float* x, std::size_t m, std::size_t k, std::size_t ldx,
                          QuantizedRows& out);
}  // namespace ops

// m rows of k int8 codes in [-127, 127], each row padded with zeros to `stride` (a multiple of
// kMaxGroupK), with its scale and the sum of its codes. codes: [m, stride], scales, sums: [m].
class QuantizedRows {
 public:
  QuantizedRows() = default;

  // The checked way in for codes that quantize_rows did not write (tests, examples, imported rows):
  // codes [m, k] with row stride ldc (>= k), scales [m] (finite, >= 0). Copies them into rows of
  // `stride` bytes (0: round_up(k, kMaxGroupK); else at least that, which tests use for odd layouts)
  // and computes the sums. A code of -128, or a bad scale, is refused with a chord::Error naming it.
  static QuantizedRows from_codes(const std::int8_t* codes, std::size_t m, std::size_t k, std::size_t ldc,
                                  const float* scales, std::size_t stride = 0) {
    CHORD_CHECK(ldc >= k, "QuantizedRows::from_codes: row stride ", ldc, " is shorter than k = ", k);
    const std::size_t padded = round_up(k, kMaxGroupK);
    CHORD_CHECK(stride == 0 || stride >= padded, "QuantizedRows::from_codes: stride ", stride,
                " is shorter than k rounded up to kMaxGroupK (", padded, ")");
    QuantizedRows a;
    a.resize(m, k, stride == 0 ? padded : stride);
    for (std::size_t r = 0; r < m; ++r) {
      CHORD_CHECK(std::isfinite(scales[r]) && scales[r] >= 0.0f, "QuantizedRows::from_codes: scale ", r, " is ",
                  scales[r], " (want finite and >= 0)");
      a.scales_[r] = scales[r];
      std::int32_t sum = 0;
      for (std::size_t j = 0; j < k; ++j) {
        const std::int8_t code = codes[r * ldc + j];
        CHORD_CHECK(code != -128, "QuantizedRows::from_codes: activation code -128 at (", r, ", ", j,
                    "): codes must be in [-127, 127]");
        a.codes_[r * a.stride_ + j] = code;
        sum += code;
      }
      a.sums_[r] = sum;
    }
    return a;
  }

  std::size_t m() const { return m_; }
  std::size_t k() const { return k_; }
  std::size_t stride() const { return stride_; }              // >= round_up(k, kMaxGroupK)
  const std::int8_t* codes() const { return codes_.data(); }  // [m, stride], zero past k
  const float* scales() const { return scales_.data(); }      // [m]
  const std::int32_t* sums() const { return sums_.data(); }   // [m]: sum of the codes of each row
  const std::int8_t* row(std::size_t r) const { return codes_.data() + r * stride_; }

 private:
  friend void quantize_rows(const float* x, std::size_t m, std::size_t k, std::size_t ldx, QuantizedRows& out);
  friend void ops::quantize_rows(const KernelTable& kernels, const float* x, std::size_t m, std::size_t k,
                                 std::size_t ldx, QuantizedRows& out);

  // Zeroed rows (a kernel writes every byte of them anyway: codes up to stride, scales, sums). The
  // buffers keep their capacity, so a reused QuantizedRows (ops/workspace.hpp) does not reallocate.
  void resize(std::size_t m, std::size_t k, std::size_t stride) {
    m_ = m, k_ = k, stride_ = stride;
    codes_.assign(m * stride, 0);
    scales_.assign(m, 0.0f);
    sums_.assign(m, 0);
  }

  std::size_t m_ = 0, k_ = 0, stride_ = 0;
  AlignedVector<std::int8_t> codes_;
  AlignedVector<float> scales_;
  AlignedVector<std::int32_t> sums_;
};

// The longest k whose int8 dot products every kernel sums exactly in int32: the unsigned-offset weight
// codes u in [0, 255] times activation codes a in [-127, 127] give |sum u a| <= 255 * 127 * k, which
// stays below 2^31 for k <= 66311 (2^31 / 32385 = 66311.1). Beyond it the sums would wrap silently.
inline constexpr std::size_t kMaxS8DotK = 66311;

// The one contract of the int8 kernels that QuantizedRows cannot guarantee by itself, checked by the
// public ops (ops/gemm.hpp) before they run one: k within kMaxS8DotK. (Codes in [-127, 127] and
// buffers of m x stride hold by construction; see the top of this file.)
inline void check_s8_dot_k(const QuantizedRows& a, const char* op) {
  CHORD_CHECK(a.k() <= kMaxS8DotK, op, ": k = ", a.k(), " exceeds kMaxS8DotK = ", kMaxS8DotK,
              ", the longest dot product an int32 accumulator holds exactly (255 * 127 * k < 2^31)");
}

// x: [m, k] fp32 with row stride ldx (>= k). Non-finite inputs throw (they would poison a whole row).
inline void quantize_rows(const float* x, std::size_t m, std::size_t k, std::size_t ldx, QuantizedRows& out) {
  out.resize(m, k, round_up(k, kMaxGroupK));
  for (std::size_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    float max_abs = 0.0f;
    for (std::size_t j = 0; j < k; ++j) {
      CHORD_CHECK(std::isfinite(xr[j]), "quantize_rows: activation (", r, ", ", j, ") is not finite");
      max_abs = std::fmax(max_abs, std::fabs(xr[j]));
    }
    const float inv = 127.0f / max_abs;
    if (!std::isfinite(inv)) continue;  // all-zero row, or so tiny (< 4e-37) that 127/max overflows
    out.scales_[r] = max_abs / 127.0f;
    std::int32_t sum = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const float q = std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(xr[j] * inv)));
      out.codes_[r * out.stride_ + j] = static_cast<std::int8_t>(q);
      sum += static_cast<std::int32_t>(q);
    }
    out.sums_[r] = sum;
  }
}

inline QuantizedRows quantize_rows(const float* x, std::size_t m, std::size_t k) {
  QuantizedRows out;
  quantize_rows(x, m, k, k, out);
  return out;
}

}  // namespace chord
