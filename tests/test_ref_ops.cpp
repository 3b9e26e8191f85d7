// Reference ops (the oracle of every SIMD kernel): each checked against an independent formulation
// written differently here (double precision, explicit per-head loops, direct convolution loops) or
// against properties that must hold (softmax rows sum to 1, causal weights are 0, GELU's identity
// gelu(x) - gelu(-x) = x). fp32 tolerances follow from the operands' magnitudes (gamma_n bounds of
// floating-point summation), never from a magic epsilon.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ref/activation.hpp"
#include "chord/ref/attention.hpp"
#include "chord/ref/conv.hpp"
#include "chord/ref/embedding.hpp"
#include "chord/ref/linear.hpp"
#include "chord/ref/norm.hpp"
#include "test_helpers.hpp"

using namespace chord;
using Catch::Matchers::Contains;

namespace {

// gamma_n = n eps / (1 - n eps): the relative error bound of an n-term fp32 sum (Higham).
double gamma(std::size_t n) {
  const double ne = double(n) * double(FLT_EPSILON);
  return ne / (1.0 - ne);
}

// Bound on |fl(x . w + b) - (x . w + b)| for a k-term fp32 dot product, twice (both sides of a
// comparison may round), with the bias counted as one more term.
double dot_tolerance(const float* x, std::size_t x_step, const float* w, std::size_t k, float bias) {
  double abs_dot = std::fabs(double(bias));
  for (std::size_t j = 0; j < k; ++j) abs_dot += std::fabs(double(x[j * x_step]) * w[j]);
  return 2.0 * gamma(k + 2) * abs_dot + 1e-30;
}

// A dense layer with weights ~ N(0, 1/in), so that outputs have the inputs' scale.
LinearLayer random_dense(std::size_t out, std::size_t in, std::uint32_t seed, bool with_bias = true) {
  auto w = test::random_normal(out * in, seed, in ? 1.0f / std::sqrt(float(in)) : 1.0f);
  auto b = with_bias ? test::random_normal(out, seed + 1, 0.1f) : std::vector<float>{};
  return LinearLayer::dense(out, in, std::move(w), std::move(b));
}

// The fp32 weights a layer effectively multiplies by: [out, in] (dequantized for a mixed layer).
std::vector<float> effective_weights(const LinearLayer& layer) {
  if (layer.mode == LinearMode::dense_f32) return layer.weight;
  std::vector<float> w(layer.out * layer.in);
  for (std::size_t c = 0; c < layer.out; ++c)
    for (std::size_t j = 0; j < layer.in; ++j)
      w[c * layer.in + j] = dequantize(std::int8_t(layer.mixed.code(c, j)), layer.mixed.scale(c));
  return w;
}

float bias_of(const LinearLayer& layer, std::size_t c) { return layer.bias.empty() ? 0.0f : layer.bias[c]; }

// The rows a layer effectively sees: x itself, or its int8 image code * scale in the W-A8 mode.
std::vector<double> effective_input(const LinearLayer& layer, const std::vector<float>& x, std::size_t m) {
  const std::size_t k = layer.in;
  std::vector<double> out(x.begin(), x.begin() + m * k);
  if (layer.mode != LinearMode::mixed_s8) return out;
  const QuantizedRows a = quantize_rows(x.data(), m, k);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) out[i * k + j] = double(a.row(i)[j]) * a.scales()[i];
  return out;
}

// Exact (double) projection y = x W^T + b with the layer's effective weights and inputs: [m, out].
std::vector<double> project(const LinearLayer& layer, const std::vector<float>& x, std::size_t m) {
  const std::vector<double> xe = effective_input(layer, x, m);
  const std::vector<float> w = effective_weights(layer);
  std::vector<double> y(m * layer.out);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t c = 0; c < layer.out; ++c) {
      double s = bias_of(layer, c);
      for (std::size_t j = 0; j < layer.in; ++j) s += xe[i * layer.in + j] * w[c * layer.in + j];
      y[i * layer.out + c] = s;
    }
  return y;
}

// Two fp32 results of one formula that may differ by the final rounding only: the same op reached
// through two call sites can be compiled with or without fused multiply-adds (GCC contracts a * b + c
// by default where the ISA has FMA, e.g. on aarch64), so bit equality is not promised across them.
void require_within_rounding(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(std::fabs(a[i] - b[i]) <= FLT_EPSILON * std::fabs(b[i]));
}

// The full attention layer compiled once: calls with the same inputs for a row then run the very same
// instructions, so properties like "later inputs change nothing before them" can be checked bit for
// bit whatever the compiler's FMA contraction.
#if defined(__GNUC__)
__attribute__((noinline))
#endif
void run_attention(const AttentionLayer& layer, const float* x_q, const float* x_kv, std::size_t length,
                   const ref::KeyPadding& padding, float* y) {
  ref::causal_attention(layer, x_q, x_kv, length, padding, y);
}

bool test_is_key(std::size_t s, std::size_t left, const std::vector<std::uint8_t>& mask) {
  if (s < left) return false;
  return mask.empty() || mask[s] != 0;
}

// The three padding shapes every attention test runs with.
struct PaddingCase {
  std::string name;
  std::size_t left;
  std::vector<std::uint8_t> mask;
  ref::KeyPadding view() const { return ref::KeyPadding{left, mask.empty() ? nullptr : mask.data()}; }
};
std::vector<PaddingCase> padding_cases(std::size_t length, std::uint32_t seed) {
  std::vector<PaddingCase> cases;
  cases.push_back({"none", 0, {}});
  cases.push_back({"left " + std::to_string(length / 2), length / 2, {}});
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> mask(length);
  for (auto& v : mask) v = std::uint8_t(rng() % 3 != 0);  // about a third padded, anywhere
  mask[0] = 0;                                            // so row 0 has no key at all
  cases.push_back({"mask", 0, mask});
  return cases;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// layernorm, softmax, activations, residual

TEST_CASE("layernorm: zero mean, variance var/(var+eps), affine part, constant rows", "[ref][norm]") {
  for (std::size_t d : test::kAwkwardSizes)
    for (float spread : {3.0f, 1e-3f}) {
      const std::size_t m = 4;
      const float eps = 1e-5f;
      auto x = test::random_normal(m * d, std::uint32_t(d * 10 + (spread > 1)), spread);
      for (float& v : x) v += 5.0f;  // an offset larger than the spread: cancellation if done naively
      std::vector<float> z(m * d), y(m * d);
      ref::layernorm(x.data(), m, d, nullptr, nullptr, eps, z.data());
      const auto gamma_v = test::random_normal(d, 5), beta_v = test::random_normal(d, 6);
      ref::layernorm(x.data(), m, d, gamma_v.data(), beta_v.data(), eps, y.data());
      for (std::size_t i = 0; i < m; ++i) {
        INFO("d " << d << " spread " << spread << " row " << i);
        double mean_x = 0.0, var_x = 0.0, mean_z = 0.0, sq_z = 0.0, max_z = 0.0;
        for (std::size_t j = 0; j < d; ++j) mean_x += x[i * d + j];
        mean_x /= double(d);
        for (std::size_t j = 0; j < d; ++j) var_x += (x[i * d + j] - mean_x) * (x[i * d + j] - mean_x);
        var_x /= double(d);
        for (std::size_t j = 0; j < d; ++j) {
          const double v = z[i * d + j];
          mean_z += v, sq_z += v * v, max_z = std::max(max_z, std::fabs(v));
        }
        mean_z /= double(d), sq_z /= double(d);
        // Each output is rounded to fp32 once (relative eps/2), so the mean moves by at most
        // eps/2 * max|z| and the second moment by about eps * E[z^2].
        REQUIRE(std::fabs(mean_z) <= FLT_EPSILON * max_z + 1e-30);
        const double expected_var = var_x / (var_x + eps);  // biased variance, eps inside the sqrt
        REQUIRE(std::fabs((sq_z - mean_z * mean_z) - expected_var) <=
                4 * FLT_EPSILON * (expected_var + max_z * max_z / d));
        for (std::size_t j = 0; j < d; ++j) {
          const double affine = double(gamma_v[j]) * z[i * d + j] + beta_v[j];
          REQUIRE(std::fabs(y[i * d + j] - affine) <=
                  2 * FLT_EPSILON * (std::fabs(gamma_v[j] * z[i * d + j]) + std::fabs(beta_v[j])) + 1e-30);
        }
      }
    }
  // A constant row has no spread: it normalizes to 0 (then beta), not NaN.
  const std::vector<float> constant(7, 2.5f), beta_v(7, 0.25f);
  std::vector<float> y(7);
  ref::layernorm(constant.data(), 1, 7, nullptr, beta_v.data(), 1e-5f, y.data());
  for (float v : y) REQUIRE(v == 0.25f);
  // In place gives the same result.
  auto x = test::random_normal(3 * 9, 77);
  std::vector<float> out(x.size());
  ref::layernorm(x.data(), 3, 9, nullptr, nullptr, 1e-5f, out.data());
  ref::layernorm(x.data(), 3, 9, nullptr, nullptr, 1e-5f, x.data());
  require_within_rounding(x, out);
}

TEST_CASE("layernorm: bad shapes and eps throw", "[ref][norm][errors]") {
  std::vector<float> x(4), y(4);
  REQUIRE_THROWS_WITH(ref::layernorm(x.data(), 1, 0, nullptr, nullptr, 1e-5f, y.data()), Contains("d = 0"));
  REQUIRE_THROWS_WITH(ref::layernorm(x.data(), 1, 4, nullptr, nullptr, 0.0f, y.data()), Contains("eps"));
  REQUIRE_THROWS_AS(ref::layernorm(x.data(), 1, 4, nullptr, nullptr, -1.0f, y.data()), Error);
}

TEST_CASE("softmax: rows sum to 1, match exp/sum, shift invariant, masked entries", "[ref][softmax]") {
  for (std::size_t n : test::kAwkwardSizes) {
    const std::size_t m = 3;
    const auto x = test::random_normal(m * n, std::uint32_t(n), 3.0f);
    std::vector<float> y(m * n);
    ref::softmax(x.data(), m, n, y.data());
    for (std::size_t i = 0; i < m; ++i) {
      INFO("n " << n << " row " << i);
      double sum = 0.0, direct_sum = 0.0;
      for (std::size_t j = 0; j < n; ++j) direct_sum += std::exp(double(x[i * n + j]));
      for (std::size_t j = 0; j < n; ++j) {
        const float p = y[i * n + j];
        REQUIRE(p >= 0.0f);
        REQUIRE(p <= 1.0f);
        // Without the max subtraction (safe at these magnitudes, |x| < ~15), in double: only the
        // final fp32 rounding of each output separates the two.
        const double direct = std::exp(double(x[i * n + j])) / direct_sum;
        REQUIRE(std::fabs(p - direct) <= FLT_EPSILON * direct + 1e-45);
        sum += p;
      }
      REQUIRE(std::fabs(sum - 1.0) <= n * FLT_EPSILON);
    }
    // Logits near 1000 would overflow exp in fp32 and double alike without the max subtraction.
    // Shifting the fp32 logits rounds each by at most half an ulp of its new magnitude (delta), which
    // scales each weight by a factor within [exp(-2 delta), exp(2 delta)].
    std::vector<float> shifted(n), ys(n);
    double delta = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
      shifted[j] = x[j] + 1000.0f;
      delta = std::max(delta, std::fabs((double(shifted[j]) - 1000.0) - x[j]));
    }
    ref::softmax_row(shifted.data(), n, ys.data());
    for (std::size_t j = 0; j < n; ++j) {
      REQUIRE(std::isfinite(ys[j]));
      REQUIRE(std::fabs(ys[j] - y[j]) <= std::expm1(2 * delta) * y[j] + 2 * FLT_EPSILON * y[j] + 1e-45);
    }
  }
  // -inf is "masked": weight exactly 0, the others renormalize among themselves.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.0f, -inf, 2.0f, -inf}, y(4);
  ref::softmax_row(x.data(), 4, y.data());
  REQUIRE(y[1] == 0.0f);
  REQUIRE(y[3] == 0.0f);
  REQUIRE(y[0] == Approx(1.0 / (1.0 + std::exp(1.0))).epsilon(FLT_EPSILON));
  // A fully masked row (a query with no key) is all zeros, not NaN; so is an empty row.
  std::vector<float> all_masked = {-inf, -inf, -inf};
  ref::softmax_row(all_masked.data(), 3, all_masked.data());
  for (float v : all_masked) REQUIRE(v == 0.0f);
  ref::softmax_row(nullptr, 0, nullptr);
  // In place gives the same result as out of place.
  auto z = test::random_normal(17, 4);
  std::vector<float> out(17);
  ref::softmax_row(z.data(), 17, out.data());
  ref::softmax_row(z.data(), 17, z.data());
  require_within_rounding(z, out);
}

TEST_CASE("ReLU and residual add", "[ref][activation]") {
  const auto x = test::random_normal(65, 1), r = test::random_normal(65, 2);
  std::vector<float> y(65), s(65);
  ref::relu(x.data(), 65, y.data());
  ref::residual_add(x.data(), r.data(), 65, s.data());
  for (std::size_t j = 0; j < 65; ++j) {
    REQUIRE(y[j] == (x[j] < 0.0f ? 0.0f : x[j]));
    REQUIRE(s[j] == x[j] + r[j]);
  }
  REQUIRE(std::isnan(ref::relu(std::numeric_limits<float>::quiet_NaN())));  // not hidden as 0
  auto inplace = x;
  ref::residual_add(inplace.data(), r.data(), 65, inplace.data());
  REQUIRE(inplace == s);
}

TEST_CASE("GELU: the erf form, its identity gelu(x) - gelu(-x) = x, shape of the curve", "[ref][activation]") {
  // Reference values from the textbook formula 0.5 x (1 + erf(x / sqrt 2)) in double. The double
  // formula itself loses |x| * DBL_EPSILON to the cancellation in 1 + erf for negative x; the fp32
  // result is within half an ulp of the exact value.
  for (double x : {-4.0, -3.0, -2.0, -1.0, -0.75, -0.5, -0.1, 0.0, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 10.0}) {
    const double expected = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    const float g = ref::gelu(float(x));
    INFO("x " << x << " gelu " << g << " expected " << expected);
    REQUIRE(std::fabs(g - expected) <= FLT_EPSILON * std::fabs(expected) + 4 * DBL_EPSILON * std::fabs(x) + 1e-45);
  }
  // x Phi(x) - (-x) Phi(-x) = x (Phi(x) + Phi(-x)) = x, since Phi(-x) = 1 - Phi(x).
  for (float x : test::random_normal(200, 9, 3.0f)) {
    const float a = ref::gelu(x), b = ref::gelu(-x);
    REQUIRE(std::fabs(double(a) - b - x) <= FLT_EPSILON * (std::fabs(a) + std::fabs(b) + std::fabs(x)));
  }
  // GELU is not monotonic: it decreases to its minimum near x = -0.7518, then increases.
  float previous = ref::gelu(-6.0f);
  for (float x = -5.99f; x <= -0.76f; x += 0.01f) {
    const float g = ref::gelu(x);
    REQUIRE(g <= previous);
    previous = g;
  }
  previous = ref::gelu(-0.75f);
  for (float x = -0.74f; x <= 8.0f; x += 0.01f) {
    const float g = ref::gelu(x);
    REQUIRE(g >= previous);
    previous = g;
  }
  // The negative tail is small but not zero (what the erfc evaluation keeps), and never positive.
  for (float x = -9.0f; x < 0.0f; x += 0.25f) REQUIRE(ref::gelu(x) < 0.0f);
  std::vector<float> xs = {-1.0f, 0.0f, 2.0f}, ys(3);
  ref::gelu(xs.data(), 3, ys.data());
  for (int j = 0; j < 3; ++j) REQUIRE(ys[j] == ref::gelu(xs[j]));
}

// ------------------------------------------------------------------------------------------------
// embedding

TEST_CASE("embedding gather: rows by id, dense and quantized tables", "[ref][embedding]") {
  const std::size_t rows = 33, d = 17;
  const auto table = test::random_normal(rows * d, 3);
  const std::vector<std::int64_t> ids = {0, 32, 5, 5, 17};
  std::vector<float> out(ids.size() * d);
  ref::embedding_gather(table.data(), rows, d, ids.data(), ids.size(), out.data());
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::size_t j = 0; j < d; ++j) REQUIRE(out[i * d + j] == table[std::size_t(ids[i]) * d + j]);

  // The same ids as unsigned 16-bit integers gather the same rows.
  const std::vector<std::uint16_t> small_ids(ids.begin(), ids.end());
  std::vector<float> out16(out.size());
  ref::embedding_gather(table.data(), rows, d, small_ids.data(), small_ids.size(), out16.data());
  REQUIRE(out16 == out);

  // Quantized table: each row a channel; rows read back as code * scale (pruned rows as zeros).
  const auto bits = test::random_bits(rows, 8);
  const QuantizedChannels q = quantize_channels(table.data(), rows, d, bits.data());
  const MixedMatrix mixed(q);
  const auto fake = fake_quantized(q);
  std::vector<float> outq(out.size());
  ref::embedding_gather(mixed, ids.data(), ids.size(), outq.data());
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::size_t j = 0; j < d; ++j) REQUIRE(outq[i * d + j] == fake[std::size_t(ids[i]) * d + j]);
}

TEST_CASE("embedding gather: an out-of-range id throws, naming position and id", "[ref][embedding][errors]") {
  const std::size_t rows = 10, d = 3;
  const auto table = test::random_normal(rows * d, 3);
  std::vector<float> out(4 * d, 42.0f);
  const std::vector<std::int32_t> too_big = {1, 2, 10, 3};
  REQUIRE_THROWS_WITH(ref::embedding_gather(table.data(), rows, d, too_big.data(), too_big.size(), out.data()),
                      Contains("id 10 at position 2") && Contains("10 rows"));
  for (float v : out) REQUIRE(v == 42.0f);  // validated before anything is written
  const std::vector<std::int32_t> negative = {0, -1};
  REQUIRE_THROWS_WITH(ref::embedding_gather(table.data(), rows, d, negative.data(), negative.size(), out.data()),
                      Contains("id -1 at position 1"));
  const std::vector<std::uint8_t> byte_ids = {200};
  REQUIRE_THROWS_WITH(ref::embedding_gather(table.data(), rows, d, byte_ids.data(), 1, out.data()),
                      Contains("id 200 at position 0"));
  const std::vector<std::uint8_t> bits(rows, 8);
  const MixedMatrix mixed(table.data(), rows, d, bits.data());
  REQUIRE_THROWS_WITH(ref::embedding_gather(mixed, too_big.data(), too_big.size(), out.data()),
                      Contains("quantized table") && Contains("position 2"));
}

// ------------------------------------------------------------------------------------------------
// linear layer

TEST_CASE("Linear: the three modes compute x W^T + b with their weights and inputs", "[ref][linear]") {
  for (std::size_t m : {1, 3, 8})
    for (std::size_t out : {1, 5, 16, 17})
      for (std::size_t in : {1, 7, 33}) {
        INFO("m " << m << " out " << out << " in " << in);
        const LinearLayer dense = random_dense(out, in, std::uint32_t(m * 100 + out * 10 + in));
        const auto bits = test::random_bits(out, std::uint32_t(out + in));
        const auto x = test::random_normal(m * in, std::uint32_t(m + in));
        for (auto mode : {LinearMode::dense_f32, LinearMode::mixed_f32, LinearMode::mixed_s8}) {
          INFO(chord::to_string(mode));
          const LinearLayer layer =
              mode == LinearMode::dense_f32 ? dense : quantize_linear(dense, bits.data(), mode);
          const std::vector<float> y = ref::linear_forward(layer, x.data(), m);
          const std::vector<double> exact = project(layer, x, m);
          const std::vector<double> xe = effective_input(layer, x, m);
          const std::vector<float> w = effective_weights(layer);
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t c = 0; c < out; ++c) {
              // The W-A8 epilogue multiplies by two scales after the exact integer sum: 2 more roundings.
              std::vector<float> xf(xe.begin() + i * in, xe.begin() + (i + 1) * in);
              const double tol = dot_tolerance(xf.data(), 1, &w[c * in], in, bias_of(layer, c)) * 2;
              REQUIRE(std::fabs(y[i * out + c] - exact[i * out + c]) <= tol);
            }
        }
      }
}

TEST_CASE("Linear: overlapping input rows (row stride < fan-in) are allowed", "[ref][linear]") {
  // Caser's windows: rows of 3*4 floats every 4 floats of one [5, 4] matrix.
  const auto e = test::random_normal(5 * 4, 1);
  const LinearLayer layer = random_dense(2, 12, 7);
  std::vector<float> y(3 * 2), copied(3 * 12), expected;
  ref::linear_forward(layer, e.data(), 4, y.data(), 2, 3);
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t j = 0; j < 12; ++j) copied[t * 12 + j] = e[t * 4 + j];
  expected = ref::linear_forward(layer, copied.data(), 3);
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t c = 0; c < 2; ++c)
      REQUIRE(std::fabs(y[t * 2 + c] - expected[t * 2 + c]) <=
              dot_tolerance(&copied[t * 12], 1, &layer.weight[c * 12], 12, layer.bias[c]));
}

TEST_CASE("Linear: shape mismatches throw", "[ref][linear][errors]") {
  REQUIRE_THROWS_WITH(LinearLayer::dense(3, 4, std::vector<float>(11)), Contains("11 values, expected 3 x 4"));
  REQUIRE_THROWS_WITH(LinearLayer::dense(3, 4, std::vector<float>(12), std::vector<float>(4)),
                      Contains("bias has 4 values"));
  const std::vector<std::uint8_t> bits(3, 8);
  const auto w = test::random_normal(12, 1);
  REQUIRE_THROWS_WITH(LinearLayer::quantized(MixedMatrix(w.data(), 3, 4, bits.data()), std::vector<float>(2)),
                      Contains("bias has 2 values"));
  REQUIRE_THROWS_AS(
      LinearLayer::quantized(MixedMatrix(w.data(), 3, 4, bits.data()), {}, LinearMode::dense_f32), Error);
  LinearLayer broken = random_dense(3, 4, 2);
  broken.weight.pop_back();  // a layer edited after construction is checked again when used
  std::vector<float> x(4), y(3);
  REQUIRE_THROWS_WITH(ref::linear_forward(broken, x.data(), 4, y.data(), 3, 1), Contains("linear_forward"));
  REQUIRE_THROWS_WITH(ref::linear_forward(random_dense(3, 4, 2), x.data(), 4, y.data(), 2, 1),
                      Contains("output row stride"));
}

// ------------------------------------------------------------------------------------------------
// attention

TEST_CASE("attention_core equals an explicit per-head loop in double", "[ref][attention]") {
  const std::size_t shapes[][2] = {{1, 1}, {4, 2}, {6, 3}, {16, 1}, {16, 4}, {12, 12}, {33, 3}};
  for (std::size_t length : {1, 2, 3, 7, 16, 17, 33})
    for (const auto& shape : shapes) {
      const std::size_t d = shape[0], heads = shape[1], dh = d / heads;
      const std::uint32_t seed = std::uint32_t(length * 100 + d * 7 + heads);
      const auto q = test::random_normal(length * d, seed, 1.5f);
      const auto k = test::random_normal(length * d, seed + 1, 1.5f);
      const auto v = test::random_normal(length * d, seed + 2);
      for (const PaddingCase& pad : padding_cases(length, seed)) {
        INFO("L " << length << " d " << d << " heads " << heads << " padding " << pad.name);
        std::vector<float> out(length * d, 99.0f);
        ref::attention_core(q.data(), k.data(), v.data(), length, d, heads, pad.view(), out.data());
        for (std::size_t h = 0; h < heads; ++h)
          for (std::size_t t = 0; t < length; ++t) {
            std::vector<std::size_t> keys;
            for (std::size_t s = 0; s <= t; ++s)
              if (test_is_key(s, pad.left, pad.mask)) keys.push_back(s);
            if (keys.empty()) {  // nothing to attend to: zeros, not NaN
              for (std::size_t j = 0; j < dh; ++j) REQUIRE(out[t * d + h * dh + j] == 0.0f);
              continue;
            }
            // log-sum-exp in double; delta bounds the fp32 error of every scaled score.
            std::vector<double> logit(keys.size());
            double max_logit = -1e300, delta = 0.0;
            for (std::size_t i = 0; i < keys.size(); ++i) {
              double dot = 0.0, abs_dot = 0.0;
              for (std::size_t j = 0; j < dh; ++j) {
                const double prod = double(q[t * d + h * dh + j]) * k[keys[i] * d + h * dh + j];
                dot += prod, abs_dot += std::fabs(prod);
              }
              logit[i] = dot / std::sqrt(double(dh));
              max_logit = std::max(max_logit, logit[i]);
              delta = std::max(delta, gamma(dh + 3) * abs_dot / std::sqrt(double(dh)));
            }
            double z = 0.0;
            for (double l : logit) z += std::exp(l - max_logit);
            for (std::size_t j = 0; j < dh; ++j) {
              double c = 0.0, max_v = 0.0;
              for (std::size_t i = 0; i < keys.size(); ++i) {
                const double vj = v[keys[i] * d + h * dh + j];
                c += std::exp(logit[i] - max_logit) / z * vj;
                max_v = std::max(max_v, std::fabs(vj));
              }
              // Scores off by delta move the weights by at most expm1(2 delta) in l1; rounding the
              // weights and the weighted sum adds gamma_(L+2) relative to max |v|.
              const double tol = (std::expm1(2 * delta) + 2 * gamma(keys.size() + 2)) * max_v + 1e-30;
              REQUIRE(std::fabs(out[t * d + h * dh + j] - c) <= tol);
            }
          }
      }
    }
}

TEST_CASE("attention weights: rows sum to 1, causal and padded weights are 0, context = P V", "[ref][attention]") {
  for (std::size_t length : {1, 5, 17, 32})
    for (std::size_t heads : {1, 2, 4}) {
      const std::size_t d = 8, dh = d / heads;
      const auto q = test::random_normal(length * d, std::uint32_t(length + heads), 2.0f);
      const auto k = test::random_normal(length * d, std::uint32_t(length * heads + 1), 2.0f);
      const auto v = test::random_normal(length * d, 3);
      for (const PaddingCase& pad : padding_cases(length, std::uint32_t(length))) {
        INFO("L " << length << " heads " << heads << " padding " << pad.name);
        std::vector<float> p(heads * length * length), out(length * d);
        ref::attention_weights(q.data(), k.data(), length, d, heads, pad.view(), p.data());
        ref::attention_core(q.data(), k.data(), v.data(), length, d, heads, pad.view(), out.data());
        for (std::size_t h = 0; h < heads; ++h)
          for (std::size_t t = 0; t < length; ++t) {
            const float* row = &p[(h * length + t) * length];
            bool any_key = false;
            double sum = 0.0;
            for (std::size_t s = 0; s < length; ++s) {
              const bool allowed = s <= t && test_is_key(s, pad.left, pad.mask);
              any_key = any_key || allowed;
              if (!allowed) REQUIRE(row[s] == 0.0f);
              REQUIRE(row[s] >= 0.0f);
              sum += row[s];
            }
            // Each weight carries one fp32 rounding (eps/2 relative).
            REQUIRE(std::fabs(sum - (any_key ? 1.0 : 0.0)) <= length * FLT_EPSILON);
            for (std::size_t j = 0; j < dh; ++j) {
              double c = 0.0, abs_c = 0.0;
              for (std::size_t s = 0; s < length; ++s) {
                c += double(row[s]) * v[s * d + h * dh + j];
                abs_c += std::fabs(double(row[s]) * v[s * d + h * dh + j]);
              }
              REQUIRE(std::fabs(out[t * d + h * dh + j] - c) <= 2 * gamma(length + 1) * abs_c + 1e-30);
            }
          }
      }
    }
}

TEST_CASE("attention: query rows without a valid key give zeros, never NaN", "[ref][attention]") {
  const std::size_t length = 6, d = 4, heads = 2;
  const auto q = test::random_normal(length * d, 1), k = test::random_normal(length * d, 2),
             v = test::random_normal(length * d, 3);
  std::vector<float> out(length * d);
  ref::attention_core(q.data(), k.data(), v.data(), length, d, heads, ref::KeyPadding{4}, out.data());
  for (std::size_t t = 0; t < length; ++t)
    for (std::size_t j = 0; j < d; ++j) {
      REQUIRE(std::isfinite(out[t * d + j]));
      if (t < 4) REQUIRE(out[t * d + j] == 0.0f);  // left-padded rows see only padding
    }
  REQUIRE(out[4 * d] != 0.0f);
  // Everything padded: all zeros.
  ref::attention_core(q.data(), k.data(), v.data(), length, d, heads, ref::KeyPadding{length}, out.data());
  for (float x : out) REQUIRE(x == 0.0f);
}

TEST_CASE("attention_row (decoding with a K/V cache) matches the last row of attention_core", "[ref][attention]") {
  for (std::size_t heads : {1, 2, 4}) {
    const std::size_t length = 17, d = 12;
    const auto q = test::random_normal(length * d, 11), k = test::random_normal(length * d, 12),
               v = test::random_normal(length * d, 13);
    for (const PaddingCase& pad : padding_cases(length, 5)) {
      std::vector<float> full(length * d), row(d);
      ref::attention_core(q.data(), k.data(), v.data(), length, d, heads, pad.view(), full.data());
      for (std::size_t count = 1; count <= length; ++count) {
        INFO("heads " << heads << " padding " << pad.name << " cache " << count);
        // The cache holds only positions 0..count-1; padding that lies beyond it cannot be described.
        const ref::KeyPadding cached{std::min(pad.left, count), pad.view().valid};
        ref::attention_row(&q[(count - 1) * d], k.data(), v.data(), count, d, heads, cached, row.data());
        // Both are within the rounding bound of the attention_core test from the exact value (they are
        // equal bit for bit unless the compiler contracts the two inlined copies differently).
        const std::size_t dh = d / heads;
        for (std::size_t h = 0; h < heads; ++h) {
          double delta = 0.0;
          for (std::size_t s = 0; s < count; ++s) {
            double abs_dot = 0.0;
            for (std::size_t j = h * dh; j < (h + 1) * dh; ++j)
              abs_dot += std::fabs(double(q[(count - 1) * d + j]) * k[s * d + j]);
            delta = std::max(delta, gamma(dh + 3) * abs_dot / std::sqrt(double(dh)));
          }
          for (std::size_t j = h * dh; j < (h + 1) * dh; ++j) {
            double max_v = 0.0;
            for (std::size_t s = 0; s < count; ++s) max_v = std::max(max_v, std::fabs(double(v[s * d + j])));
            const double tol = 2 * (std::expm1(2 * delta) + 2 * gamma(count + 2)) * max_v;
            REQUIRE(std::fabs(row[j] - full[(count - 1) * d + j]) <= tol);
          }
        }
      }
    }
  }
}

TEST_CASE("attention: heads must divide d, padding must fit", "[ref][attention][errors]") {
  std::vector<float> q(5 * 6), out(5 * 6), row(6);
  REQUIRE_THROWS_WITH(ref::attention_core(q.data(), q.data(), q.data(), 5, 6, 4, {}, out.data()),
                      Contains("6 is not divisible by 4 heads"));
  REQUIRE_THROWS_AS(ref::attention_core(q.data(), q.data(), q.data(), 5, 6, 0, {}, out.data()), Error);
  REQUIRE_THROWS_WITH(ref::attention_core(q.data(), q.data(), q.data(), 5, 6, 2, ref::KeyPadding{6}, out.data()),
                      Contains("left padding 6 exceeds"));
  REQUIRE_THROWS_AS(ref::attention_row(q.data(), q.data(), q.data(), 5, 6, 5, {}, row.data()), Error);
  REQUIRE_THROWS_AS(ref::attention_weights(q.data(), q.data(), 5, 6, 4, {}, out.data()), Error);
}

namespace {

AttentionLayer random_attention(std::size_t d, std::size_t heads, std::uint32_t seed) {
  AttentionLayer layer;
  layer.heads = heads;
  layer.query = random_dense(d, d, seed);
  layer.key = random_dense(d, d, seed + 10);
  layer.value = random_dense(d, d, seed + 20);
  layer.output = random_dense(d, d, seed + 30);
  return layer;
}

AttentionLayer quantize_attention(const AttentionLayer& dense, std::uint32_t seed, bool eight_bits,
                                       LinearMode mode) {
  AttentionLayer q;
  q.heads = dense.heads;
  const std::size_t d = dense.dim();
  const auto bits_for = [&](std::uint32_t s) {
    return eight_bits ? std::vector<std::uint8_t>(d, 8) : test::random_bits(d, s, false);
  };
  q.query = quantize_linear(dense.query, bits_for(seed).data(), mode);
  q.key = quantize_linear(dense.key, bits_for(seed + 1).data(), mode);
  q.value = quantize_linear(dense.value, bits_for(seed + 2).data(), mode);
  q.output = quantize_linear(dense.output, bits_for(seed + 3).data(), mode);
  return q;
}

// Bound on |y_quant[t][j] - y_dense[t][j]| for the full attention layer, per element, from the
// exact (double) projections of both layers:
//   1. scores: delta_t = max over valid s of |s_quant - s_dense| (plus fp32 rounding of both);
//      softmax moves each weight by a factor within exp(+-2 delta): |dp_s| <= e p_s, e = expm1(2 delta);
//   2. context: dc_i <= e sum_s p_s |v_s,i| + (1 + e) sum_s p_s |dv_s,i|  (and |c_i| <= max_s |v_s,i|);
//   3. W-A8: the context is quantized to int8 on its way into Wo: at most half a code step, a_i;
//   4. output: dy_j <= sum_i |Wo_q[j][i]| (dc_i + a_i) + |sum_i c_i (Wo_q - Wo)[j][i]|;
//   plus 4 gamma_n times the magnitudes involved, for the fp32 rounding of both computations.
std::vector<double> attention_bound(const AttentionLayer& dense, const AttentionLayer& quant,
                                    const std::vector<float>& x, std::size_t length, const PaddingCase& pad) {
  const std::size_t d = dense.dim(), heads = dense.heads, dh = d / heads;
  const double g = gamma(2 * d + length + 16), scale = 1.0 / std::sqrt(double(dh));
  const auto q = project(dense.query, x, length), k = project(dense.key, x, length),
             v = project(dense.value, x, length);
  const auto qq = project(quant.query, x, length), kq = project(quant.key, x, length),
             vq = project(quant.value, x, length);
  const auto wo = effective_weights(dense.output), wq = effective_weights(quant.output);
  std::vector<double> bound(length * d, 0.0);
  for (std::size_t t = 0; t < length; ++t) {
    std::vector<double> c(d, 0.0), dc(d, 0.0), c_mag(d, 0.0);
    for (std::size_t h = 0; h < heads; ++h) {
      std::vector<std::size_t> keys;
      for (std::size_t s = 0; s <= t; ++s)
        if (test_is_key(s, pad.left, pad.mask)) keys.push_back(s);
      if (keys.empty()) continue;  // both contexts are exactly 0
      double delta = 0.0;
      std::vector<double> logit(keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        double sd = 0.0, sq = 0.0, abs_q = 0.0;
        for (std::size_t j = h * dh; j < (h + 1) * dh; ++j) {
          sd += q[t * d + j] * k[keys[i] * d + j];
          sq += qq[t * d + j] * kq[keys[i] * d + j];
          abs_q += std::fabs(qq[t * d + j] * kq[keys[i] * d + j]) + std::fabs(q[t * d + j] * k[keys[i] * d + j]);
        }
        logit[i] = sd * scale;
        delta = std::max(delta, (std::fabs(sq - sd) + g * abs_q) * scale);
      }
      const double e = std::expm1(2 * delta) + 2 * g;  // |p_quant[s] - p[s]| <= e * p[s]
      double max_logit = *std::max_element(logit.begin(), logit.end()), z = 0.0;
      for (double l : logit) z += std::exp(l - max_logit);
      for (std::size_t j = h * dh; j < (h + 1) * dh; ++j) {
        double max_v = 0.0, mean_abs_v = 0.0, mean_abs_dv = 0.0;  // means weighted by P
        for (std::size_t i = 0; i < keys.size(); ++i) {
          const std::size_t s = keys[i];
          const double p = std::exp(logit[i] - max_logit) / z;
          c[j] += p * v[s * d + j];
          mean_abs_v += p * std::fabs(v[s * d + j]);
          mean_abs_dv += p * std::fabs(vq[s * d + j] - v[s * d + j]);
          max_v = std::max(max_v, std::max(std::fabs(v[s * d + j]), std::fabs(vq[s * d + j])));
        }
        // c_quant - c = sum (p_quant - p) v + sum p_quant dv.
        dc[j] = e * mean_abs_v + (1 + e) * mean_abs_dv + g * max_v;
        c_mag[j] = max_v;
      }
    }
    double max_cq = 0.0;  // bound on the largest |context| the quantized layer feeds to Wo
    for (std::size_t j = 0; j < d; ++j) max_cq = std::max(max_cq, c_mag[j] + dc[j]);
    const bool s8 = quant.output.mode == LinearMode::mixed_s8;
    const double half_step = s8 ? 0.5 * max_cq / 127.0 * (1 + 1e-3) : 0.0;
    for (std::size_t o = 0; o < d; ++o) {
      double propagated = 0.0, weight_error = 0.0, magnitude = 2 * std::fabs(bias_of(dense.output, o));
      for (std::size_t i = 0; i < d; ++i) {
        propagated += std::fabs(wq[o * d + i]) * (dc[i] + half_step);
        weight_error += c[i] * (double(wq[o * d + i]) - wo[o * d + i]);
        magnitude += (std::fabs(wq[o * d + i]) + std::fabs(wo[o * d + i])) * (c_mag[i] + dc[i] + half_step);
      }
      bound[t * d + o] = propagated + std::fabs(weight_error) + 4 * g * magnitude;
    }
  }
  return bound;
}

}  // namespace

TEST_CASE("full attention: quantized projections vs dense, within the norm-derived bound",
          "[ref][attention][mixed]") {
  const std::size_t shapes[][2] = {{8, 2}, {16, 4}, {16, 1}, {24, 3}};
  for (std::size_t length : {1, 5, 17})
    for (const auto& shape : shapes)
      for (auto mode : {LinearMode::mixed_f32, LinearMode::mixed_s8})
        for (bool eight_bits : {true, false}) {
          const std::size_t d = shape[0], heads = shape[1];
          const std::uint32_t seed = std::uint32_t(length * 1000 + d * 10 + heads);
          const AttentionLayer dense = random_attention(d, heads, seed);
          const AttentionLayer quant = quantize_attention(dense, seed + 5, eight_bits, mode);
          const auto x = test::random_normal(length * d, seed + 7);
          for (const PaddingCase& pad : padding_cases(length, seed)) {
            INFO("L " << length << " d " << d << " heads " << heads << " " << chord::to_string(mode)
                      << (eight_bits ? " 8 bits" : " bits 2/4/8") << " padding " << pad.name);
            std::vector<float> y(length * d), yq(length * d);
            ref::causal_self_attention(dense, x.data(), length, pad.view(), y.data());
            ref::causal_self_attention(quant, x.data(), length, pad.view(), yq.data());
            const std::vector<double> bound = attention_bound(dense, quant, x, length, pad);
            double diff_norm = 0.0, y_norm = 0.0, bound_norm = 0.0;
            for (std::size_t i = 0; i < length * d; ++i) {
              REQUIRE(std::isfinite(yq[i]));
              REQUIRE(std::fabs(double(yq[i]) - y[i]) <= bound[i]);
              diff_norm += (double(yq[i]) - y[i]) * (double(yq[i]) - y[i]);
              y_norm += double(y[i]) * y[i];
              bound_norm += bound[i] * bound[i];
            }
            bool any_key = false;  // a layer whose rows all lack keys outputs its bias either way
            for (std::size_t s = 0; s < length; ++s) any_key = any_key || test_is_key(s, pad.left, pad.mask);
            if (any_key) REQUIRE(diff_norm > 0.0);  // the quantized weights were really used
            // At 8 bits the bound is tight enough to catch a wrong channel or scale (errors of the
            // size of y itself): it stays well below ||y||.
            if (eight_bits) REQUIRE(std::sqrt(bound_norm) <= 0.5 * std::sqrt(y_norm));
          }
        }
}

TEST_CASE("full attention: causal (later inputs change nothing before them), padding inputs ignored",
          "[ref][attention]") {
  const std::size_t length = 9, d = 12, heads = 3;
  const AttentionLayer dense = random_attention(d, heads, 42);
  for (auto mode : {LinearMode::dense_f32, LinearMode::mixed_s8}) {
    const AttentionLayer layer =
        mode == LinearMode::dense_f32 ? dense : quantize_attention(dense, 3, false, mode);
    const auto x = test::random_normal(length * d, 9);
    std::vector<float> y(length * d), y2(length * d);
    run_attention(layer, x.data(), x.data(), length, {}, y.data());
    for (std::size_t changed = 0; changed < length; ++changed) {
      auto x2 = x;
      for (std::size_t j = 0; j < d; ++j) x2[changed * d + j] += 1.0f;
      run_attention(layer, x2.data(), x2.data(), length, {}, y2.data());
      for (std::size_t t = 0; t < length; ++t)
        for (std::size_t j = 0; j < d; ++j) {
          if (t < changed) REQUIRE(y2[t * d + j] == y[t * d + j]);
        }
      REQUIRE(y2[changed * d] != y[changed * d]);
    }
    // With 3 positions of left padding, what the padded inputs hold does not matter at all: their
    // keys are masked, and their own rows have no key (context 0, output = output bias).
    const ref::KeyPadding padding{3};
    auto x3 = x;
    for (std::size_t i = 0; i < 3 * d; ++i) x3[i] = -7.0f * x3[i];
    run_attention(layer, x.data(), x.data(), length, padding, y.data());
    run_attention(layer, x3.data(), x3.data(), length, padding, y2.data());
    REQUIRE(y == y2);
    for (std::size_t j = 0; j < d; ++j) REQUIRE(y[j] == bias_of(layer.output, j));
    // Output written over the input (y aliases x) gives the same result.
    auto inplace = x;
    run_attention(layer, inplace.data(), inplace.data(), length, padding, inplace.data());
    REQUIRE(inplace == y);
  }
}

TEST_CASE("full attention: separate query and key/value inputs (SASRec's pre-LN block)", "[ref][attention]") {
  const std::size_t length = 7, d = 8;
  const AttentionLayer layer = random_attention(d, 2, 17);
  const auto xq = test::random_normal(length * d, 1), xkv = test::random_normal(length * d, 2);
  std::vector<float> y(length * d), y_kv_changed(length * d), y_q_changed(length * d);
  run_attention(layer, xq.data(), xkv.data(), length, {}, y.data());
  // The last position's key/value input is seen only by the last query; any query input only by its row.
  auto xkv2 = xkv, xq2 = xq;
  for (std::size_t j = 0; j < d; ++j) xkv2[(length - 1) * d + j] += 1.0f, xq2[2 * d + j] += 1.0f;
  run_attention(layer, xq.data(), xkv2.data(), length, {}, y_kv_changed.data());
  run_attention(layer, xq2.data(), xkv.data(), length, {}, y_q_changed.data());
  for (std::size_t t = 0; t < length; ++t)
    for (std::size_t j = 0; j < d; ++j) {
      if (t < length - 1) REQUIRE(y_kv_changed[t * d + j] == y[t * d + j]);
      if (t != 2) REQUIRE(y_q_changed[t * d + j] == y[t * d + j]);
    }
  REQUIRE(y_q_changed[2 * d] != y[2 * d]);
  REQUIRE(y_kv_changed[(length - 1) * d] != y[(length - 1) * d]);
}

TEST_CASE("full attention: projection shape mismatches throw, naming the projection", "[ref][attention][errors]") {
  AttentionLayer layer = random_attention(8, 2, 1);
  std::vector<float> x(3 * 8), y(3 * 8);
  layer.key = random_dense(8, 9, 2);
  REQUIRE_THROWS_WITH(ref::causal_self_attention(layer, x.data(), 3, {}, y.data()),
                      Contains("key projection is 8 x 9, expected 8 x 8"));
  layer = random_attention(8, 3, 1);
  REQUIRE_THROWS_WITH(ref::causal_self_attention(layer, x.data(), 3, {}, y.data()),
                      Contains("not divisible by 3"));
  layer = random_attention(8, 2, 1);
  layer.output.bias.resize(5);
  REQUIRE_THROWS_WITH(ref::causal_self_attention(layer, x.data(), 3, {}, y.data()),
                      Contains("output projection: bias has 5 values"));
}

// ------------------------------------------------------------------------------------------------
// Caser convolutions

namespace {

std::vector<LinearLayer> random_horizontal(std::size_t length, std::size_t d, std::size_t nh, std::uint32_t seed) {
  std::vector<LinearLayer> banks;
  for (std::size_t h = 1; h <= length; ++h) banks.push_back(random_dense(nh, h * d, seed + std::uint32_t(h)));
  return banks;
}

std::vector<LinearLayer> quantize_banks(const std::vector<LinearLayer>& banks, LinearMode mode,
                                        std::uint32_t seed) {
  std::vector<LinearLayer> out;
  for (const LinearLayer& b : banks)
    out.push_back(quantize_linear(b, test::random_bits(b.out, seed++).data(), mode));
  return out;
}

// An fp32 result and how far from the exact value the op may round it.
struct Expected {
  std::vector<double> value, tolerance;
};

// The horizontal convolution as a direct loop nest in double (fp32 weights or W-A32: the layers'
// effective weights): [L * nh]. For each height h, filter f, time t: sum over the filter's h rows r and
// d columns j of W[f][r][j] * E[t + r][j], then ReLU and max over t.
Expected direct_horizontal(const std::vector<float>& e, std::size_t length, std::size_t d,
                           const std::vector<LinearLayer>& banks) {
  const std::size_t nh = banks[0].out;
  Expected expected{std::vector<double>(length * nh), std::vector<double>(length * nh)};
  for (std::size_t h = 1; h <= length; ++h) {
    const std::vector<float> w = effective_weights(banks[h - 1]);  // [nh][h][d]
    for (std::size_t f = 0; f < nh; ++f) {
      double best = 0.0, tol = 0.0;  // ReLU then max over time = max(0, max over time)
      for (std::size_t t = 0; t + h <= length; ++t) {
        double sum = bias_of(banks[h - 1], f), abs_sum = std::fabs(bias_of(banks[h - 1], f));
        for (std::size_t r = 0; r < h; ++r)
          for (std::size_t j = 0; j < d; ++j) {
            const double prod = double(w[f * h * d + r * d + j]) * e[(t + r) * d + j];
            sum += prod, abs_sum += std::fabs(prod);
          }
        best = std::max(best, sum);
        // ReLU and max are 1-Lipschitz: the pooled error is at most the largest window error.
        tol = std::max(tol, 2 * gamma(h * d + 2) * abs_sum);
      }
      expected.value[(h - 1) * nh + f] = best;
      expected.tolerance[(h - 1) * nh + f] = tol + 1e-30;
    }
  }
  return expected;
}

// The vertical convolution as a direct loop: out[f][j] = sum_i W[f][i] E[i][j] + b[f]: [nv * d].
Expected direct_vertical(const std::vector<float>& e, std::size_t length, std::size_t d,
                         const LinearLayer& filters) {
  const std::size_t nv = filters.out;
  const std::vector<float> w = effective_weights(filters);
  Expected expected{std::vector<double>(nv * d), std::vector<double>(nv * d)};
  for (std::size_t f = 0; f < nv; ++f)
    for (std::size_t j = 0; j < d; ++j) {
      double sum = bias_of(filters, f);
      for (std::size_t i = 0; i < length; ++i) sum += double(w[f * length + i]) * e[i * d + j];
      expected.value[f * d + j] = sum;
      expected.tolerance[f * d + j] = dot_tolerance(&e[j], d, &w[f * length], length, bias_of(filters, f));
    }
  return expected;
}

void require_expected(const float* out, const Expected& expected) {
  for (std::size_t i = 0; i < expected.value.size(); ++i) {
    INFO("output " << i);
    REQUIRE(std::fabs(out[i] - expected.value[i]) <= expected.tolerance[i]);
  }
}

// The W-A8 epilogue y = float(acc) * a_scale * w_scale + bias from an exact integer sum, and its
// rounding: both sides compute float(acc) * a_scale identically; the rest may be rounded twice or
// fused into one multiply-add, so they differ by at most eps * (|product| + |bias|).
struct Epilogue {
  float value;
  double tolerance;
};
Epilogue s8_epilogue(const QuantizedRows& a, std::size_t row, const MixedMatrix& w, std::size_t channel,
                     float bias) {
  std::int32_t acc = 0;
  for (std::size_t j = 0; j < a.k(); ++j) acc += std::int32_t(a.row(row)[j]) * w.code(channel, j);
  const float product = float(acc) * a.scales()[row] * w.scale(channel);
  return {product + bias, FLT_EPSILON * (std::fabs(product) + std::fabs(bias))};
}

}  // namespace

TEST_CASE("Caser horizontal conv equals a direct convolution loop (dense, W-A32)", "[ref][conv]") {
  for (std::size_t length : {1, 2, 3, 5, 7})
    for (std::size_t d : {1, 3, 8, 17})
      for (std::size_t nh : {1, 3, 16})
        for (auto mode : {LinearMode::dense_f32, LinearMode::mixed_f32}) {
          INFO("L " << length << " d " << d << " nh " << nh << " " << chord::to_string(mode));
          const std::uint32_t seed = std::uint32_t(length * 1000 + d * 20 + nh);
          const auto e = test::random_normal(length * d, seed);
          const auto dense = random_horizontal(length, d, nh, seed);
          const auto banks = mode == LinearMode::dense_f32 ? dense : quantize_banks(dense, mode, seed);
          std::vector<float> out(length * nh, -1.0f);
          ref::caser_horizontal(e.data(), length, d, banks, out.data());
          require_expected(out.data(), direct_horizontal(e, length, d, banks));
          for (float v : out) REQUIRE(v >= 0.0f);
        }
}

TEST_CASE("Caser horizontal conv, W-A8: every window quantized on its own, integer sums exact",
          "[ref][conv][mixed]") {
  for (std::size_t length : {1, 4, 5})
    for (std::size_t d : {2, 9, 16}) {
      const std::size_t nh = 5;
      const std::uint32_t seed = std::uint32_t(length * 31 + d);
      const auto e = test::random_normal(length * d, seed);
      const auto dense = random_horizontal(length, d, nh, seed);
      const auto banks = quantize_banks(dense, LinearMode::mixed_s8, seed);
      std::vector<float> out(length * nh);
      ref::caser_horizontal(e.data(), length, d, banks, out.data());
      for (std::size_t h = 1; h <= length; ++h)
        for (std::size_t f = 0; f < nh; ++f) {
          INFO("L " << length << " d " << d << " h " << h << " filter " << f);
          double best = 0.0, tol = 0.0;
          for (std::size_t t = 0; t + h <= length; ++t) {
            const QuantizedRows a = quantize_rows(&e[t * d], 1, h * d);  // this window alone
            const Epilogue y = s8_epilogue(a, 0, banks[h - 1].mixed, f, bias_of(banks[h - 1], f));
            best = std::max(best, double(y.value));
            tol = std::max(tol, y.tolerance);
          }
          REQUIRE(std::fabs(out[(h - 1) * nh + f] - best) <= tol);
        }
    }
}

TEST_CASE("Caser vertical conv equals a direct loop (dense, W-A32, W-A8)", "[ref][conv]") {
  for (std::size_t length : {1, 2, 5, 8})
    for (std::size_t d : {1, 4, 17, 50})
      for (std::size_t nv : {1, 4, 7})
        for (auto mode : {LinearMode::dense_f32, LinearMode::mixed_f32, LinearMode::mixed_s8}) {
          INFO("L " << length << " d " << d << " nv " << nv << " " << chord::to_string(mode));
          const std::uint32_t seed = std::uint32_t(length * 500 + d * 9 + nv);
          const auto e = test::random_normal(length * d, seed);
          const LinearLayer dense = random_dense(nv, length, seed + 3);
          const LinearLayer filters =
              mode == LinearMode::dense_f32
                  ? dense
                  : quantize_linear(dense, test::random_bits(nv, seed).data(), mode);
          std::vector<float> out(nv * d);
          ref::caser_vertical(e.data(), length, d, filters, out.data());
          if (mode != LinearMode::mixed_s8) {
            require_expected(out.data(), direct_vertical(e, length, d, filters));
            continue;
          }
          for (std::size_t j = 0; j < d; ++j) {
            // Column j of E (one embedding dimension over time), quantized as one row, times each filter.
            std::vector<float> column(length);
            for (std::size_t i = 0; i < length; ++i) column[i] = e[i * d + j];
            const QuantizedRows a = quantize_rows(column.data(), 1, length);
            for (std::size_t f = 0; f < nv; ++f) {
              const Epilogue y = s8_epilogue(a, 0, filters.mixed, f, bias_of(filters, f));
              REQUIRE(std::fabs(out[f * d + j] - y.value) <= y.tolerance);
            }
          }
        }
}

TEST_CASE("caser_conv concatenates [vertical | horizontal] as Caser does", "[ref][conv]") {
  const std::size_t length = 5, d = 6, nh = 4, nv = 3;
  const CaserFilters filters{random_horizontal(length, d, nh, 1), random_dense(nv, length, 2)};
  const auto e = test::random_normal(length * d, 3);
  std::vector<float> all(filters.output_size(length, d), -1.0f);
  REQUIRE(all.size() == nv * d + length * nh);
  ref::caser_conv(filters, e.data(), length, d, all.data());
  require_expected(all.data(), direct_vertical(e, length, d, filters.vertical));
  require_expected(all.data() + nv * d, direct_horizontal(e, length, d, filters.horizontal));
}

TEST_CASE("Caser convolutions: shape mismatches throw", "[ref][conv][errors]") {
  const std::size_t length = 4, d = 3;
  const auto e = test::random_normal(length * d, 1);
  std::vector<float> out(100);
  auto banks = random_horizontal(length, d, 2, 5);
  REQUIRE_THROWS_WITH(ref::caser_horizontal(e.data(), 3, d, banks, out.data()), Contains("4 filter banks given"));
  REQUIRE_THROWS_WITH(ref::caser_horizontal(e.data(), 0, d, {}, out.data()), Contains("at least 1"));
  auto wrong_fan_in = banks;
  wrong_fan_in[2] = random_dense(2, 2 * d, 9);
  REQUIRE_THROWS_WITH(ref::caser_horizontal(e.data(), length, d, wrong_fan_in, out.data()),
                      Contains("height 3 have fan-in 6, expected h * d = 9"));
  auto wrong_count = banks;
  wrong_count[1] = random_dense(3, 2 * d, 9);
  REQUIRE_THROWS_WITH(ref::caser_horizontal(e.data(), length, d, wrong_count, out.data()), Contains("same nh"));
  REQUIRE_THROWS_WITH(ref::caser_vertical(e.data(), length, d, random_dense(2, 5, 1), out.data()),
                      Contains("filters have length 5, expected the sequence length 4"));
}
