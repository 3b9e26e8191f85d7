// chord/backends/xsimd/rowops.hpp: the xsimd backend's row kernels, one template per ISA tag:
//   quantize_rows<Tag>   fp32 rows -> int8 codes, bit-identical to core/quantize_rows.hpp
//   layernorm<Tag>, softmax<Tag>, relu<Tag>, gelu<Tag>, add<Tag>   fp32 (contracts: kernel_table.hpp)
//
// Every loop runs whole registers, then one partial register for the tail: the tail's values are
// copied into a register-sized buffer padded with a neutral value (0 for sums, -inf for a max or an
// exp, the row's mean for deviations), so the tail goes through the very same vector code (a GELU or
// an exp never depends on where an element sits in its row) and nothing is read past the row.
// quantize_rows and layernorm do their few tail values one by one instead, with the same steps (a row
// of 50 spent more time padding its tail than on its 48 other values).
// exp is xsimd's (1 ulp); GELU follows backends/shared/gelu_polynomial.hpp. Per-ISA intrinsics appear only where
// xsimd 8.1 falls short: rounding to int32 ties-to-even (its generic nearbyint_as_int rounds half away
// from zero under GCC for AVX-512) and narrowing int32 codes to int8.
// ODR: every function is a template on the chord ISA tag (common.hpp's rule); the neon_dotprod table
// reuses the neon unit's row kernels (dispatch/neon_dotprod.cpp) rather than compiling them twice.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "chord/backends/xsimd/common.hpp"
#include "chord/backends/xsimd/gemm.hpp"
#include "chord/backends/shared/gelu_polynomial.hpp"

namespace chord::backends::xsimd {

namespace row_detail {

template <class Tag>
using FloatBatch = ::xsimd::batch<float, arch_t<Tag>>;
template <class Tag>
using IntBatch = ::xsimd::batch<std::int32_t, arch_t<Tag>>;

// n < lanes floats from p, `fill` in the other lanes.
template <class Tag>
inline FloatBatch<Tag> load_partial(const float* p, std::size_t n, float fill) {
  alignas(64) float buffer[FloatBatch<Tag>::size];
  for (std::size_t i = 0; i < FloatBatch<Tag>::size; ++i) buffer[i] = i < n ? p[i] : fill;
  return FloatBatch<Tag>::load_aligned(buffer);
}
// The first n < lanes lanes of v to p.
template <class Tag>
inline void store_partial(const FloatBatch<Tag>& v, float* p, std::size_t n) {
  alignas(64) float buffer[FloatBatch<Tag>::size];
  v.store_aligned(buffer);
  for (std::size_t i = 0; i < n; ++i) p[i] = buffer[i];
}

// y[j] = f(x[j]) for j < n over whole registers, the tail padded with `fill`.
template <class Tag, class F>
inline void map(const float* x, std::size_t n, float* y, float fill, F&& f) {
  using B = FloatBatch<Tag>;
  std::size_t j = 0;
  for (; j + B::size <= n; j += B::size) f(B::load_unaligned(x + j)).store_unaligned(y + j);
  if (j < n) store_partial<Tag>(f(load_partial<Tag>(x + j, n - j, fill)), y + j, n - j);
}

// Reductions of one register (once per row: the stack round trip of a store-and-loop costs a stalled
// store-to-load forward, which rows of 50 noticed). Intrinsics per ISA; the loop for any other tag.
// The largest lane of v, which holds no NaN (exact in any order: the sign of a zero max does not
// matter to its users).
template <class Tag>
inline float reduce_max(const FloatBatch<Tag>& v) {
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) return _mm512_reduce_max_ps(v);
#endif
#if defined(CHORD_XSIMD_AVX2)
  if constexpr (std::is_same_v<Tag, isa::avx2>) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
#endif
#if defined(CHORD_XSIMD_NEON)
  if constexpr (std::is_same_v<Tag, isa::neon> || std::is_same_v<Tag, isa::neon_dotprod>) return vmaxvq_f32(v);
#endif
  alignas(64) float lanes[FloatBatch<Tag>::size];
  v.store_aligned(lanes);
  float max = lanes[0];
  for (std::size_t i = 1; i < FloatBatch<Tag>::size; ++i) max = lanes[i] > max ? lanes[i] : max;
  return max;
}
template <class Tag>
inline std::int32_t reduce_max(const IntBatch<Tag>& v) {
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) return _mm512_reduce_max_epi32(v);
#endif
#if defined(CHORD_XSIMD_AVX2)
  if constexpr (std::is_same_v<Tag, isa::avx2>) {
    __m128i m = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
    return _mm_cvtsi128_si32(_mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1)));
  }
#endif
#if defined(CHORD_XSIMD_NEON)
  if constexpr (std::is_same_v<Tag, isa::neon> || std::is_same_v<Tag, isa::neon_dotprod>) return vmaxvq_s32(v);
#endif
  alignas(64) std::int32_t lanes[IntBatch<Tag>::size];
  v.store_aligned(lanes);
  std::int32_t max = lanes[0];
  for (std::size_t i = 1; i < IntBatch<Tag>::size; ++i) max = lanes[i] > max ? lanes[i] : max;
  return max;
}
template <class Tag>
inline std::int32_t reduce_add(const IntBatch<Tag>& v) {
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) return _mm512_reduce_add_epi32(v);
#endif
#if defined(CHORD_XSIMD_AVX2)
  if constexpr (std::is_same_v<Tag, isa::avx2>) {
    __m128i m = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(m, _mm_shuffle_epi32(m, 0xb1)));
  }
#endif
#if defined(CHORD_XSIMD_NEON)
  if constexpr (std::is_same_v<Tag, isa::neon> || std::is_same_v<Tag, isa::neon_dotprod>) return vaddvq_s32(v);
#endif
  alignas(64) std::int32_t lanes[IntBatch<Tag>::size];
  v.store_aligned(lanes);
  std::int32_t sum = 0;
  for (std::size_t i = 0; i < IntBatch<Tag>::size; ++i) sum += lanes[i];
  return sum;
}

// Round to the nearest int32, ties to even (the default rounding mode; as std::nearbyint).
template <class Tag>
inline IntBatch<Tag> round_to_int(const FloatBatch<Tag>& v) {
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) return IntBatch<Tag>(_mm512_cvtps_epi32(v));
#endif
#if defined(CHORD_XSIMD_AVX2)
  if constexpr (std::is_same_v<Tag, isa::avx2>) return IntBatch<Tag>(_mm256_cvtps_epi32(v));
#endif
#if defined(CHORD_XSIMD_NEON)
  if constexpr (std::is_same_v<Tag, isa::neon> || std::is_same_v<Tag, isa::neon_dotprod>)
    return IntBatch<Tag>(vcvtnq_s32_f32(v));
#endif
}

// The lanes of q (each in [-127, 127]) as int8 to dst[0 .. lanes).
template <class Tag>
inline void store_codes(const IntBatch<Tag>& q, std::int8_t* dst) {
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(q));
    return;
  }
#endif
#if defined(CHORD_XSIMD_AVX2)
  if constexpr (std::is_same_v<Tag, isa::avx2>) {
    // packs works within 128-bit halves: bytes 0-3 of each half hold lanes 0-3 and 4-7.
    const __m256i words = _mm256_packs_epi32(q, q);
    const __m256i bytes = _mm256_packs_epi16(words, words);
    const std::int32_t low = _mm_cvtsi128_si32(_mm256_castsi256_si128(bytes));
    const std::int32_t high = _mm_cvtsi128_si32(_mm256_extracti128_si256(bytes, 1));
    std::memcpy(dst, &low, 4);
    std::memcpy(dst + 4, &high, 4);
    return;
  }
#endif
#if defined(CHORD_XSIMD_NEON)
  if constexpr (std::is_same_v<Tag, isa::neon> || std::is_same_v<Tag, isa::neon_dotprod>) {
    const int16x4_t words = vmovn_s32(q);
    const int8x8_t bytes = vmovn_s16(vcombine_s16(words, words));
    const std::int32_t four = vget_lane_s32(vreinterpret_s32_s8(bytes), 0);
    std::memcpy(dst, &four, 4);
    return;
  }
#endif
}

// GELU of one register through the normal tail T(|x|) (backends/shared/gelu_polynomial.hpp).
template <class Tag>
inline FloatBatch<Tag> gelu(const FloatBatch<Tag>& x) {
  namespace nt = chord::backends::gelu_polynomial;
  using B = FloatBatch<Tag>;
  const B a = ::xsimd::min(::xsimd::abs(x), B(nt::kTailZero));  // clamped: a^2 stays finite
  const B u = a * a;
  B p(nt::kP[0]);
  for (int i = 1; i < nt::kPCount; ++i) p = fused_multiply_add<Tag>(p, u, B(nt::kP[i]));
  const B small = B(0.5f) - a * p;
  const B t = B(1.0f) / (B(1.0f) + B(nt::kTScale) * a);
  B q(nt::kQ[0]);
  for (int i = 1; i < nt::kQCount; ++i) q = fused_multiply_add<Tag>(q, t, B(nt::kQ[i]));
  const B lo = fused_multiply_add<Tag>(a, a, -u);  // a^2 = u + lo exactly
  const B gauss = ::xsimd::exp(B(-0.5f) * u) * (B(1.0f) - B(0.5f) * lo);
  B tail = ::xsimd::select(a < B(nt::kSmallLimit), small, gauss * (t * q));
  tail = ::xsimd::select(a >= B(nt::kTailZero), B(0.0f), tail);
  return ::xsimd::select(x < B(0.0f), x * tail, x * (B(1.0f) - tail));
}

#if defined(CHORD_XSIMD_AVX512_VNNI)
// quantize_rows' passes for AVX-512: the same steps per lane as the generic policy below, with the tail
// as one masked register (masked lanes load 0 and give code 0), so no value goes one by one
// (std::nearbyint is a library call at the baseline ISA) and the zeros from k to stride come with the
// tail's store. A template on the tag like every ISA-compiled function here (common.hpp's ODR rule).
template <class Tag>
struct QuantizeRowsAvx512 {
  static constexpr std::size_t kLanes = 16;
  static __mmask16 tail_mask(std::size_t k) { return static_cast<__mmask16>((1u << (k % kLanes)) - 1u); }

  static std::int32_t max_magnitude_bits(const float* x, std::size_t k) {
    const std::size_t whole = k / kLanes * kLanes;
    const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
    __m512i max_bits = _mm512_setzero_si512();
    for (std::size_t j = 0; j < whole; j += kLanes)
      max_bits = _mm512_max_epi32(max_bits, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + j)), magnitude));
    if (whole < k)
      max_bits = _mm512_max_epi32(
          max_bits, _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(tail_mask(k), x + whole)), magnitude));
    return _mm512_reduce_max_epi32(max_bits);
  }

  static std::int32_t quantize_row(const float* x, std::size_t k, float inv, std::int8_t* codes, std::size_t stride) {
    const std::size_t whole = k / kLanes * kLanes;
    // Clamping before rounding equals core's clamping after it: the bounds are integers.
    const __m512 scale = _mm512_set1_ps(inv), low = _mm512_set1_ps(-127.0f), high = _mm512_set1_ps(127.0f);
    const auto quantize = [&](__m512 v) {
      return _mm512_cvtps_epi32(_mm512_min_ps(high, _mm512_max_ps(low, _mm512_mul_ps(v, scale))));  // ties to even
    };
    __m512i sum = _mm512_setzero_si512();
    std::size_t j = 0;
    for (; j < whole; j += kLanes) {
      const __m512i q = quantize(_mm512_loadu_ps(x + j));
      sum = _mm512_add_epi32(sum, q);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + j), _mm512_cvtepi32_epi8(q));
    }
    std::size_t zeroed = k;  // codes written up to here
    if (whole < k) {
      const __m512i q = quantize(_mm512_maskz_loadu_ps(tail_mask(k), x + j));
      sum = _mm512_add_epi32(sum, q);
      if (j + kLanes <= stride) {  // the whole register: codes, then zeros up to j + 16
        _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + j), _mm512_cvtepi32_epi8(q));
        zeroed = j + kLanes;
      } else {
        _mm512_mask_cvtepi32_storeu_epi8(codes + j, tail_mask(k), q);
      }
    }
    if (stride > zeroed) std::memset(codes + zeroed, 0, stride - zeroed);
    return _mm512_reduce_add_epi32(sum);
  }
};
#endif

// quantize_rows' passes over whole registers (xsimd); the driver's one-by-one tails finish them.
template <class Tag>
struct QuantizeRowsPolicy {
  using B = FloatBatch<Tag>;
  using I = IntBatch<Tag>;
  static constexpr std::size_t kLanes = B::size;

  static std::int32_t max_magnitude_bits(const float* x, std::size_t k);
  static std::int32_t quantize_row(const float* x, std::size_t k, float inv, std::int8_t* codes, std::size_t stride);
};

#define CHORD_QUANTIZE_ATTR
#include "chord/backends/shared/quantize_rows_driver-inl.hpp"
#undef CHORD_QUANTIZE_ATTR

template <class Tag>
std::int32_t QuantizeRowsPolicy<Tag>::max_magnitude_bits(const float* x, std::size_t k) {
  const I magnitude_mask(0x7fffffff);
  I max_bits(0);
  std::size_t j = 0;
  for (; j + kLanes <= k; j += kLanes)
    max_bits = ::xsimd::max(max_bits, ::xsimd::bitwise_cast<I>(B::load_unaligned(x + j)) & magnitude_mask);
  return tail_max_magnitude_bits<QuantizeRowsPolicy>(x, j, k, reduce_max<Tag>(max_bits));
}

template <class Tag>
std::int32_t QuantizeRowsPolicy<Tag>::quantize_row(const float* x, std::size_t k, float inv, std::int8_t* codes,
                                                   std::size_t stride) {
  // Clamping before rounding equals core's clamping after it: the bounds are integers.
  const B scale(inv), low(-127.0f), high(127.0f);
  I sum(0);
  std::size_t j = 0;
  for (; j + kLanes <= k; j += kLanes) {
    const I q = round_to_int<Tag>(::xsimd::min(high, ::xsimd::max(low, B::load_unaligned(x + j) * scale)));
    sum += q;
    store_codes<Tag>(q, codes + j);
  }
  return reduce_add<Tag>(sum) + quantize_tail<QuantizeRowsPolicy>(x, j, k, inv, codes, stride);
}

}  // namespace row_detail

// See QuantizeRowsFn (chord/backends/shared/quantize_rows_driver-inl.hpp: the steps and their edges).
template <class Tag>
std::size_t quantize_rows(const float* x, std::size_t ldx, std::size_t m, std::size_t k, std::int8_t* codes,
                          std::size_t stride, float* scales, std::int32_t* sums) {
#if defined(CHORD_XSIMD_AVX512_VNNI)
  if constexpr (std::is_same_v<Tag, isa::avx512_vnni>)
    return row_detail::quantize_rows_driver<row_detail::QuantizeRowsAvx512<Tag>>(x, ldx, m, k, codes, stride, scales,
                                                                                 sums);
#endif
  return row_detail::quantize_rows_driver<row_detail::QuantizeRowsPolicy<Tag>>(x, ldx, m, k, codes, stride, scales,
                                                                               sums);
}

// See LayerNormFn: fp32, two passes (sum, then squared deviations from the mean), two accumulators.
template <class Tag>
void layernorm(const float* x, std::size_t m, std::size_t d, const float* gamma, const float* beta, float eps,
               float* y) {
  // The tail past the last whole register goes one value at a time, as in quantize_rows: a padded
  // register costs a stack round trip (a stalled store-to-load forward) per pass, and layernorm makes
  // five of them per row; SASRec's rows of 50 spent more time there than on their 48 other values.
  using B = row_detail::FloatBatch<Tag>;
  constexpr std::size_t kLanes = B::size;
  const std::size_t whole = d / kLanes * kLanes;
  for (std::size_t i = 0; i < m; ++i) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    B s0(0.0f), s1(0.0f);
    std::size_t j = 0;
    for (; j + 2 * kLanes <= d; j += 2 * kLanes) {
      s0 += B::load_unaligned(xr + j);
      s1 += B::load_unaligned(xr + j + kLanes);
    }
    if (j < whole) s0 += B::load_unaligned(xr + j);
    float tail = 0.0f;
    for (j = whole; j < d; ++j) tail += xr[j];
    const float mean = (::xsimd::hadd(s0 + s1) + tail) / static_cast<float>(d);

    const B vmean(mean);
    B q0(0.0f), q1(0.0f);
    for (j = 0; j + 2 * kLanes <= d; j += 2 * kLanes) {
      const B e0 = B::load_unaligned(xr + j) - vmean, e1 = B::load_unaligned(xr + j + kLanes) - vmean;
      q0 = fused_multiply_add<Tag>(e0, e0, q0);
      q1 = fused_multiply_add<Tag>(e1, e1, q1);
    }
    if (j < whole) {
      const B e = B::load_unaligned(xr + j) - vmean;
      q0 = fused_multiply_add<Tag>(e, e, q0);
    }
    float tail_squares = 0.0f;
    for (j = whole; j < d; ++j) tail_squares += (xr[j] - mean) * (xr[j] - mean);
    const float var = (::xsimd::hadd(q0 + q1) + tail_squares) / static_cast<float>(d);
    const float inv = 1.0f / std::sqrt(var + eps);
    const B inv_std(inv);

    for (j = 0; j < whole; j += kLanes) {
      const B g = gamma ? B::load_unaligned(gamma + j) : B(1.0f), b = beta ? B::load_unaligned(beta + j) : B(0.0f);
      ((B::load_unaligned(xr + j) - vmean) * inv_std * g + b).store_unaligned(yr + j);
    }
    for (; j < d; ++j)  // the same operations in the same order as a lane
      yr[j] = (xr[j] - mean) * inv * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
  }
}

// One softmax row (in place allowed): exp(x - max) with xsimd's exp, fp32 sum, one reciprocal.
// NaN as in the reference: the max ignores NaN (fmax); a row without a finite entry gives zeros, and
// otherwise a NaN anywhere makes the whole row NaN. xsimd's exp(NaN) is not NaN and a SIMD max may
// keep or drop a NaN, so the first pass tracks NaNs itself.
template <class Tag>
void softmax_row(const float* x, std::size_t n, float* y) {
  using B = row_detail::FloatBatch<Tag>;
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  const B minus_inf(kMinusInf);
  B vmax = minus_inf;
  auto nan = ::xsimd::isnan(vmax);  // all false (xsimd 8.1's != is ordered on AVX-512: false for NaN)
  std::size_t j = 0;
  for (; j + B::size <= n; j += B::size) {
    const B v = B::load_unaligned(x + j);
    const auto v_nan = ::xsimd::isnan(v);
    vmax = ::xsimd::max(vmax, ::xsimd::select(v_nan, minus_inf, v));
    nan = nan | v_nan;
  }
  if (j < n) {
    const B v = row_detail::load_partial<Tag>(x + j, n - j, kMinusInf);
    const auto v_nan = ::xsimd::isnan(v);
    vmax = ::xsimd::max(vmax, ::xsimd::select(v_nan, minus_inf, v));
    nan = nan | v_nan;
  }
  const float max = row_detail::reduce_max<Tag>(vmax);
  if (max == kMinusInf || ::xsimd::any(nan)) {  // no key at all (or n = 0): zeros, not 0 / 0
    const float fill = max == kMinusInf ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    for (j = 0; j < n; ++j) y[j] = fill;
    return;
  }
  const B shift(max);
  B sum(0.0f);
  row_detail::map<Tag>(x, n, y, kMinusInf, [&](const B& v) {  // padding: exp(-inf) = 0
    const B e = ::xsimd::exp(v - shift);
    sum += e;
    return e;
  });
  const B inv(1.0f / ::xsimd::hadd(sum));
  row_detail::map<Tag>(y, n, y, 0.0f, [&](const B& v) { return v * inv; });
}

// See SoftmaxFn.
template <class Tag>
void softmax(const float* x, std::size_t m, std::size_t n, bool causal, float* y) {
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t count = causal && i + 1 < n ? i + 1 : n;
    softmax_row<Tag>(x + i * n, count, y + i * n);
    for (std::size_t j = count; j < n; ++j) y[i * n + j] = 0.0f;
  }
}

// ReLU keeping NaN: a lane is zeroed only when x <= 0 (false for NaN).
template <class Tag>
void relu(const float* x, std::size_t n, float* y) {
  using B = row_detail::FloatBatch<Tag>;
  row_detail::map<Tag>(x, n, y, 0.0f, [](const B& v) { return ::xsimd::select(v <= B(0.0f), B(0.0f), v); });
}

template <class Tag>
void gelu(const float* x, std::size_t n, float* y) {
  using B = row_detail::FloatBatch<Tag>;
  row_detail::map<Tag>(x, n, y, 0.0f, [](const B& v) { return row_detail::gelu<Tag>(v); });
}

template <class Tag>
void add(const float* x, const float* r, std::size_t n, float* y) {
  using B = row_detail::FloatBatch<Tag>;
  std::size_t j = 0;
  for (; j + B::size <= n; j += B::size) (B::load_unaligned(x + j) + B::load_unaligned(r + j)).store_unaligned(y + j);
  for (; j < n; ++j) y[j] = x[j] + r[j];
}

}  // namespace chord::backends::xsimd
