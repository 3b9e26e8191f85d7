// Step 1: the naive int8 dot product (an int8 gemv with int32 accumulators).
//
// What it teaches: the arithmetic every later step keeps. A weight matrix W [n, k] is quantized per
// output channel to int8 codes q with one fp32 scale each (chord::quantize_channels), an activation
// vector x [k] to int8 codes a with one scale (chord::quantize_rows). Then
//     acc[c] = sum_j q[c][j] * a[j]                      (int32: exact, no rounding at all)
//     y[c]   = float(acc[c]) * a_scale * w_scale[c]      (one fp32 epilogue per output)
// Because the sum is integer, a kernel is either exactly right or wrong: every step checks its int32
// accumulators for equality against the reference (chord::ref, the library's oracle), not within a
// tolerance. This plain loop over row-major codes is the baseline the next steps are timed against
// (at -O3 the compiler vectorizes it with the baseline ISA's SIMD: a fair baseline, not a straw man).
//
// Run: example_01_naive_int8_dot   (CHORD_EXAMPLE_QUICK=1: a small shape, as ctest runs it)
// Exercises (check: the "check:" line; for timings, compare GMAC/s between runs):
//   1. Accumulate in std::int16_t instead of std::int32_t: the check fails. Compute the largest k for
//      which int16 would be safe with codes in [-128, 127] and activations in [-127, 127].
//   2. Build this step with -O1 (or put `#pragma GCC novector` before the inner loop): the GMAC/s falls
//      several-fold. That is the compiler's auto-vectorization, the baseline later steps must beat.
//   3. Do the epilogue in double: y no longer equals the reference bit for bit (the check fails) although
//      it is no less accurate. Why does the library fix the order float(acc) * a_scale * w_scale?
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/ref/gemm.hpp"

#include "example_util.hpp"

namespace {

using namespace chord::examples;

// The kernel of this step is chord::examples::naive_gemv_s8 (example_util.hpp, 12 lines: read it now).
// It lives in the shared header because steps 02 and 03 time themselves against it on the same data:
//   for each output channel c:  acc[c] = sum_j int32(q[c][j]) * int32(a[j])
// q: [n, k] int8 codes, row-major; a: [k] int8 codes; acc: [n] int32 (never overflows for k < 132104).

}  // namespace

int main() {
  print_guide("int8 codes x int8 activations summed exactly in int32, then one fp32 multiply per output",
              "the int8-vs-fp32 output error (~1e-2: quantization, not a bug), the GMAC/s every later step\n"
              "          is compared with, and 'check: ... ok ... ok'");
  const bool quick = quick_mode();
  const std::size_t n = quick ? 200 : 2048, k = quick ? 300 : 2048;  // channels x fan-in
  const int reps = quick ? 5 : 15;

  // A layer with channels of different magnitude, and one token's activations.
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> w(n * k), x(k);
  for (std::size_t c = 0; c < n; ++c)
    for (std::size_t j = 0; j < k; ++j) w[c * k + j] = 0.02f * (1.0f + float(c % 7)) * normal(rng);
  for (float& v : x) v = normal(rng);

  // Quantize: every channel at 8 bits (codes in [-128, 127]), activations per row in [-127, 127].
  const std::vector<std::uint8_t> bits(n, 8);
  const chord::QuantizedChannels q = chord::quantize_channels(w.data(), n, k, bits.data());
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), 1, k);

  // Run this step's kernel and its epilogue.
  std::vector<std::int32_t> acc(n);
  std::vector<float> y(n);
  naive_gemv_s8(q.codes.data(), a.row(0), n, k, acc.data());
  for (std::size_t c = 0; c < n; ++c) y[c] = float(acc[c]) * a.scales()[0] * q.scales[c];

  // Check against the reference: the same codes, as the library's MixedMatrix holds them.
  const chord::MixedMatrix layer(q);
  std::vector<std::int32_t> acc_ref(n);
  std::vector<float> y_ref(n);
  chord::ref::mixed_gemm_s8_acc(a, layer, acc_ref.data());
  chord::ref::mixed_gemv_s8(a, layer, nullptr, y_ref.data());
  const bool acc_ok = acc == acc_ref, y_ok = y == y_ref;

  // How good is int8? Compare with the fp32 layer (quantization error, not a kernel error).
  std::vector<float> y_fp32(n);
  chord::ref::gemm_f32(x.data(), k, w.data(), nullptr, y_fp32.data(), n, 1, n, k);
  double err = 0.0, norm = 0.0;
  for (std::size_t c = 0; c < n; ++c) {
    err += double(y[c] - y_fp32[c]) * (y[c] - y_fp32[c]);
    norm += double(y_fp32[c]) * y_fp32[c];
  }

  const double ms = median_ms(reps, [&] { naive_gemv_s8(q.codes.data(), a.row(0), n, k, acc.data()); });
  std::printf("Step 1: naive int8 gemv, W [%zu x %zu] int8 . a [%zu] int8 -> int32\n", n, k, k);
  std::printf("  int8 vs fp32 layer: relative output error %.4f (quantization, expected ~1e-2)\n",
              std::sqrt(err / norm));
  std::printf("  naive gemv           %9.3f ms   %6.2f GMAC/s   (median of %d)\n", ms, double(n * k) / ms * 1e-6, reps);
  std::printf("  speedup over previous step: baseline (1.00x)\n");
  std::printf("  check: int32 accumulators == ref::mixed_gemm_s8_acc: %s; y == ref::mixed_gemv_s8: %s\n",
              acc_ok ? "ok" : "FAIL", y_ok ? "ok" : "FAIL");
  return acc_ok && y_ok ? 0 : 1;
}
