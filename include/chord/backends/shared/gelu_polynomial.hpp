// chord/backends/shared/gelu_polynomial.hpp: the GELU polynomials every backend's fp32 kernel evaluates.
//
// What include/chord/backends/shared/ holds: code only the backends include (this file, the attention
// and quantize_rows drivers), ISA-neutral and copied with include/; no op or model includes it.
//
// The reference GELU is exact: gelu(x) = x * Phi(x) = 0.5 * x * erfc(-x / sqrt 2), in double
// (ref/activation.hpp). The kernels work in fp32 with one polynomial scheme, the same in every backend
// (scalar, xsimd, Highway), through the upper normal tail
//   T(a) = Phi(-a) = 0.5 * erfc(a / sqrt 2),  a = |x|:   gelu(x) = x * T(a) (x < 0),  x * (1 - T(a)) (x >= 0)
// (gelu(x) - gelu(-x) = x). Working with T instead of 1 + erf(x / sqrt 2) keeps the negative tail
// accurate: gelu(-6) = -5.9e-9 comes out with a few ulp, where 1 + erf would cancel to 0.
//   a < 1:   T(a) = 1/2 - a * P(a^2),                     P: 6 coefficients (degree 5 in a^2)
//   a >= 1:  T(a) = exp(-a^2 / 2) * t * Q(t),  t = 1 / (1 + a/2) in (0, 2/3],  Q: 11 coefficients
// exp(-a^2/2) is evaluated from a^2 = hi + lo split exactly by one fused multiply-add
// (lo = fma(a, a, -hi)) as exp(-hi/2) * (1 - lo/2): rounding a^2 would otherwise cost a relative error of
// a^2 * eps (up to 90 ulp near a = 13) before the polynomial even starts.
// P and Q are Chebyshev least-squares fits (mpmath.chebyfit at 40 digits) of
//   P(u) = (1/2 - T(sqrt u)) / sqrt u  on u in [0, 1],   Q(t) = T(a) exp(a^2/2) / t  on t in [0, 2/3];
// their own relative error is below 1.6e-9 (P) and 8.9e-9 (Q), well under fp32's eps = 1.2e-7.
// Measured against the reference over every 7th fp32 value in [-20, 20] (x86-64 tables): at most
// 4.0 eps relative error wherever |gelu(x)| >= 1e-36 (xsimd avx512 3.8, avx2 4.0; Highway 3.8;
// scalar 3.3), 7.9 eps down to FLT_MIN, and 3.3e-39 absolute below it (xsimd's exp flushes results
// under FLT_MIN to 0). The tests bound every table, ARM ones included, by 16 eps relative plus 1e-37
// absolute (tests/test_kernels_ops.cpp).
// Beyond a = 15, T(a) < 4e-51 and x * T rounds to 0 in fp32: the tail is set to exactly 0 there, and a is
// clamped to 15 before squaring, so that a^2 and its error term stay finite for any input.
// Infinities: gelu(+inf) = +inf; gelu(-inf) = -inf * 0 = NaN, as the reference's 0.5 * x * erfc(inf).
//
// Only coefficients here (data, no code): each backend evaluates them with its own vectors, so that no
// function compiled with one ISA's flags is shared with another translation unit.
#pragma once

namespace chord::backends::gelu_polynomial {

inline constexpr float kSmallLimit = 1.0f;  // a < kSmallLimit: the P branch
inline constexpr float kTScale = 0.5f;      // t = 1 / (1 + kTScale * a)
inline constexpr float kTailZero = 15.0f;   // a >= kTailZero: T(a) = 0

// P(u), highest power first (Horner): T(a) = 1/2 - a * P(a^2).
inline constexpr int kPCount = 6;
inline constexpr float kP[kPCount] = {-7.6605381713820899e-6f, 0.00011350229619286141f, -0.0011863439888019887f,
                                      0.0099733284812561706f, -0.066490360567186901f, 0.39894228013084062f};

// Q(t), highest power first: T(a) = exp(-a^2/2) * t * Q(t).
inline constexpr int kQCount = 11;
inline constexpr float kQ[kQCount] = {-0.077039752104041238f, 0.43986070191274401f,  -0.95122399474625211f,
                                      0.9549006936833419f,    -0.35629607191625909f, -0.035794965536704582f,
                                      -0.073360314069505031f, 0.050786797171268494f, 0.1495641829065641f,
                                      0.19947179168576758f,   0.19947113840678646f};

}  // namespace chord::backends::gelu_polynomial
