// Quantizer: error bounds per width, clip search vs max-abs scaling, code ranges, awkward channels.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <limits>
#include <vector>

#include "chord/core/quantizer.hpp"
#include "chord/nn/random.hpp"
#include "quantizer_reference.hpp"
#include "test_helpers.hpp"

using namespace chord;

namespace {
double squared_error(const std::vector<float>& w, const std::vector<std::int8_t>& q, float scale) {
  double e = 0.0;
  for (std::size_t j = 0; j < w.size(); ++j) {
    const double d = double(w[j]) - double(dequantize(q[j], scale));
    e += d * d;
  }
  return e;
}
double max_abs(const std::vector<float>& w) {
  double m = 0.0;
  for (float x : w) m = std::fmax(m, std::fabs(double(x)));
  return m;
}
}  // namespace

TEST_CASE("quantize_channel: codes in range and error within the max-abs bound", "[quantizer]") {
  for (int bits : {2, 4, 8})
    for (std::size_t n : test::kAwkwardSizes)
      for (int heavy = 0; heavy < 2; ++heavy) {
        const auto w = heavy ? test::random_heavy_tailed(n, 7 * n + bits) : test::random_normal(n, 3 * n + bits);
        std::vector<std::int8_t> q(n);
        const float scale = quantize_channel(w.data(), n, bits, q.data());
        INFO("bits " << bits << " n " << n << " heavy " << heavy);
        REQUIRE(scale > 0.0f);
        for (auto c : q) {
          REQUIRE(c >= code_min(bits));
          REQUIRE(c <= code_max(bits));
        }
        // Max-abs scaling rounds every weight within half a step, so its squared error is at most
        // n * (step / 2)^2; the clip search may only do better.
        const double step = max_abs(w) / code_max(bits);
        REQUIRE(squared_error(w, q, scale) <= n * step * step / 4.0 * (1.0 + 1e-6));
      }
}

TEST_CASE("quantize_channel: clip search is never worse than max-abs scaling", "[quantizer]") {
  ClipSearch max_abs_only;
  max_abs_only.steps = 1;
  max_abs_only.refinements = 0;
  int strictly_better = 0;
  for (int bits : {2, 4, 8})
    for (std::uint32_t seed = 0; seed < 40; ++seed) {
      const std::size_t n = 64 + seed;
      const auto w = seed % 2 ? test::random_heavy_tailed(n, seed) : test::random_normal(n, seed);
      std::vector<std::int8_t> q_search(n), q_plain(n);
      const float s_search = quantize_channel(w.data(), n, bits, q_search.data());
      const float s_plain = quantize_channel(w.data(), n, bits, q_plain.data(), max_abs_only);
      const double e_search = squared_error(w, q_search, s_search), e_plain = squared_error(w, q_plain, s_plain);
      REQUIRE(e_search <= e_plain * (1.0 + 1e-9));
      strictly_better += e_search < e_plain * 0.999;
    }
  // On heavy-tailed data clipping outliers must pay off often, or the search is not searching.
  REQUIRE(strictly_better >= 40);
}

TEST_CASE("quantize_channel: more bits never hurt", "[quantizer]") {
  for (std::uint32_t seed = 0; seed < 20; ++seed) {
    const auto w = test::random_heavy_tailed(100, seed);
    double previous = std::numeric_limits<double>::infinity();
    for (int bits : {2, 4, 8}) {
      std::vector<std::int8_t> q(w.size());
      const float s = quantize_channel(w.data(), w.size(), bits, q.data());
      const double e = squared_error(w, q, s);
      REQUIRE(e < previous);
      previous = e;
    }
  }
}

TEST_CASE("quantize_channel: zero, constant, denormal and huge channels", "[quantizer]") {
  for (int bits : {0, 2, 4, 8}) {
    INFO("bits " << bits);
    std::vector<std::int8_t> q(9, 42);
    SECTION("all zero: scale 0, codes 0") {
      std::vector<float> w(9, 0.0f);
      REQUIRE(quantize_channel(w.data(), w.size(), bits, q.data()) == 0.0f);
      for (auto c : q) REQUIRE(c == 0);
    }
    SECTION("constant channel is exact") {
      std::vector<float> w(9, -0.37f);
      const float s = quantize_channel(w.data(), w.size(), bits, q.data());
      if (bits == 0) {
        REQUIRE(s == 0.0f);
      } else {
        for (std::size_t j = 0; j < w.size(); ++j) REQUIRE(dequantize(q[j], s) == Approx(w[j]).epsilon(1e-6));
      }
    }
    SECTION("denormals: finite, codes in range, error no larger than the values") {
      std::vector<float> w = {1e-40f, -3e-41f, 2e-39f, 0.0f, -1e-45f, 5e-42f, 1e-39f, -2e-39f, 7e-40f};
      const float s = quantize_channel(w.data(), w.size(), bits, q.data());
      REQUIRE(std::isfinite(s));
      double err = 0.0, energy = 0.0;
      for (std::size_t j = 0; j < w.size(); ++j) {
        REQUIRE(q[j] >= code_min(bits));
        REQUIRE(q[j] <= code_max(bits));
        const double d = double(w[j]) - double(q[j]) * double(s);
        err += d * d, energy += double(w[j]) * w[j];
      }
      REQUIRE(err <= energy);
    }
    SECTION("huge values: no overflow to infinity") {
      std::vector<float> w = {3e38f, -3.3e38f, 1e38f, -2e37f, 0.0f, 3.4e38f, -1e30f, 5e37f, -3.4e38f};
      const float s = quantize_channel(w.data(), w.size(), bits, q.data());
      REQUIRE(std::isfinite(s));
      for (std::size_t j = 0; j < w.size(); ++j) REQUIRE(std::isfinite(dequantize(q[j], s)));
      if (bits >= 4) REQUIRE(dequantize(q[5], s) > 1e38f);
    }
  }
}

TEST_CASE("quantize_channel: rejects non-finite weights and bad widths", "[quantizer]") {
  std::vector<std::int8_t> q(3);
  std::vector<float> w = {1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f};
  REQUIRE_THROWS_WITH(quantize_channel(w.data(), 3, 4, q.data()), Catch::Contains("weight 1 is not finite"));
  w[1] = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_AS(quantize_channel(w.data(), 3, 4, q.data()), chord::Error);
  w[1] = 0.5f;
  REQUIRE_THROWS_WITH(quantize_channel(w.data(), 3, 3, q.data()), Catch::Contains("bit-width 3"));
}

TEST_CASE("quantize_channels and fake_quantized agree channel by channel", "[quantizer]") {
  const std::size_t n = 17, k = 33;
  const auto w = test::random_normal(n * k, 5);
  const auto bits = test::random_bits(n, 6);
  const QuantizedChannels q = quantize_channels(w.data(), n, k, bits.data());
  const auto fake = fake_quantized(q);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::int8_t> codes(k);
    const float s = quantize_channel(w.data() + i * k, k, bits[i], codes.data());
    REQUIRE(s == q.scales[i]);
    for (std::size_t j = 0; j < k; ++j) {
      REQUIRE(codes[j] == q.codes[i * k + j]);
      REQUIRE(fake[i * k + j] == float(codes[j]) * s);
    }
  }
}

namespace {
// A channel of n weights of one kind (see the test below); the kinds are the awkward ones for the
// fast path: exact ties (codes at k + 1/2 of the scale), integers, denormals, huge values, heavy tails.
std::vector<float> channel_of_kind(int kind, std::size_t n, std::uint64_t seed) {
  nn::Rng rng(seed, 11);
  std::vector<float> w(n);
  for (std::size_t j = 0; j < n; ++j) {
    const float g = rng.normal();
    switch (kind) {
      case 0: w[j] = 0.05f * g; break;                                      // Gaussian
      case 1: w[j] = g / std::sqrt(std::fabs(rng.normal()) + 1e-3f); break;  // Student-t-like, 1 dof-ish
      case 2: w[j] = 1e-40f * g; break;                                     // denormals
      case 3: w[j] = 3e38f * std::tanh(g); break;                           // near FLT_MAX
      case 4: w[j] = float(std::int32_t(rng.below(255)) - 127) + 0.5f; break;  // ties at max-abs scale
      case 5: w[j] = float(std::int32_t(rng.below(15)) - 7); break;         // integers
      case 6: w[j] = j % 3 == 0 ? 0.0f : -0.37f; break;                     // constant and zeros
      case 7: w[j] = j == 0 ? 1.0f : 1e-7f * g; break;                      // one outlier
      case 8: w[j] = (j % 2 ? -1.0f : 1.0f) * float(rng.below(4)) * 0.25f; break;  // few levels, signed zeros
      default: w[j] = g * std::pow(10.0f, float(rng.below(60)) - 30.0f); break;  // scales 1e-30 .. 1e29
    }
    if (kind == 6 && j % 5 == 1) w[j] = -0.0f;
  }
  if (kind == 4 && n > 0) w[0] = 127.5f;  // max-abs scale 127.5 / 127 for 8 bits, exactly k + 1/2 for others
  return w;
}

void require_same_as_reference(const std::vector<float>& w, int bits, const ClipSearch& search, const std::string& what) {
  const std::size_t n = w.size();
  std::vector<std::int8_t> q(n, 99), q_ref(n, 77);
  const float s = quantize_channel(w.data(), n, bits, q.data(), search);
  const float s_ref = test::reference_quantize_channel(w.data(), n, bits, q_ref.data(), search);
  INFO(what << " bits " << bits << " n " << n << " steps " << search.steps << " min_ratio " << search.min_ratio
            << " refinements " << search.refinements << " scale " << s << " reference " << s_ref);
  REQUIRE(std::memcmp(&s, &s_ref, sizeof s) == 0);  // bit for bit
  REQUIRE(q == q_ref);
}
}  // namespace

TEST_CASE("quantize_channel: codes and scales bit-identical to the plain definition", "[quantizer]") {
  std::size_t channels = 0;
  for (int kind = 0; kind < 10; ++kind)
    for (int bits : {0, 2, 4, 8})
      for (std::size_t n = 1; n <= 300; n += (n < 40 ? 1 : 13)) {
        const auto w = channel_of_kind(kind, n, 1000 * std::uint64_t(kind) + 10 * n + std::uint64_t(bits));
        require_same_as_reference(w, bits, {}, "kind " + std::to_string(kind));
        ++channels;
      }
  // Other searches, including ones whose candidates leave the fast path (alpha <= 0, alpha > 1).
  const ClipSearch searches[] = {{1, 0.25, 2}, {8, 0.5, 0}, {64, 0.1, 4}, {5, -0.5, 2}, {7, 2.0, 3}, {3, 1e-310, 1}};
  for (const ClipSearch& search : searches)
    for (int kind = 0; kind < 10; ++kind)
      for (int bits : {2, 4, 8})
        for (std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(64), std::size_t(250)}) {
          const auto w = channel_of_kind(kind, n, 77 * std::uint64_t(kind) + n + std::uint64_t(bits));
          require_same_as_reference(w, bits, search, "kind " + std::to_string(kind));
          ++channels;
        }
  // Random widths of many Gaussian rows, as a layer's: the case the device runs.
  for (std::uint64_t seed = 1; seed <= 400; ++seed) {
    const auto w = test::random_normal(64, std::uint32_t(seed), 0.02f);
    require_same_as_reference(w, 2 << (seed % 3), {}, "row " + std::to_string(seed));
    ++channels;
  }
  REQUIRE(channels > 2000);
}
