// Highway backend: every compiled table (one per Highway target) against the reference, for every
// packed width, on random and awkward shapes: int8 path exact (raw int32 sums and fp32 outputs
// bit for bit), fp32 path within the dot-product rounding bound. Tables the CPU cannot run are only
// listed (Catch2 2.x has no SKIP); on x86-64 with AVX2 and aarch64 at least one table must run.
// Built with -ffp-contract=off like the kernels, so the oracle's epilogue rounds as theirs does.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chord/backends/highway/tables.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"
#include "test_helpers.hpp"

using namespace chord;

namespace {

std::vector<KernelTable> runnable_tables() {
  std::vector<KernelTable> tables;
  for (const KernelTable& t : backends::highway::kernel_tables()) {
    if (cpu_supports(t.isa))
      tables.push_back(t);
    else
      WARN("highway table " << isa_name(t.isa) << " is compiled but this CPU cannot run it: not tested");
  }
  return tables;
}

std::vector<std::int8_t> random_codes(std::size_t count, int bits, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(code_min(bits), code_max(bits));
  std::vector<std::int8_t> codes(count);
  for (auto& c : codes) c = static_cast<std::int8_t>(dist(rng));
  return codes;
}

// One homogeneous weight matrix and its codes, the oracle's view (never goes through panels).
struct Weights {
  int bits;
  std::size_t n, k;
  std::vector<std::int8_t> codes;  // [n, k]
  std::vector<float> scales;       // [n]
  PackedMatrix packed;
};
Weights make_weights(int bits, std::size_t n, std::size_t k, std::uint32_t seed) {
  Weights w{bits, n, k, random_codes(n * k, bits, seed), {}, {}};
  w.scales = test::random_normal(n, seed + 1, 0.05f);
  w.packed = PackedMatrix(bits, w.codes.data(), w.scales.data(), n, k);
  return w;
}

// Where the kernels write: a permutation of the channels into a wider output row (ldy > n), so
// that the column mapping, the row stride and bias-by-column are all exercised.
struct Layout {
  std::size_t ldy;
  std::vector<std::uint32_t> columns;  // [n]
  std::vector<float> bias;             // [ldy]
};
Layout make_layout(std::size_t n, std::uint32_t seed) {
  Layout l{n + 3, {}, test::random_normal(n + 3, seed)};
  for (std::size_t c = 0; c < n; ++c) l.columns.push_back(static_cast<std::uint32_t>(c + 2));
  std::shuffle(l.columns.begin(), l.columns.end(), std::mt19937(seed));
  return l;
}

// |fl(sum) - sum| <= gamma_{k+2} * sum |terms|, for the dot product and the scale and bias steps.
double f32_tolerance(const float* x, const Weights& w, std::size_t c, float bias) {
  double abs_dot = 0.0;
  for (std::size_t j = 0; j < w.k; ++j) abs_dot += std::fabs(double(x[j]) * w.codes[c * w.k + j]);
  const double gamma = (w.k + 2) * double(FLT_EPSILON) / (1.0 - (w.k + 2) * double(FLT_EPSILON));
  return 2.0 * gamma * std::fabs(w.scales[c]) * abs_dot + 2.0 * FLT_EPSILON * std::fabs(bias) + 1e-30;
}

// Runs both kernels of `table` for width w.bits on (a, x) and checks them against the oracle.
void check_kernels(const KernelTable& table, const Weights& w, const QuantizedRows& a, const float* x,
                   std::size_t ldx, const Layout& l) {
  const std::size_t m = a.m(), n = w.n, k = w.k;
  const float kUntouched = -12345.0f;  // outputs outside the written columns must keep it

  std::vector<std::int32_t> acc(m * l.ldy, -7);
  table.s8(w.bits)(a, w.packed, GemmOutput{nullptr, acc.data(), l.ldy, l.columns.data(), nullptr});
  std::vector<float> y(m * l.ldy, kUntouched);
  table.s8(w.bits)(a, w.packed, GemmOutput{y.data(), nullptr, l.ldy, l.columns.data(), l.bias.data()});
  std::vector<float> yf(m * l.ldy, kUntouched);
  table.f32(w.bits)(x, ldx, m, w.packed, GemmOutput{yf.data(), nullptr, l.ldy, l.columns.data(), l.bias.data()});

  std::vector<bool> written(l.ldy, false);
  for (std::uint32_t col : l.columns) written[col] = true;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t c = 0; c < n; ++c) {
      const std::size_t col = l.columns[c];
      std::int32_t dot = 0;
      double dot_f = 0.0;
      for (std::size_t j = 0; j < k; ++j) {
        dot += std::int32_t(a.row(i)[j]) * w.codes[c * k + j];
        dot_f += double(x[i * ldx + j]) * w.codes[c * k + j];
      }
      INFO("row " << i << " channel " << c << " (column " << col << ")");
      REQUIRE(acc[i * l.ldy + col] == dot);
      REQUIRE(y[i * l.ldy + col] == ref::dequantize_acc(dot, a.scales()[i], w.scales[c], l.bias[col]));
      const double expected = double(w.scales[c]) * dot_f + l.bias[col];
      REQUIRE(std::fabs(yf[i * l.ldy + col] - expected) <= f32_tolerance(x + i * ldx, w, c, l.bias[col]));
    }
    for (std::size_t col = 0; col < l.ldy; ++col)
      if (!written[col]) {
        REQUIRE(acc[i * l.ldy + col] == -7);
        REQUIRE(y[i * l.ldy + col] == kUntouched);
        REQUIRE(yf[i * l.ldy + col] == kUntouched);
      }
  }
}

}  // namespace

TEST_CASE("highway: one complete table per compiled target", "[highway]") {
  const std::vector<KernelTable> tables = backends::highway::kernel_tables();
  std::set<Isa> isas;
  for (const KernelTable& t : tables) {
    INFO("table " << isa_name(t.isa));
    REQUIRE(std::string(t.backend) == "highway");
    REQUIRE(t.isa != Isa::scalar);  // the scalar backend covers Highway's scalar fallback
    REQUIRE(isas.insert(t.isa).second);
    for (int bits : {8, 4, 2}) {
      REQUIRE(t.s8(bits) != nullptr);
      REQUIRE(t.f32(bits) != nullptr);
    }
  }
#if defined(__x86_64__)
  if (cpu_supports(Isa::avx2)) REQUIRE(isas.count(Isa::avx2) == 1);
#elif defined(__aarch64__)
  REQUIRE(isas.count(Isa::neon) == 1);
#if defined(__GNUC__) && !defined(__clang__)
  REQUIRE(isas.count(Isa::neon_dotprod) == 1);
#endif
  if (cpu_supports(Isa::sve)) REQUIRE(isas.count(Isa::sve) == 1);
#endif
  REQUIRE(!runnable_tables().empty());
}

TEST_CASE("highway kernels equal the reference on awkward shapes", "[highway]") {
  for (const KernelTable& table : runnable_tables())
    for (int bits : {8, 4, 2})
      for (std::size_t m : {0, 1, 2, 3, 4, 5, 7, 9})
        for (std::size_t n : {0, 1, 15, 16, 17, 33})
          for (std::size_t k : {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 130}) {
            INFO(isa_name(table.isa) << " w" << bits << " m " << m << " n " << n << " k " << k);
            const auto seed = std::uint32_t(bits * 1000003 + m * 10007 + n * 101 + k);
            const Weights w = make_weights(bits, n, k, seed);
            const auto x = test::random_normal(m * k, seed + 7);
            const QuantizedRows a = quantize_rows(x.data(), m, k);
            check_kernels(table, w, a, x.data(), k, make_layout(n, seed + 9));
          }
}

TEST_CASE("highway kernels: long k across k-blocks, many row blocks, unaligned fp32 rows", "[highway]") {
  // k = 2100 spans several 128-panel k-blocks at every width and ends in a partial k-group; the fp32
  // rows start one float past an aligned address and have an odd stride (their tail is never read).
  for (const KernelTable& table : runnable_tables())
    for (int bits : {8, 4, 2}) {
      const std::size_t m = 11, n = 40, k = 2100, ldx = k + 5;
      INFO(isa_name(table.isa) << " w" << bits);
      const Weights w = make_weights(bits, n, k, std::uint32_t(bits + 50));
      std::vector<float> storage(1 + m * ldx, std::nanf(""));  // NaN wherever x must not be read
      const auto values = test::random_heavy_tailed(m * k, 77);
      for (std::size_t i = 0; i < m; ++i)
        std::copy(values.begin() + i * k, values.begin() + (i + 1) * k, storage.begin() + 1 + i * ldx);
      const float* x = storage.data() + 1;
      QuantizedRows a;
      quantize_rows(x, m, k, ldx, a);
      check_kernels(table, w, a, x, ldx, make_layout(n, 5));
    }
}

TEST_CASE("highway kernels: extreme codes and activations do not saturate", "[highway]") {
  // |q| = 2^(b-1) against |a| = 127 is the largest product; all of one sign is the largest sum,
  // the case where 16-bit pair sums (AVX2 maddubs, NEON smull + addp) would overflow if mishandled.
  for (const KernelTable& table : runnable_tables())
    for (int bits : {8, 4, 2})
      for (int sign : {1, -1}) {
        const std::size_t m = 3, n = 17, k = 1030;
        INFO(isa_name(table.isa) << " w" << bits << " sign " << sign);
        Weights w = make_weights(bits, n, k, 3);
        for (std::size_t c = 0; c < n; ++c)
          for (std::size_t j = 0; j < k; ++j)  // channel 0 all code_min, channel 1 all code_max, ...
            w.codes[c * k + j] = static_cast<std::int8_t>(c % 3 == 0 ? code_min(bits)
                                                          : c % 3 == 1 ? code_max(bits)
                                                                       : (j % 2 ? code_min(bits) : code_max(bits)));
        w.packed = PackedMatrix(bits, w.codes.data(), w.scales.data(), n, k);
        std::vector<float> x(m * k);
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t j = 0; j < k; ++j) x[i * k + j] = float(sign) * (i == 2 && j % 2 ? -1.0f : 1.0f);
        const QuantizedRows a = quantize_rows(x.data(), m, k);
        REQUIRE(std::abs(int(a.codes()[0])) == 127);
        check_kernels(table, w, a, x.data(), k, make_layout(n, 11));
      }
}

TEST_CASE("highway kernels run mixed matrices through ops exactly like the reference", "[highway][mixed]") {
  for (const KernelTable& table : runnable_tables())
    for (std::size_t m : {1, 4, 6})
      for (std::size_t n : {1, 17, 50})
        for (std::size_t k : {1, 19, 64, 100}) {
          INFO(isa_name(table.isa) << " m " << m << " n " << n << " k " << k);
          const auto seed = std::uint32_t(m * 7919 + n * 31 + k);
          const auto wv = test::random_heavy_tailed(n * k, seed);
          const auto x = test::random_normal(m * k, seed + 1);
          const auto bias = test::random_normal(n, seed + 2);
          const auto bits = test::random_bits(n, seed + 3);
          const MixedMatrix mixed(wv.data(), n, k, bits.data());
          const QuantizedRows a = quantize_rows(x.data(), m, k);

          std::vector<std::int32_t> acc(m * n, -1), acc_ref(m * n, -2);
          ops::mixed_gemm_s8_acc(table, a, mixed, acc.data());
          ref::mixed_gemm_s8_acc(a, mixed, acc_ref.data());
          REQUIRE(acc == acc_ref);

          std::vector<float> y(m * n, -1.0f), y_ref(m * n, -2.0f);
          ops::mixed_gemm_s8(table, a, mixed, bias.data(), y.data(), n);
          ref::mixed_gemm_s8(a, mixed, bias.data(), y_ref.data(), n);
          REQUIRE(y == y_ref);
        }
}

TEST_CASE("highway kernels reject inconsistent operands with chord::Error", "[highway]") {
  for (const KernelTable& table : runnable_tables()) {
    const Weights w = make_weights(4, 5, 20, 1);
    const auto x = test::random_normal(2 * 21, 2);
    const QuantizedRows wrong_k = quantize_rows(x.data(), 2, 21);
    std::vector<float> y(2 * 5);
    REQUIRE_THROWS_AS(table.s8(4)(wrong_k, w.packed, GemmOutput{y.data(), nullptr, 5, nullptr, nullptr}), Error);
    const QuantizedRows a = quantize_rows(x.data(), 2, 20);
    REQUIRE_THROWS_AS(table.s8(8)(a, w.packed, GemmOutput{y.data(), nullptr, 5, nullptr, nullptr}), Error);
    REQUIRE_THROWS_AS(table.s8(4)(a, w.packed, GemmOutput{}), Error);
    // A row stride below k is not an error: overlapping rows are Caser's convolution windows (the
    // GemmF32Fn contract; tested for every table in test_kernels_ops.cpp).
  }
}
