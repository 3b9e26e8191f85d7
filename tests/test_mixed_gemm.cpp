// Mixed matrix and the reference mixed gemm: segments and permutation, the int8 path against a plain
// integer triple loop (exact), the fp32 path against dense gemm on fake-quantized weights (within the
// dot-product rounding bound), and the scalar backend's packed kernels against the reference.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <vector>

#include "chord/backends/scalar/gemm.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"
#include "test_helpers.hpp"

using namespace chord;

namespace {
// |fl(x.w) - x.w| <= gamma_k * sum |x||w| with gamma_k = k eps / (1 - k eps) for each of the two sums
// compared: the tolerance follows from the operands' norms, not from a magic epsilon.
double dot_tolerance(const float* x, const float* w, std::size_t k) {
  double abs_dot = 0.0;
  for (std::size_t j = 0; j < k; ++j) abs_dot += std::fabs(double(x[j]) * w[j]);
  const double gamma = (k + 2) * double(FLT_EPSILON) / (1.0 - (k + 2) * double(FLT_EPSILON));
  return 2.0 * gamma * abs_dot + 1e-30;
}
}  // namespace

TEST_CASE("MixedMatrix: segments are homogeneous, ordered and map back to every channel", "[mixed]") {
  for (std::size_t n : test::kAwkwardSizes) {
    const std::size_t k = 13;
    const auto w = test::random_normal(n * k, std::uint32_t(n));
    const auto bits = test::random_bits(n, std::uint32_t(n + 1));
    const MixedMatrix m(w.data(), n, k, bits.data());
    const QuantizedChannels q = quantize_channels(w.data(), n, k, bits.data());
    std::vector<int> seen(n, 0);
    int previous_bits = 9;
    for (const auto& s : m.segments()) {
      REQUIRE(s.bits < previous_bits);  // 8, then 4, then 2
      previous_bits = s.bits;
      REQUIRE(s.packed.bits() == s.bits);
      REQUIRE(s.packed.rows() == s.channels.size());
      REQUIRE(s.packed.rows_padded() % kTileN == 0);
      for (std::size_t r = 0; r < s.channels.size(); ++r) {
        REQUIRE(bits[s.channels[r]] == s.bits);
        if (r > 0) REQUIRE(s.channels[r] > s.channels[r - 1]);
        ++seen[s.channels[r]];
      }
    }
    double expected_avg = 0.0;
    for (std::size_t c = 0; c < n; ++c) {
      REQUIRE(seen[c] == (bits[c] == 0 ? 0 : 1));
      expected_avg += bits[c];
      REQUIRE(m.scale(c) == q.scales[c]);
      for (std::size_t j = 0; j < k; ++j) REQUIRE(m.code(c, j) == q.codes[c * k + j]);
    }
    REQUIRE(m.average_bits() == Approx(expected_avg / n));
  }
}

TEST_CASE("reference mixed gemm, int8 activations: exactly the integer triple loop", "[mixed][ref]") {
  for (std::size_t m : {1, 3, 16})
    for (std::size_t n : {1, 5, 16, 17, 33})
      for (std::size_t k : {1, 4, 7, 16, 31, 65}) {
        const auto w = test::random_heavy_tailed(n * k, std::uint32_t(m * 1000 + n * 10 + k));
        const auto x = test::random_normal(m * k, std::uint32_t(m + n + k));
        const auto bits = test::random_bits(n, std::uint32_t(n * k));
        const MixedMatrix mixed(w.data(), n, k, bits.data());
        const QuantizedChannels q = quantize_channels(w.data(), n, k, bits.data());
        const QuantizedRows a = quantize_rows(x.data(), m, k);
        std::vector<std::int32_t> acc(m * n);
        ref::mixed_gemm_s8_acc(a, mixed, acc.data());
        std::vector<float> y(m * n);
        ref::mixed_gemm_s8(a, mixed, nullptr, y.data(), n);
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t c = 0; c < n; ++c) {
            std::int32_t dot = 0;  // the plain loop, on codes that never went through packing
            for (std::size_t j = 0; j < k; ++j) dot += std::int32_t(a.codes()[i * a.stride() + j]) * q.codes[c * k + j];
            REQUIRE(acc[i * n + c] == dot);
            REQUIRE(y[i * n + c] == float(dot) * a.scales()[i] * q.scales[c]);
          }
      }
}

TEST_CASE("reference mixed gemm, fp32 activations: dense gemm on fake-quantized weights", "[mixed][ref]") {
  for (std::size_t m : {1, 2, 17})
    for (std::size_t n : {1, 9, 16, 31})
      for (std::size_t k : {1, 3, 16, 33, 64}) {
        const auto w = test::random_normal(n * k, std::uint32_t(7 * m + 3 * n + k));
        const auto x = test::random_normal(m * k, std::uint32_t(m * n * k));
        const auto bias = test::random_normal(n, 3);
        const auto bits = test::random_bits(n, std::uint32_t(n + k));
        const MixedMatrix mixed(w.data(), n, k, bits.data());
        const auto fake = fake_quantized(quantize_channels(w.data(), n, k, bits.data()));
        std::vector<float> y(m * n), expected(m * n);
        ref::mixed_gemm_f32(x.data(), k, mixed, bias.data(), y.data(), n, m);
        ref::gemm_f32(x.data(), k, fake.data(), bias.data(), expected.data(), n, m, n, k);
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t c = 0; c < n; ++c)
            REQUIRE(std::fabs(y[i * n + c] - expected[i * n + c]) <=
                    dot_tolerance(x.data() + i * k, fake.data() + c * k, k) + 4 * FLT_EPSILON * std::fabs(bias[c]));
      }
}

TEST_CASE("scalar backend kernels equal the reference (w8/w4/w2, a8 and fp32)", "[mixed][scalar]") {
  const KernelTable kernels = backends::scalar::kernel_table();
  for (std::size_t m : {0, 1, 2, 5})
    for (std::size_t n : {0, 1, 15, 16, 17, 40})
      for (std::size_t k : {0, 1, 5, 8, 17, 50, 64}) {
        INFO("m " << m << " n " << n << " k " << k);
        const auto w = test::random_heavy_tailed(n * k, std::uint32_t(m + 11 * n + 101 * k));
        const auto x = test::random_normal(m * k, std::uint32_t(m * 7 + n));
        const auto bias = test::random_normal(n, 17);
        const auto bits = test::random_bits(n, std::uint32_t(n * 3 + k));
        const MixedMatrix mixed(w.data(), n, k, bits.data());
        const QuantizedRows a = quantize_rows(x.data(), m, k);

        std::vector<std::int32_t> acc(m * n, -1), acc_ref(m * n, -2);
        ops::mixed_gemm_s8_acc(kernels, a, mixed, acc.data());
        ref::mixed_gemm_s8_acc(a, mixed, acc_ref.data());
        REQUIRE(acc == acc_ref);

        std::vector<float> y(m * n, -1.0f), y_ref(m * n, -2.0f);
        ops::mixed_gemm_s8(kernels, a, mixed, bias.data(), y.data(), n);
        ref::mixed_gemm_s8(a, mixed, bias.data(), y_ref.data(), n);
        REQUIRE(y == y_ref);

        ops::mixed_gemm_f32(kernels, x.data(), k, m, mixed, bias.data(), y.data(), n);
        ref::mixed_gemm_f32(x.data(), k, mixed, bias.data(), y_ref.data(), n, m);
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t c = 0; c < n; ++c) {
            std::vector<float> wc(k);
            for (std::size_t j = 0; j < k; ++j) wc[j] = float(mixed.code(c, j)) * mixed.scale(c);
            REQUIRE(std::fabs(y[i * n + c] - y_ref[i * n + c]) <=
                    dot_tolerance(x.data() + i * k, wc.data(), k) + 4 * FLT_EPSILON * std::fabs(bias[c]));
          }
      }
}

TEST_CASE("int8 activations saturate at +-127 and pad with zeros", "[activations]") {
  std::vector<float> x = {1e30f, -1e30f, 0.5f, -3.0f, 0.0f};
  const QuantizedRows a = quantize_rows(x.data(), 1, x.size());
  REQUIRE(a.stride() % kMaxGroupK == 0);
  REQUIRE(a.codes()[0] == 127);
  REQUIRE(a.codes()[1] == -127);
  REQUIRE(a.codes()[2] == 0);
  for (std::size_t j = x.size(); j < a.stride(); ++j) REQUIRE(a.codes()[j] == 0);
  REQUIRE(a.sums()[0] == 127 - 127 + 0 + 0 + 0);
  std::vector<float> tiny = {1e-38f, -2e-40f};
  const QuantizedRows t = quantize_rows(tiny.data(), 1, 2);
  REQUIRE(std::isfinite(t.scales()[0]));
}
