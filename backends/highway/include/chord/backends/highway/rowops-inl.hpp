// chord/backends/highway/rowops-inl.hpp: the Highway row kernels, per target (contracts: the Fn types
// in chord/ops/kernel_table.hpp):
//   QuantizeRows    fp32 rows -> int8 codes, bit-identical to core/quantize_rows.hpp
//   LayerNorm, Softmax (SoftmaxRow), Relu, Gelu, ResidualAdd                           fp32
//
// Included once per Highway target (toggle guard). Vectors are DF = Rebind<float, D32>: up to 16
// lanes (CappedTag), so a register-sized stack buffer of 16 floats holds any tail. Every loop runs
// whole vectors, then one vector built from the tail padded with a neutral value (0 for sums, -inf for
// a max or an exp, the mean for deviations): the same code handles every element, nothing is read
// past a row, and no masked load is needed (Highway 1.0.3's MaskedLoad may read the whole vector).
// QuantizeRows and LayerNorm do their few tail values one by one instead, with the same steps.
// No arrays or lambda captures of vectors: SVE vectors are sizeless.
// exp: hwy/contrib/math Exp (max error 1 ulp); GELU: the scheme of chord/backends/shared/gelu_polynomial.hpp.

#if defined(CHORD_BACKENDS_HIGHWAY_ROWOPS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHORD_BACKENDS_HIGHWAY_ROWOPS_INL_HPP_
#undef CHORD_BACKENDS_HIGHWAY_ROWOPS_INL_HPP_
#else
#define CHORD_BACKENDS_HIGHWAY_ROWOPS_INL_HPP_
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "chord/backends/highway/gemm-inl.hpp"
#include "chord/ops/kernel_table.hpp"
#include "chord/backends/shared/gelu_polynomial.hpp"
#include "hwy/contrib/math/math-inl.h"

#if CHORD_HWY_HAVE_KERNELS
HWY_BEFORE_NAMESPACE();
namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE {

inline constexpr std::size_t kMaxRowLanes = 16;  // DF is capped at 16 lanes

// n < Lanes(df) floats from p, `fill` in the other lanes.
HWY_INLINE CHORD_HWY_ATTR VF LoadPartial(const float* p, std::size_t n, float fill) {
  HWY_ALIGN float buffer[kMaxRowLanes];
  for (std::size_t i = 0; i < kMaxRowLanes; ++i) buffer[i] = i < n ? p[i] : fill;
  return hn::Load(DF(), buffer);
}
// The first n < Lanes(df) lanes of v to p.
HWY_INLINE CHORD_HWY_ATTR void StorePartial(VF v, float* p, std::size_t n) {
  HWY_ALIGN float buffer[kMaxRowLanes];
  hn::Store(v, DF(), buffer);
  for (std::size_t i = 0; i < n; ++i) p[i] = buffer[i];
}
HWY_INLINE CHORD_HWY_ATTR float ReduceSum(VF v) { return hn::GetLane(hn::SumOfLanes(DF(), v)); }

// quantize_rows' passes over whole vectors; the driver's one-by-one tails finish them.
struct QuantizeRowsPolicy {
  static HWY_INLINE CHORD_HWY_ATTR std::int32_t max_magnitude_bits(const float* x, std::size_t k);
  static HWY_INLINE CHORD_HWY_ATTR std::int32_t quantize_row(const float* x, std::size_t k, float inv,
                                                             std::int8_t* codes, std::size_t stride);
};

#define CHORD_QUANTIZE_ATTR CHORD_HWY_ATTR
#include "chord/backends/shared/quantize_rows_driver-inl.hpp"
#undef CHORD_QUANTIZE_ATTR

HWY_INLINE CHORD_HWY_ATTR std::int32_t QuantizeRowsPolicy::max_magnitude_bits(const float* x, std::size_t k) {
  const DF df;
  const D32 di;
  const std::size_t lanes = hn::Lanes(df);
  const V32 magnitude = hn::Set(di, 0x7fffffff);
  V32 max_bits = hn::Zero(di);
  std::size_t j = 0;
  for (; j + lanes <= k; j += lanes) max_bits = hn::Max(max_bits, hn::And(hn::BitCast(di, hn::LoadU(df, x + j)), magnitude));
  return tail_max_magnitude_bits<QuantizeRowsPolicy>(x, j, k, hn::GetLane(hn::MaxOfLanes(di, max_bits)));
}

// NearestInt rounds ties to even, as std::nearbyint in the tail.
HWY_INLINE CHORD_HWY_ATTR std::int32_t QuantizeRowsPolicy::quantize_row(const float* x, std::size_t k, float inv,
                                                                        std::int8_t* codes, std::size_t stride) {
  const DF df;
  const D32 di;
  const hn::Rebind<std::int8_t, D32> d8;
  const std::size_t lanes = hn::Lanes(df);
  // Clamping before rounding equals core's clamping after it: the bounds are integers.
  const VF scale = hn::Set(df, inv), low = hn::Set(df, -127.0f), high = hn::Set(df, 127.0f);
  V32 sum = hn::Zero(di);
  std::size_t j = 0;
  for (; j + lanes <= k; j += lanes) {
    const V32 q = hn::NearestInt(hn::Min(high, hn::Max(low, hn::Mul(hn::LoadU(df, x + j), scale))));
    sum = hn::Add(sum, q);
    hn::StoreU(hn::DemoteTo(d8, q), d8, codes + j);
  }
  return hn::GetLane(hn::SumOfLanes(di, sum)) + quantize_tail<QuantizeRowsPolicy>(x, j, k, inv, codes, stride);
}

// See QuantizeRowsFn (chord/backends/shared/quantize_rows_driver-inl.hpp: the steps and their edges).
CHORD_HWY_ATTR std::size_t QuantizeRows(const float* x, std::size_t ldx, std::size_t m, std::size_t k,
                                        std::int8_t* codes, std::size_t stride, float* scales, std::int32_t* sums) {
  return quantize_rows_driver<QuantizeRowsPolicy>(x, ldx, m, k, codes, stride, scales, sums);
}

// See LayerNormFn: fp32, two passes (sum, then squared deviations from the mean), two accumulators.
CHORD_HWY_ATTR void LayerNorm(const float* x, std::size_t m, std::size_t d, const float* gamma, const float* beta,
                              float eps, float* y) {
  // The tail past the last whole vector goes one value at a time: a padded vector costs a stack round
  // trip (a stalled store-to-load forward) per pass, five per row, more than SASRec's rows of 50 spent
  // on their other values (measured with the xsimd kernel, which has the same shape).
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t whole = d / lanes * lanes;
  for (std::size_t i = 0; i < m; ++i) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    VF s0 = hn::Zero(df), s1 = hn::Zero(df);
    std::size_t j = 0;
    for (; j + 2 * lanes <= d; j += 2 * lanes) {
      s0 = hn::Add(s0, hn::LoadU(df, xr + j));
      s1 = hn::Add(s1, hn::LoadU(df, xr + j + lanes));
    }
    if (j < whole) s0 = hn::Add(s0, hn::LoadU(df, xr + j));
    float tail = 0.0f;
    for (j = whole; j < d; ++j) tail += xr[j];
    const float mean = (ReduceSum(hn::Add(s0, s1)) + tail) / static_cast<float>(d);

    const VF vmean = hn::Set(df, mean);
    VF q0 = hn::Zero(df), q1 = hn::Zero(df);
    for (j = 0; j + 2 * lanes <= d; j += 2 * lanes) {
      const VF e0 = hn::Sub(hn::LoadU(df, xr + j), vmean), e1 = hn::Sub(hn::LoadU(df, xr + j + lanes), vmean);
      q0 = hn::MulAdd(e0, e0, q0);
      q1 = hn::MulAdd(e1, e1, q1);
    }
    if (j < whole) {
      const VF e = hn::Sub(hn::LoadU(df, xr + j), vmean);
      q0 = hn::MulAdd(e, e, q0);
    }
    float tail_squares = 0.0f;
    for (j = whole; j < d; ++j) tail_squares += (xr[j] - mean) * (xr[j] - mean);
    const float var = (ReduceSum(hn::Add(q0, q1)) + tail_squares) / static_cast<float>(d);
    const float inv = 1.0f / std::sqrt(var + eps);
    const VF inv_std = hn::Set(df, inv);

    for (j = 0; j < whole; j += lanes) {
      const VF g = gamma ? hn::LoadU(df, gamma + j) : hn::Set(df, 1.0f);
      const VF b = beta ? hn::LoadU(df, beta + j) : hn::Zero(df);
      hn::StoreU(hn::Add(hn::Mul(hn::Mul(hn::Sub(hn::LoadU(df, xr + j), vmean), inv_std), g), b), df, yr + j);
    }
    for (; j < d; ++j)  // the same operations in the same order as a lane
      yr[j] = (xr[j] - mean) * inv * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
  }
}

// One softmax row (in place allowed): exp(x - max) with Highway's Exp, fp32 sum, one reciprocal.
// NaN as in the reference: the max ignores NaN (fmax); a row without a finite entry gives zeros, and
// otherwise a NaN anywhere makes the whole row NaN. Highway's Exp(NaN) is 0 and Max may keep or drop
// a NaN, so the first pass tracks NaNs itself.
CHORD_HWY_ATTR void SoftmaxRow(const float* x, std::size_t n, float* y) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  const VF minus_inf = hn::Set(df, kMinusInf);
  VF vmax = minus_inf;
  auto nan = hn::IsNaN(vmax);  // all false (Ne is an ordered compare on AVX-512: false for NaN)
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) {
    const VF v = hn::LoadU(df, x + j);
    const auto v_nan = hn::IsNaN(v);
    vmax = hn::Max(vmax, hn::IfThenElse(v_nan, minus_inf, v));
    nan = hn::Or(nan, v_nan);
  }
  if (j < n) {
    const VF v = LoadPartial(x + j, n - j, kMinusInf);
    const auto v_nan = hn::IsNaN(v);
    vmax = hn::Max(vmax, hn::IfThenElse(v_nan, minus_inf, v));
    nan = hn::Or(nan, v_nan);
  }
  const float max = hn::GetLane(hn::MaxOfLanes(df, vmax));
  if (max == kMinusInf || !hn::AllFalse(df, nan)) {  // no key at all (or n = 0): zeros, not 0 / 0
    const float fill = max == kMinusInf ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    for (j = 0; j < n; ++j) y[j] = fill;
    return;
  }
  const VF shift = hn::Set(df, max);
  VF sum = hn::Zero(df);
  j = 0;
  for (; j + lanes <= n; j += lanes) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + j), shift));
    sum = hn::Add(sum, e);
    hn::StoreU(e, df, y + j);
  }
  if (j < n) {
    const VF e = hn::Exp(df, hn::Sub(LoadPartial(x + j, n - j, kMinusInf), shift));  // padding: exp(-inf) = 0
    sum = hn::Add(sum, e);
    StorePartial(e, y + j, n - j);
  }
  const VF inv = hn::Set(df, 1.0f / ReduceSum(sum));
  j = 0;
  for (; j + lanes <= n; j += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, y + j), inv), df, y + j);
  if (j < n) StorePartial(hn::Mul(LoadPartial(y + j, n - j, 0.0f), inv), y + j, n - j);
}

// See SoftmaxFn.
CHORD_HWY_ATTR void Softmax(const float* x, std::size_t m, std::size_t n, bool causal, float* y) {
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t count = causal && i + 1 < n ? i + 1 : n;
    SoftmaxRow(x + i * n, count, y + i * n);
    for (std::size_t j = count; j < n; ++j) y[i * n + j] = 0.0f;
  }
}

// ReLU keeping NaN: a lane is zeroed only when x <= 0 (false for NaN).
HWY_INLINE CHORD_HWY_ATTR VF ReluVector(VF v) { return hn::IfThenZeroElse(hn::Le(v, hn::Zero(DF())), v); }

// GELU of one vector through the normal tail T(|x|) (backends/shared/gelu_polynomial.hpp).
HWY_INLINE CHORD_HWY_ATTR VF GeluVector(VF x) {
  namespace nt = chord::backends::gelu_polynomial;
  const DF df;
  const VF one = hn::Set(df, 1.0f), half = hn::Set(df, 0.5f);
  const VF a = hn::Min(hn::Abs(x), hn::Set(df, nt::kTailZero));  // clamped: a^2 stays finite
  const VF u = hn::Mul(a, a);
  VF p = hn::Set(df, nt::kP[0]);
  for (int i = 1; i < nt::kPCount; ++i) p = hn::MulAdd(p, u, hn::Set(df, nt::kP[i]));
  const VF small = hn::NegMulAdd(a, p, half);  // 1/2 - a p
  const VF t = hn::Div(one, hn::MulAdd(hn::Set(df, nt::kTScale), a, one));
  VF q = hn::Set(df, nt::kQ[0]);
  for (int i = 1; i < nt::kQCount; ++i) q = hn::MulAdd(q, t, hn::Set(df, nt::kQ[i]));
  const VF lo = hn::MulSub(a, a, u);  // a^2 = u + lo exactly
  const VF gauss = hn::Mul(hn::Exp(df, hn::Mul(hn::Set(df, -0.5f), u)), hn::NegMulAdd(half, lo, one));
  VF tail = hn::IfThenElse(hn::Lt(a, hn::Set(df, nt::kSmallLimit)), small, hn::Mul(gauss, hn::Mul(t, q)));
  tail = hn::IfThenZeroElse(hn::Ge(a, hn::Set(df, nt::kTailZero)), tail);
  return hn::IfThenElse(hn::Lt(x, hn::Zero(df)), hn::Mul(x, tail), hn::Mul(x, hn::Sub(one, tail)));
}

CHORD_HWY_ATTR void Relu(const float* x, std::size_t n, float* y) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) hn::StoreU(ReluVector(hn::LoadU(df, x + j)), df, y + j);
  if (j < n) StorePartial(ReluVector(LoadPartial(x + j, n - j, 0.0f)), y + j, n - j);
}

CHORD_HWY_ATTR void Gelu(const float* x, std::size_t n, float* y) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) hn::StoreU(GeluVector(hn::LoadU(df, x + j)), df, y + j);
  if (j < n) StorePartial(GeluVector(LoadPartial(x + j, n - j, 0.0f)), y + j, n - j);
}

CHORD_HWY_ATTR void ResidualAdd(const float* x, const float* r, std::size_t n, float* y) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) hn::StoreU(hn::Add(hn::LoadU(df, x + j), hn::LoadU(df, r + j)), df, y + j);
  for (; j < n; ++j) y[j] = x[j] + r[j];
}

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
