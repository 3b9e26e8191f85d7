// chord/core/quantizer.hpp: per-output-channel symmetric quantization with a clip search.
//
// One channel (a row of a linear layer's weight, one convolution filter, one embedding row) of n
// weights w gets one fp32 scale s and signed codes q_j = clamp(round(w_j / s), code_min, code_max).
// Its dequantized ("fake-quantized") value is float(q_j) * s: the packed kernels and the training graph
// use this very function, so the integer weights and their fp32 image never disagree.
//
// Clip search (docs/design.md#precision): max-abs scaling (s = max|w| / code_max) wastes levels on outliers.
// We try scales s = alpha * max|w| / code_max for `steps` values of alpha evenly spaced in
// [min_ratio, 1], keep the one with the least squared error, then refine it with Lloyd steps
// (best scale for fixed codes, s = <w, q> / <q, q>; then re-round). alpha = 1 is always a candidate and
// every step keeps the best scale seen, so the result is never worse than max-abs scaling.
// Sums run in double so that huge weights (1e38) and denormals neither overflow nor vanish.
// The search is exact but fast (detail:: below): most candidates are ranked by a vectorized estimate
// with a proven error bound, and the exact sequential sum is taken only when two bounds overlap.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/precision.hpp"

namespace chord {

struct ClipSearch {
  int steps = 32;           // grid points for alpha in [min_ratio, 1]; 1 means max-abs scaling only
  double min_ratio = 0.25;  // smallest clip ratio tried
  int refinements = 2;      // Lloyd steps after the grid
};

namespace detail {

// --- what the quantizer computes (the definition) ------------------------------------------------
// For a scale s > 0 the codes are q_j = clamp(nearbyint(double(w_j) / s), lo, hi) and the error is
// the sequential double sum  err = ((0 + e_0^2) + e_1^2) + ...  of e_j = double(w_j) - q_j * s, where
// [lo, hi] is the code range minus the codes whose q * s would overflow fp32 (only matters near 3e38).
// Every choice the clip search makes compares such sums, so the fast paths below reproduce them bit
// for bit where they decide something (tests/quantizer_reference.hpp keeps the plain version and
// test_quantizer compares the two on many channels).
//
// Why not the plain loop: std::nearbyint / std::fmin / std::fmax are library calls on the baseline
// x86-64 ISA (no SSE4.1 roundsd), a division per weight costs more than the rest, and one sequential
// double sum is bound by the adder's latency and cannot be vectorized: 32 grid scales and the Lloyd
// steps cost ~0.26 us per weight that way (now ~0.035 us, bench/bench_adapt.cpp).
struct CodeRange {
  double lo, hi;
};
inline CodeRange code_range(int bits, double s) {
  const double limit = std::floor(static_cast<double>(std::numeric_limits<float>::max()) / s);
  const double lo = double(code_min(bits)), hi = double(code_max(bits));
  return {lo > -limit ? lo : -limit, hi < limit ? hi : limit};  // fmax / fmin: no NaN here (s > 0)
}

// The plain definition, for scales the fast path does not cover (s <= 0, denormal or astronomic:
// only a ClipSearch with min_ratio <= 0 or absurd values reaches it). Writes codes when not null.
inline double round_channel_plain(const float* w, std::size_t n, int bits, double s, std::int8_t* codes) {
  const double limit = std::floor(static_cast<double>(std::numeric_limits<float>::max()) / s);
  const double lo = std::fmax(code_min(bits), -limit), hi = std::fmin(code_max(bits), limit);
  double error = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double q = std::fmin(hi, std::fmax(lo, std::nearbyint(static_cast<double>(w[j]) / s)));
    const double e = static_cast<double>(w[j]) - q * s;
    error += e * e;
    if (codes != nullptr) codes[j] = static_cast<std::int8_t>(q);
  }
  return error;
}

// Scales whose reciprocal and products stay normal doubles: the fast path's domain.
inline bool fast_scale(double s) { return s >= 0x1p-1000 && s <= 0x1p+1000; }

// Round to nearest, ties to even, of |y| < 2^51: adding 1.5 * 2^52 leaves no fraction bits, and the
// default rounding mode (the one std::nearbyint uses) rounds the addition. No library call, vectorizes.
inline constexpr double kRoundMagic = 6755399441055744.0;
#ifdef __FAST_MATH__
inline double round_even(double y) { return std::nearbyint(y); }  // -ffast-math would fold the trick away
#else
inline double round_even(double y) { return (y + kRoundMagic) - kRoundMagic; }
#endif

// q = round(clamp(y)) equals clamp(round(y)): the bounds are integers. y = w * (1 / s) is within
// 4 ulp of the correctly rounded w / s, so its rounding is the same unless y is within that of a
// half-integer; |y - q| >= kNearHalf flags those (a margin far above 4 ulp of 128, far below 0.5).
inline constexpr double kNearHalf = 0.5 - 0x1p-30;
inline double clamp(double y, CodeRange r) {
  y = y < r.lo ? r.lo : y;
  return y > r.hi ? r.hi : y;
}
// The exact code of x at scale s: the correctly rounded quotient, for the flagged weights.
inline double exact_code(double x, double s, CodeRange r) { return round_even(clamp(x / s, r)); }

// The definition's error (sequential sum), bit for bit, and its codes when `codes` is not null.
inline double round_channel(const float* w, std::size_t n, int bits, double s, std::int8_t* codes) {
  if (!fast_scale(s)) return round_channel_plain(w, n, bits, s, codes);
  const CodeRange range = code_range(bits, s);
  const double inverse = 1.0 / s;
  double error = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double x = static_cast<double>(w[j]), y = clamp(x * inverse, range);
    double q = round_even(y);
    if (std::fabs(y - q) >= kNearHalf) q = exact_code(x, s, range);  // rare: well predicted
    const double e = x - q * s;
    error += e * e;
    if (codes != nullptr) codes[j] = static_cast<std::int8_t>(q);
  }
  return error;
}

// The codes alone (no sum): a map loop that vectorizes. Returns false, with codes unfinished, when a
// weight sits near a rounding tie: the caller then takes round_channel.
inline bool channel_codes_fast(const float* w, std::size_t n, int bits, double s, std::int8_t* codes) {
  if (!fast_scale(s)) return false;
  const CodeRange range = code_range(bits, s);
  const double inverse = 1.0 / s;
  int ties = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double y = clamp(static_cast<double>(w[j]) * inverse, range), q = round_even(y);
    ties |= std::fabs(y - q) >= kNearHalf ? 1 : 0;
    codes[j] = static_cast<std::int8_t>(static_cast<int>(q));
  }
  return ties == 0;
}
inline void channel_codes(const float* w, std::size_t n, int bits, double s, std::int8_t* codes) {
  if (!channel_codes_fast(w, n, bits, s, codes)) round_channel(w, n, bits, s, codes);
}

// The same squared error summed in kLanes interleaved partial sums, with the reciprocal's codes (no
// tie check): the order and a code at a tie may differ from round_channel's, so the value may differ
// in the last bits (ScoredScale bounds by how much). Written as a map into a small buffer plus a sum
// so that GCC vectorizes both without -ffast-math.
inline constexpr std::size_t kLanes = 8, kChunk = 128;
inline double round_channel_fast(const float* w, std::size_t n, double s, CodeRange range) {
  const double inverse = 1.0 / s;
  double terms[kChunk], sums[kLanes] = {};
  for (std::size_t c = 0; c < n; c += kChunk) {
    const std::size_t m = n - c < kChunk ? n - c : kChunk;
    for (std::size_t j = 0; j < m; ++j) {
      const double x = static_cast<double>(w[c + j]), q = round_even(clamp(x * inverse, range));
      const double e = x - q * s;
      terms[j] = e * e;
    }
    std::size_t j = 0;
    for (; j + kLanes <= m; j += kLanes)
      for (std::size_t l = 0; l < kLanes; ++l) sums[l] += terms[j + l];
    for (std::size_t l = 0; j + l < m; ++l) sums[l] += terms[j + l];
  }
  double error = 0.0;
  for (double sum : sums) error += sum;
  return error;
}

// A candidate scale with its error known exactly (slack 0) or to within `slack` of the exact sum.
// Rounding analysis (u = 2^-53): each term e^2 is within 25 u (w^2 + e^2) of its real value however it
// is computed (with or without fused multiply-adds), and any summation order adds at most (n - 1) u of
// the total, so the exact and the interleaved sums are each within 1.1 u (n + 30) (W2 + E) of the real
// E (W2 = sum of w^2). A reciprocal code differs from the exact one only for y within 4 u |y| of a
// half-integer inside the code range (|y| <= 129), where both codes leave |e| within 2^-42 s of s / 2:
// the term moves by at most 2^-40 s^2. The slack takes all that with margin:
// 4 u (n + 32) (W2 + 2 E~) + n 2^-38 s^2.
struct ScoredScale {
  double scale = 0.0, error = 0.0, slack = 0.0;
};

class ClipScorer {
 public:
  ClipScorer(const float* w, std::size_t n, int bits) : w_(w), n_(n), bits_(bits) {
    double sums[kLanes] = {};
    std::size_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
      for (std::size_t l = 0; l < kLanes; ++l) sums[l] += double(w[j + l]) * double(w[j + l]);
    for (std::size_t l = 0; j + l < n; ++l) sums[l] += double(w[j + l]) * double(w[j + l]);
    for (double s : sums) energy_ += s;
  }

  ScoredScale score(double s) const {
    if (fast_scale(s)) {
      const double error = round_channel_fast(w_, n_, s, code_range(bits_, s));
      const double slack = 0x1p-51 * (double(n_) + 32.0) * (energy_ + 2.0 * error) + double(n_) * 0x1p-38 * s * s;
      if (error < std::numeric_limits<double>::infinity()) return {s, error, slack};
    }
    return {s, round_channel(w_, n_, bits_, s, nullptr), 0.0};
  }

  // Whether a's exact error is below b's (the definition's `error < best_error`), computing the exact
  // sums only when the bounds overlap. Either may become exact.
  bool less(ScoredScale& a, ScoredScale& b) const {
    if (a.scale == b.scale) return false;  // one scale, one error (a converged Lloyd step gives this)
    if (a.error + a.slack < b.error - b.slack) return true;
    if (a.error - a.slack >= b.error + b.slack) return false;
    make_exact(a), make_exact(b);
    return a.error < b.error;
  }

 private:
  void make_exact(ScoredScale& c) const {
    if (c.slack == 0.0) return;
    c.error = round_channel(w_, n_, bits_, c.scale, nullptr), c.slack = 0.0;
  }
  const float* w_;
  std::size_t n_;
  int bits_;
  double energy_ = 0.0;
};

}  // namespace detail

// Quantizes one channel of n weights to `bits` (0, 2, 4 or 8). Writes n codes; returns the scale.
// bits = 0, an all-zero channel, or a scale that underflows fp32 give codes 0 and scale 0.
// Throws chord::Error on a non-finite weight (a NaN in a model is a bug upstream, not data).
inline float quantize_channel(const float* w, std::size_t n, int bits, std::int8_t* codes,
                              const ClipSearch& search = {}) {
  check_weight_bits(bits, "quantize_channel");
  // max |w| and the finiteness check in one vectorizable pass (NaN fails `<=`); the message names the
  // first bad weight.
  float max_abs_float = 0.0f;
  bool finite = true;
  for (std::size_t j = 0; j < n; ++j) {
    const float a = std::fabs(w[j]);
    finite &= a <= std::numeric_limits<float>::max();
    max_abs_float = a > max_abs_float ? a : max_abs_float;
  }
  if (!finite)
    for (std::size_t j = 0; j < n; ++j)
      CHORD_CHECK(std::isfinite(w[j]), "quantize_channel: weight ", j, " is not finite (", w[j], ")");
  const double max_abs = static_cast<double>(max_abs_float);
  const auto zero = [&] {
    for (std::size_t j = 0; j < n; ++j) codes[j] = 0;
    return 0.0f;
  };
  if (bits == 0 || max_abs == 0.0) return zero();

  const detail::ClipScorer scorer(w, n, bits);
  const double max_abs_scale = max_abs / code_max(bits);
  detail::ScoredScale best = scorer.score(max_abs_scale);
  const int steps = search.steps < 1 ? 1 : search.steps;
  for (int i = 1; i < steps; ++i) {  // i = 0 is alpha = 1, done above
    const double alpha = 1.0 - (1.0 - search.min_ratio) * i / (steps - 1);
    detail::ScoredScale candidate = scorer.score(alpha * max_abs_scale);
    if (scorer.less(candidate, best)) best = candidate;
  }
  std::vector<std::int8_t> trial(n);
  for (int r = 0; r < search.refinements; ++r) {
    detail::channel_codes(w, n, bits, best.scale, trial.data());
    // wq in the definition's order (its value picks the scale); qq is a sum of integers below 2^53,
    // exact in any order.
    double wq = 0.0;
    std::int64_t qq_integer = 0;
    for (std::size_t j = 0; j < n; ++j) wq += static_cast<double>(w[j]) * trial[j];
    for (std::size_t j = 0; j < n; ++j) qq_integer += std::int32_t(trial[j]) * trial[j];
    const double qq = static_cast<double>(qq_integer);
    if (qq == 0.0 || wq <= 0.0) break;
    detail::ScoredScale candidate = scorer.score(wq / qq);
    if (!scorer.less(candidate, best)) break;
    best = candidate;
  }

  // The codes must be the rounding for the fp32 scale actually stored, not the double one.
  const float scale = static_cast<float>(best.scale);
  if (!(scale > 0.0f) || !std::isfinite(scale)) return zero();
  detail::channel_codes(w, n, bits, static_cast<double>(scale), codes);
  return scale;
}

// The dequantized value of a code: what every kernel multiplies by.
inline float dequantize(std::int8_t code, float scale) { return static_cast<float>(code) * scale; }

// A matrix of n channels x k weights quantized channel by channel, each to its own width.
struct QuantizedChannels {
  std::size_t n = 0, k = 0;
  std::vector<std::int8_t> codes;  // [n, k] row-major
  std::vector<float> scales;       // [n]
  std::vector<std::uint8_t> bits;  // [n], each in {0, 2, 4, 8}
};

// w: [n, k] row-major fp32; bits: [n]. Each row gets its own clip search.
inline QuantizedChannels quantize_channels(const float* w, std::size_t n, std::size_t k,
                                           const std::uint8_t* bits, const ClipSearch& search = {}) {
  QuantizedChannels q;
  q.n = n, q.k = k;
  q.codes.resize(n * k);
  q.scales.resize(n);
  q.bits.assign(bits, bits + n);
  for (std::size_t i = 0; i < n; ++i) {
    CHORD_CHECK(is_weight_bits(bits[i]), "quantize_channels: channel ", i, " has bit-width ", int(bits[i]),
                ", expected 0, 2, 4 or 8");
    q.scales[i] = quantize_channel(w + i * k, k, bits[i], q.codes.data() + i * k, search);
  }
  return q;
}

// The fake-quantized fp32 image of quantized channels: [n, k], out[i][j] = codes[i][j] * scales[i].
inline std::vector<float> fake_quantized(const QuantizedChannels& q) {
  std::vector<float> out(q.n * q.k);
  for (std::size_t i = 0; i < q.n; ++i)
    for (std::size_t j = 0; j < q.k; ++j) out[i * q.k + j] = dequantize(q.codes[i * q.k + j], q.scales[i]);
  return out;
}

}  // namespace chord
