// The row kernels and ops of every usable kernel table (quantize_rows, layernorm, softmax, ReLU, GELU,
// residual add, attention, Caser convolutions, linear layers) against the reference ops (ref/), on
// ruy-style awkward shapes: the integer paths exactly (int8 codes, scales and sums; W-A8 layers and
// convolutions bit for bit), fp32 within bounds derived from the operands (gamma_n summation bounds,
// softmax perturbation bounds), never a magic epsilon. Inputs sit one float past an aligned address
// with NaN after them, outputs between sentinels: a kernel that reads or writes past its row shows.
// Each check names its kernel and table like XNNPACK: softmax/avx2/xsimd/n:17.
//
// Compiled into test_kernels (tests/CMakeLists.txt) with -ffp-contract=off, like the kernels.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/quantize_rows.hpp"
#include "chord/ops/attention.hpp"
#include "chord/ops/conv.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ops/elementwise.hpp"
#include "chord/nn/gemm_f32.hpp"
#include "chord/ops/linear.hpp"
#include "chord/ops/norm.hpp"
#include "chord/ref/activation.hpp"
#include "chord/ref/attention.hpp"
#include "chord/ref/conv.hpp"
#include "chord/ref/linear.hpp"
#include "chord/ref/norm.hpp"
#include "test_helpers.hpp"

using namespace chord;

namespace {

const std::vector<KernelTable>& tables() {
  static const std::vector<KernelTable> usable = usable_kernel_tables("");
  return usable;
}

std::string name(const char* op, const KernelTable& t, const std::string& shape) {
  return std::string(op) + "/" + std::string(isa_name(t.isa)) + "/" + t.backend + "/" + shape;
}

constexpr double kEps = FLT_EPSILON;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kSentinel = -12345.0f;

// gamma_n = n eps / (1 - n eps): the relative error bound of an n-term fp32 sum (Higham).
double gamma(std::size_t n) { return double(n) * kEps / (1.0 - double(n) * kEps); }

// n floats one past an aligned address, followed by NaN (a kernel reading past n poisons its result).
struct Input {
  std::vector<float> storage;
  explicit Input(const std::vector<float>& values) : storage(values.size() + 9, kNaN) {
    std::copy(values.begin(), values.end(), storage.begin() + 1);
  }
  const float* data() const { return storage.data() + 1; }
};
// n floats one past an aligned address between sentinels: what a kernel must not touch keeps its value.
struct Output {
  std::vector<float> storage;
  explicit Output(std::size_t n) : storage(n + 9, kSentinel) {}
  float* data() { return storage.data() + 1; }
  bool guards_intact(std::size_t n) const {
    if (storage[0] != kSentinel) return false;
    for (std::size_t i = n + 1; i < storage.size(); ++i)
      if (storage[i] != kSentinel) return false;
    return true;
  }
};

// The sizes of the brief: ruy's 1..10, 15..17, 31..33, 63..65, and 200.
const std::vector<std::size_t> kLengths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200};

// The first of n outputs (got[i * stride]... rows of `width` at row stride `stride`) farther from the
// expected value than its tolerance (0: exactly equal; NaN never passes), described; "" if none.
// One REQUIRE per output instead of one per element keeps the suite fast under qemu.
std::string first_outside(const float* got, const float* want, const std::vector<double>& tol, std::size_t n,
                          std::size_t width = 0, std::size_t stride = 0) {
  if (width == 0) width = stride = n > 0 ? n : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const float g = got[i / width * stride + i % width];
    if (std::fabs(double(g) - double(want[i])) <= tol[i]) continue;
    std::ostringstream why;
    why.precision(9);
    why << "element " << i << " (row " << i / width << ", column " << i % width << ") = " << g << ", expected "
        << want[i] << ", tolerance " << tol[i];
    return why.str();
  }
  return "";
}

}  // namespace

TEST_CASE("ops kernels: every usable table has every row kernel", "[kernels][ops]") {
  REQUIRE(!tables().empty());
  for (const KernelTable& t : tables()) {
    INFO(isa_name(t.isa) << "/" << t.backend);
    REQUIRE(t.quantize_rows != nullptr);
    REQUIRE(t.layernorm != nullptr);
    REQUIRE(t.softmax != nullptr);
    REQUIRE(t.relu != nullptr);
    REQUIRE(t.gelu != nullptr);
    REQUIRE(t.add != nullptr);
    REQUIRE(t.attention != nullptr);
    REQUIRE(t.attention_row != nullptr);
  }
  // A table without them (a hand-built one) is refused by name, not called through null.
  KernelTable bare;
  bare.backend = "bare";
  std::vector<float> x(4, 1.0f), y(4);
  REQUIRE_THROWS_WITH(ops::gelu(bare, x.data(), 4, y.data()), Catch::Contains("scalar/bare has no gelu kernel"));
  REQUIRE_THROWS_WITH(ops::layernorm(bare, x.data(), 1, 4, nullptr, nullptr, 1e-5f, y.data()),
                      Catch::Contains("no layernorm"));
}

// ------------------------------------------------------------------------------------------------
// quantize_rows: bit-identical to core/quantize_rows.hpp

namespace {

// Rows that stress every step: normal values, heavy tails, exact ties (a row whose max is 127 has
// inv = 1, so the codes are nearbyint(x) itself: ties must go to even), zeros and -0, rows too small
// to invert (max < 127 / FLT_MAX), subnormals, values near FLT_MAX.
std::vector<float> quantize_values(std::size_t m, std::size_t k, std::uint32_t seed) {
  std::vector<float> x = test::random_normal(m * k, seed, 3.0f);
  const std::vector<float> heavy = test::random_heavy_tailed(m * k, seed + 1);
  for (std::size_t r = 0; r < m; ++r) {
    float* row = x.data() + r * k;
    switch (r % 8) {
      case 1: std::copy(heavy.begin() + r * k, heavy.begin() + (r + 1) * k, row); break;
      case 2:  // ties: max 127, so inv = 1 and x * inv = x
        for (std::size_t j = 0; j < k; ++j) row[j] = (float(j % 64) - 32.0f) + 0.5f;
        if (k > 0) row[0] = 127.0f;
        if (k > 1) row[1] = -126.5f;
        break;
      case 3: std::fill(row, row + k, 0.0f); if (k > 0) row[k / 2] = -0.0f; break;
      case 4: for (std::size_t j = 0; j < k; ++j) row[j] *= 1e-38f; break;   // inv overflows: zero row
      case 5: for (std::size_t j = 0; j < k; ++j) row[j] *= 3e-37f; break;   // just invertible, subnormals
      case 6: for (std::size_t j = 0; j < k; ++j) row[j] *= 1e37f; break;    // near FLT_MAX
      default: break;
    }
  }
  return x;
}

std::string first_difference(const QuantizedRows& got, const QuantizedRows& want) {
  if (got.m() != want.m() || got.k() != want.k() || got.stride() != want.stride()) return "shape differs";
  for (std::size_t r = 0; r < want.m(); ++r) {
    if (std::memcmp(&got.scales()[r], &want.scales()[r], sizeof(float)) != 0)
      return "scale of row " + std::to_string(r) + ": " + std::to_string(got.scales()[r]) + " vs " +
             std::to_string(want.scales()[r]);
    if (got.sums()[r] != want.sums()[r]) return "sum of row " + std::to_string(r);
    for (std::size_t j = 0; j < want.stride(); ++j)
      if (got.row(r)[j] != want.row(r)[j])
        return "code (" + std::to_string(r) + ", " + std::to_string(j) + "): " + std::to_string(got.row(r)[j]) +
               " vs " + std::to_string(want.row(r)[j]);
  }
  return "";
}

}  // namespace

TEST_CASE("ops: quantize_rows equals core's codes, scales and sums bit for bit", "[kernels][ops][quantize]") {
  std::uint32_t seed = 100;
  std::vector<std::size_t> ks = test::kAwkwardSizes;
  for (std::size_t k : {0, 50, 100, 127, 129, 257, 1000}) ks.push_back(k);
  for (std::size_t m : {0, 1, 2, 3, 8, 17})
    for (std::size_t k : ks) {
      const std::vector<float> values = quantize_values(m, k, seed++);
      // Three layouts: contiguous, a wider stride (NaN between rows), overlapping windows (ldx < k).
      const std::size_t overlap = k > 3 ? k / 3 : 1;
      for (std::size_t ldx : {k, k + 3, overlap}) {
        if (ldx == 0) continue;
        std::vector<float> laid((m > 0 ? (m - 1) * ldx + k : 0) + 1, kNaN);
        for (std::size_t r = 0; r < m; ++r)
          for (std::size_t j = 0; j < k; ++j)
            if (ldx >= k || r == 0 || j >= k - ldx) laid[1 + r * ldx + j] = values[r * k + j];
        const float* x = laid.data() + 1;
        QuantizedRows want;
        quantize_rows(x, m, k, ldx, want);
        for (const KernelTable& t : tables()) {
          INFO(name("quantize_rows", t, std::to_string(m) + ":" + std::to_string(k) + " ldx " + std::to_string(ldx)));
          const std::int8_t stale[3] = {77, 77, 77};
          const float stale_scale = 1.0f;
          QuantizedRows got = QuantizedRows::from_codes(stale, 1, 3, 3, &stale_scale);  // must not survive
          ops::quantize_rows(t, x, m, k, ldx, got);
          REQUIRE(first_difference(got, want) == "");
          // The kernel itself, with a longer stride than the ops use: the padding bytes are zeroed.
          const std::size_t stride = want.stride() + 5;
          std::vector<std::int8_t> codes(m * stride + 1, 99);
          std::vector<float> scales(m + 1, kSentinel);
          std::vector<std::int32_t> sums(m + 1, -7);
          REQUIRE(t.quantize_rows(x, ldx, m, k, codes.data(), stride, scales.data(), sums.data()) == m);
          for (std::size_t r = 0; r < m; ++r) {
            for (std::size_t j = 0; j < stride; ++j) REQUIRE(codes[r * stride + j] == (j < k ? want.row(r)[j] : 0));
            REQUIRE(sums[r] == want.sums()[r]);
          }
          REQUIRE(codes[m * stride] == 99);
          REQUIRE(scales[m] == kSentinel);
          REQUIRE(sums[m] == -7);
        }
      }
    }
}

TEST_CASE("ops: quantize_rows refuses non-finite activations, naming the first one", "[kernels][ops][quantize]") {
  for (float bad : {kNaN, kInf, -kInf}) {
    const std::size_t m = 4, k = 37;
    std::vector<float> x = test::random_normal(m * k, 5);
    x[2 * k + 30] = bad;
    x[3 * k + 1] = bad;
    for (const KernelTable& t : tables()) {
      INFO(name("quantize_rows", t, "non-finite " + std::to_string(bad)));
      QuantizedRows out;
      REQUIRE_THROWS_WITH(ops::quantize_rows(t, x.data(), m, k, k, out),
                          Catch::Contains("quantize_rows: activation (2, 30) is not finite"));
      std::vector<std::int8_t> codes(m * 48);
      std::vector<float> scales(m);
      std::vector<std::int32_t> sums(m);
      REQUIRE(t.quantize_rows(x.data(), k, m, k, codes.data(), 48, scales.data(), sums.data()) == 2);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// layernorm, softmax, ReLU, GELU, residual add

namespace {

// Bound on |layernorm_fp32 - exact| for one row (the reference rounds its double result once more):
//   mean: |dmu| <= gamma_{d+1} sum|x| / d;  variance of the shifted deviations: sigma^2 + dmu^2, plus
//   gamma_{d+3} relative; 1/sqrt: 3 eps; z = (x - mu') / S': |z| rho + dmu / S + 2 eps |z|;
//   y = z g + b: two more roundings; doubled for the second-order terms this linearization drops.
std::vector<double> layernorm_tolerance(const float* x, std::size_t d, const float* gamma_w, const float* beta,
                                        float eps, const float* y_ref) {
  double mean = 0.0, abs_sum = 0.0;
  for (std::size_t j = 0; j < d; ++j) mean += x[j], abs_sum += std::fabs(x[j]);
  mean /= double(d);
  double var = 0.0;
  for (std::size_t j = 0; j < d; ++j) var += (x[j] - mean) * (x[j] - mean);
  var /= double(d);
  const double dmu = gamma(d + 1) * abs_sum / double(d) + kEps * std::fabs(mean);
  const double s2 = var + double(eps);
  const double rho = 0.5 * (dmu * dmu + gamma(d + 3) * (var + dmu * dmu)) / s2 + 3 * kEps;
  const double s = std::sqrt(s2);
  std::vector<double> tol(d);
  for (std::size_t j = 0; j < d; ++j) {
    const double z = (x[j] - mean) / s, g = gamma_w ? gamma_w[j] : 1.0, b = beta ? beta[j] : 0.0;
    const double dz = std::fabs(z) * (rho + 2 * kEps) + dmu / s * (1 + rho);
    tol[j] = 2 * (std::fabs(g) * dz + 2 * kEps * (std::fabs(z * g) + std::fabs(b)) + kEps * std::fabs(y_ref[j])) + 1e-37;
  }
  return tol;
}

}  // namespace

TEST_CASE("ops: layernorm within the fp32 two-pass bound of the reference", "[kernels][ops][norm]") {
  std::vector<std::size_t> ds = test::kAwkwardSizes;
  for (std::size_t d : {50, 100, 200, 1000}) ds.push_back(d);
  std::uint32_t seed = 300;
  for (std::size_t d : ds)
    for (std::size_t m : {1, 3})
      for (int variant = 0; variant < 3; ++variant) {
        // variant 0: N(0, 1) with gamma, beta; 1: a large mean over a small spread (cancellation), no
        // affine; 2: a constant row (variance 0: eps alone) with gamma only.
        std::vector<float> x = test::random_normal(m * d, seed++);
        if (variant == 1)
          for (float& v : x) v = 100.0f + 0.01f * v;
        if (variant == 2) std::fill(x.begin(), x.end(), 3.25f);
        const std::vector<float> g = test::random_normal(d, seed++), b = test::random_normal(d, seed++);
        const float* gp = variant == 1 ? nullptr : g.data();
        const float* bp = variant == 0 ? b.data() : nullptr;
        const float eps = 1e-5f;
        std::vector<float> want(m * d);
        ref::layernorm(x.data(), m, d, gp, bp, eps, want.data());
        const Input in(x);
        for (const KernelTable& t : tables()) {
          INFO(name("layernorm", t, std::to_string(m) + ":" + std::to_string(d) + " variant " + std::to_string(variant)));
          Output out(m * d);
          ops::layernorm(t, in.data(), m, d, gp, bp, eps, out.data());
          REQUIRE(out.guards_intact(m * d));
          for (std::size_t i = 0; i < m; ++i) {
            const std::vector<double> tol = layernorm_tolerance(&x[i * d], d, gp, bp, eps, &want[i * d]);
            INFO("row " << i);
            REQUIRE(first_outside(out.data() + i * d, &want[i * d], tol, d) == "");
          }
          std::vector<float> inplace = x;  // y aliasing x
          ops::layernorm(t, inplace.data(), m, d, gp, bp, eps, inplace.data());
          for (std::size_t i = 0; i < m * d; ++i) REQUIRE(inplace[i] == out.data()[i]);
        }
      }
  std::vector<float> x(8, 1.0f);
  REQUIRE_THROWS_WITH(ops::layernorm(tables().front(), x.data(), 1, 0, nullptr, nullptr, 1e-5f, x.data()),
                      Catch::Contains("d = 0"));
  REQUIRE_THROWS_WITH(ops::layernorm(tables().front(), x.data(), 1, 8, nullptr, nullptr, 0.0f, x.data()),
                      Catch::Contains("eps must be positive"));
}

namespace {

// Bound on |softmax_fp32[j] - softmax_ref[j]| for one row x: [n]: x_j - max rounded in fp32 (half an
// eps of |x_j - max| in the exponent), exp within 2 ulp, the fp32 sum gamma_n, the reciprocal and the
// product; the reference rounds once. Entries below FLT_MIN may flush: 1e-37 absolute.
double softmax_tolerance(const float* x, std::size_t n, std::size_t j, float p_ref) {
  if (x[j] == -kInf) return 0.0;  // masked: exactly 0
  float max = -kInf;
  for (std::size_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  return double(p_ref) * ((double(max) - x[j]) * kEps + 10 * kEps + 2 * gamma(n + 2)) + 1e-37;
}

// Logits for one softmax row: N(0, scale^2), with masked entries (-inf) where mask_every divides j+1.
std::vector<float> logits(std::size_t n, std::uint32_t seed, float scale, std::size_t mask_every) {
  std::vector<float> x = test::random_normal(n, seed, scale);
  if (mask_every > 0)
    for (std::size_t j = 0; j < n; ++j)
      if ((j + 1) % mask_every == 0) x[j] = -kInf;
  return x;
}

}  // namespace

TEST_CASE("ops: softmax rows (masked, causal, in place) within the fp32 bound", "[kernels][ops][norm]") {
  std::uint32_t seed = 500;
  std::vector<std::size_t> ns = kLengths;
  ns.insert(ns.begin(), 0);
  for (std::size_t n : ns)
    for (float scale : {1.0f, 30.0f})
      for (std::size_t mask_every : {0, 3}) {
        const std::size_t m = 3;
        std::vector<float> x;
        for (std::size_t i = 0; i < m; ++i) {
          const std::vector<float> row = logits(n, seed++, scale, mask_every);
          x.insert(x.end(), row.begin(), row.end());
        }
        std::vector<float> want(m * n);
        ref::softmax(x.data(), m, n, want.data());
        const Input in(x);
        for (const KernelTable& t : tables()) {
          INFO(name("softmax", t, "n:" + std::to_string(n) + " scale " + std::to_string(scale) + " mask every " +
                                      std::to_string(mask_every)));
          Output out(m * n);
          ops::softmax(t, in.data(), m, n, out.data());
          REQUIRE(out.guards_intact(m * n));
          std::vector<double> tol(m * n);  // masked entries: 0, exactly
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j) tol[i * n + j] = softmax_tolerance(x.data() + i * n, n, j, want[i * n + j]);
          REQUIRE(first_outside(out.data(), want.data(), tol, m * n, n, n) == "");
          // Causal: row i normalizes entries 0..i; the rest are exact zeros.
          Output causal(m * n);
          ops::causal_softmax(t, in.data(), m, n, causal.data());
          REQUIRE(causal.guards_intact(m * n));
          for (std::size_t i = 0; i < m; ++i) {
            const std::size_t count = std::min(n, i + 1);
            std::vector<float> prefix(n, 0.0f);  // exact zeros after the causal limit
            ref::softmax_row(x.data() + i * n, count, prefix.data());
            std::vector<double> row_tol(n, 0.0);
            for (std::size_t j = 0; j < count; ++j) row_tol[j] = softmax_tolerance(x.data() + i * n, count, j, prefix[j]);
            INFO("causal row " << i);
            REQUIRE(first_outside(causal.data() + i * n, prefix.data(), row_tol, n) == "");
          }
          std::vector<float> inplace = x;
          ops::softmax(t, inplace.data(), m, n, inplace.data());
          for (std::size_t i = 0; i < m * n; ++i) REQUIRE(inplace[i] == out.data()[i]);
        }
      }
}

TEST_CASE("ops: softmax edge rows: all masked -> zeros, NaN -> NaN, huge logits stay finite",
          "[kernels][ops][norm]") {
  for (const KernelTable& t : tables()) {
    INFO(name("softmax", t, "edges"));
    for (std::size_t n : {1, 5, 16, 17, 40}) {
      std::vector<float> masked(n, -kInf), y(n, 7.0f);
      ops::softmax_row(t, masked.data(), n, y.data());
      for (float v : y) REQUIRE(v == 0.0f);
      // NaN as in the reference: ignored by the max, then poisoning the sum (a row whose only
      // entries are NaN or masked has no max: zeros).
      std::vector<float> with_nan = test::random_normal(n, 9), nan_ref(n);
      with_nan[n / 2] = kNaN;
      ref::softmax_row(with_nan.data(), n, nan_ref.data());
      ops::softmax_row(t, with_nan.data(), n, y.data());
      for (std::size_t j = 0; j < n; ++j) REQUIRE(std::isnan(y[j]) == std::isnan(nan_ref[j]));
      REQUIRE(std::isnan(y[0]) == (n > 1));
      std::vector<float> only_nan(n, -kInf);
      only_nan[0] = kNaN;
      ops::softmax_row(t, only_nan.data(), n, y.data());
      for (float v : y) REQUIRE(v == 0.0f);
      std::vector<float> huge = test::random_normal(n, 10, 1e30f);
      ops::softmax_row(t, huge.data(), n, y.data());
      double sum = 0.0;
      for (float v : y) {
        REQUIRE(std::isfinite(v));
        sum += v;
      }
      REQUIRE(std::fabs(sum - 1.0) <= 4 * gamma(n + 2));
    }
  }
}

namespace {

// GELU inputs: a fine grid over [-20, 20] (both branches of the tail scheme and the whole underflow
// range), random values, and the special ones.
std::vector<float> gelu_inputs() {
  std::vector<float> x;
  for (int i = -20 * 64; i <= 20 * 64; ++i) x.push_back(float(i) / 64.0f + 1.0f / 4096.0f);
  for (float v : test::random_normal(1000, 77, 3.0f)) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-41f, -1e-41f, 0.999999f, 1.0f, 1.000001f, -1.0f, 14.999f, -14.999f,
                  15.0f, -15.0f, 40.0f, -40.0f, FLT_MAX, -FLT_MAX, kInf, -kInf, kNaN})
    x.push_back(v);
  return x;
}

}  // namespace

TEST_CASE("ops: ReLU and the residual add are exact, GELU within 16 eps of the exact erf form",
          "[kernels][ops][elementwise]") {
  const std::vector<float> all = gelu_inputs();
  std::vector<float> gelu_ref(all.size()), relu_ref(all.size());
  ref::gelu(all.data(), all.size(), gelu_ref.data());
  ref::relu(all.data(), all.size(), relu_ref.data());
  const std::vector<float> r = test::random_normal(all.size(), 78);
  for (const KernelTable& t : tables()) {
    // Every length 0..40 for the tails, then the whole set at once.
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(3), std::size_t(8), std::size_t(15),
                          std::size_t(17), std::size_t(33), std::size_t(40), all.size()}) {
      for (std::size_t start : {std::size_t(0), all.size() - n}) {
        INFO(name("gelu", t, "n:" + std::to_string(n) + " from " + std::to_string(start)));
        const Input in(std::vector<float>(all.begin() + start, all.begin() + start + n));
        Output g(n), relu(n), sum(n);
        ops::gelu(t, in.data(), n, g.data());
        ops::relu(t, in.data(), n, relu.data());
        const Input rr(std::vector<float>(r.begin() + start, r.begin() + start + n));
        ops::residual_add(t, in.data(), rr.data(), n, sum.data());
        REQUIRE(g.guards_intact(n));
        REQUIRE(relu.guards_intact(n));
        REQUIRE(sum.guards_intact(n));
        for (std::size_t j = 0; j < n; ++j) {
          const float x = all[start + j], want = gelu_ref[start + j], got = g.data()[j];
          INFO("gelu(" << x << ") = " << got << ", reference " << want);
          if (std::isnan(want)) {
            REQUIRE(std::isnan(got));
          } else if (std::isinf(want)) {
            REQUIRE(got == want);
          } else {
            REQUIRE(std::fabs(double(got) - want) <= 16 * kEps * std::fabs(want) + 1e-37);
          }
          const float relu_got = relu.data()[j];
          if (std::isnan(x)) {
            REQUIRE(std::isnan(relu_got));
          } else {
            REQUIRE(relu_got == relu_ref[start + j]);
            REQUIRE(std::signbit(relu_got) == std::signbit(relu_ref[start + j]));
          }
          const float expected_sum = x + r[start + j];
          if (std::isnan(expected_sum)) {
            REQUIRE(std::isnan(sum.data()[j]));
          } else {
            REQUIRE(sum.data()[j] == expected_sum);
          }
        }
      }
    }
    // In place (y = x) and the residual add into its own input.
    std::vector<float> v = test::random_normal(37, 79), w = v;
    ops::gelu(t, w.data(), w.size(), w.data());
    std::vector<float> expected(37);
    ops::gelu(t, v.data(), v.size(), expected.data());
    REQUIRE(w == expected);
    ops::residual_add(t, v.data(), w.data(), v.size(), w.data());
    for (std::size_t j = 0; j < v.size(); ++j) REQUIRE(w[j] == v[j] + expected[j]);
  }
}

// ------------------------------------------------------------------------------------------------
// attention core

namespace {

struct PaddingCase {
  std::string label;
  std::size_t left = 0;
  std::vector<std::uint8_t> mask;
  ref::KeyPadding view() const { return ref::KeyPadding{left, mask.empty() ? nullptr : mask.data()}; }
  bool is_key(std::size_t s) const { return s >= left && (mask.empty() || mask[s] != 0); }
};

// No padding, half of it left-padded, all but the last position left-padded, a random mask.
std::vector<PaddingCase> padding_cases(std::size_t length, std::uint32_t seed) {
  std::vector<PaddingCase> cases;
  cases.push_back({"none", 0, {}});
  if (length > 2) cases.push_back({"left " + std::to_string(length / 2), length / 2, {}});
  if (length > 1) cases.push_back({"left " + std::to_string(length - 1), length - 1, {}});
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> mask(length);
  for (auto& v : mask) v = std::uint8_t(rng() % 3 != 0);
  mask[0] = 0;
  cases.push_back({"mask", 0, mask});
  return cases;
}

// Per element of the context [L, d]: how far two fp32 evaluations of attention on the same projected
// q, k, v may lie apart (kernel vs reference): both are within
//   (expm1(2 delta) + 8 eps + 2 gamma_{n+2}) max_s |v_s|
// of the exact value, where delta bounds a score's error: the q . k dot products (gamma_{dh+3}),
// the kernel's fp32 x - max (eps/2 of the score range); softmax moves each weight by at most a factor
// exp(+-2 delta); exp, the sum and the reciprocal add 8 eps + gamma_n; the weighted sum gamma_{n+2}.
// dq, dk, dv (optional) are bounds on perturbations of the inputs themselves (for whole layers).
std::vector<double> attention_tolerance(const std::vector<float>& q, const std::vector<float>& k,
                                        const std::vector<float>& v, std::size_t length, std::size_t d,
                                        std::size_t heads, const PaddingCase& pad, const std::vector<double>* dq = nullptr,
                                        const std::vector<double>* dk = nullptr,
                                        const std::vector<double>* dv = nullptr, std::size_t query_rows = 0) {
  const std::size_t dh = d / heads, rows = query_rows ? query_rows : length;
  const double scale = 1.0 / std::sqrt(double(dh));
  std::vector<double> tol(rows * d, 0.0);
  for (std::size_t t = 0; t < rows; ++t) {
    const std::size_t count = query_rows ? length : t + 1;  // query_rows: each query sees every key
    for (std::size_t h = 0; h < heads; ++h) {
      double delta = 0.0, lo = 1e300, hi = -1e300;
      std::size_t keys = 0;
      for (std::size_t s = 0; s < count; ++s) {
        if (!pad.is_key(s)) continue;
        ++keys;
        double dot = 0.0, abs_dot = 0.0, perturbation = 0.0;
        for (std::size_t j = h * dh; j < (h + 1) * dh; ++j) {
          const double a = q[t * d + j], b = k[s * d + j];
          dot += a * b, abs_dot += std::fabs(a * b);
          if (dq) perturbation += (*dq)[t * d + j] * (std::fabs(b) + (*dk)[s * d + j]) + std::fabs(a) * (*dk)[s * d + j];
        }
        lo = std::min(lo, dot * scale), hi = std::max(hi, dot * scale);
        delta = std::max(delta, 2 * gamma(dh + 3) * (abs_dot + perturbation) * scale + perturbation * scale);
      }
      if (keys == 0) continue;  // zeros, exactly: tolerance 0
      delta += (hi - lo + 2 * delta) * kEps;
      for (std::size_t j = h * dh; j < (h + 1) * dh; ++j) {
        double max_v = 0.0, max_dv = 0.0;
        for (std::size_t s = 0; s < count; ++s)
          if (pad.is_key(s)) {
            max_v = std::max(max_v, std::fabs(double(v[s * d + j])));
            if (dv) max_dv = std::max(max_dv, (*dv)[s * d + j]);
          }
        tol[t * d + j] = 2 * (std::expm1(2 * delta) + 8 * kEps + 2 * gamma(keys + 2)) * (max_v + max_dv) + max_dv + 1e-30;
      }
    }
  }
  return tol;
}

struct AttentionInputs {
  std::vector<float> q, k, v;
};
AttentionInputs attention_inputs(std::size_t length, std::size_t d, std::uint32_t seed) {
  return {test::random_normal(length * d, seed, 1.5f), test::random_normal(length * d, seed + 1, 1.5f),
          test::random_normal(length * d, seed + 2)};
}

// d values per length: every small d for the short sequences, the SASRec ones for L = 200.
std::vector<std::size_t> dims_for(std::size_t length) {
  if (length <= 33) return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 48, 50, 64, 96};
  if (length <= 65) return {1, 7, 16, 48, 50, 64};
  return {50, 64};
}

}  // namespace

TEST_CASE("ops: attention_core (causal, heads, key padding) within the derived bound of the reference",
          "[kernels][ops][attention]") {
  std::uint32_t seed = 700;
  for (std::size_t length : kLengths)
    for (std::size_t d : dims_for(length))
      for (std::size_t heads : {1, 2, 3, 4}) {  // head widths that fill whole registers or not
        if (d % heads != 0 || (heads > 2 && length > 65)) continue;
        const AttentionInputs in = attention_inputs(length, d, seed);
        seed += 3;
        const Input q(in.q), k(in.k), v(in.v);
        for (const PaddingCase& pad : padding_cases(length, seed)) {
          std::vector<float> want(length * d);
          ref::attention_core(in.q.data(), in.k.data(), in.v.data(), length, d, heads, pad.view(), want.data());
          const std::vector<double> tol = attention_tolerance(in.q, in.k, in.v, length, d, heads, pad);
          for (const KernelTable& t : tables()) {
            const std::string shape = std::to_string(length) + ":" + std::to_string(d) + ":" + std::to_string(heads);
            INFO(name("attention", t, shape) << " padding " << pad.label);
            Output out(length * d);
            ops::attention_core(t, q.data(), k.data(), v.data(), length, d, heads, pad.view(), out.data());
            REQUIRE(out.guards_intact(length * d));
            // A query with no key has tolerance 0: zeros, exactly.
            REQUIRE(first_outside(out.data(), want.data(), tol, length * d, d, d) == "");
          }
        }
      }
}

TEST_CASE("ops: attention_row on a K/V cache is the last row of attention_core, within the derived bound",
          "[kernels][ops][attention]") {
  // The full sequence runs blocks of queries, a cached row its own routine: two fp32 evaluations of the
  // same attention, each within attention_tolerance's bound (which covers two evaluations) of the exact.
  std::uint32_t seed = 900;
  for (std::size_t length : {1, 2, 5, 16, 17, 33, 65, 200})
    for (std::size_t d : {3, 16, 50, 64})
      for (std::size_t heads : {1, 2}) {
        if (d % heads != 0 || (length == 200 && d < 50)) continue;
        const AttentionInputs in = attention_inputs(length, d, seed);
        seed += 3;
        for (const PaddingCase& pad : padding_cases(length, seed)) {
          const std::vector<double> tol = attention_tolerance(in.q, in.k, in.v, length, d, heads, pad);
          for (const KernelTable& t : tables()) {
            INFO(name("attention_row", t, std::to_string(length) + ":" + std::to_string(d) + ":" +
                                              std::to_string(heads)) << " padding " << pad.label);
            std::vector<float> full(length * d);
            ops::attention_core(t, in.q.data(), in.k.data(), in.v.data(), length, d, heads, pad.view(), full.data());
            ops::KvCache cache(d);
            for (std::size_t count = 1; count <= length; ++count) {
              cache.append(&in.k[(count - 1) * d], &in.v[(count - 1) * d]);
              const ref::KeyPadding cached{std::min(pad.left, count), pad.view().valid};
              Output row(d);
              ops::attention_row(t, &in.q[(count - 1) * d], cache, heads, cached, row.data());
              REQUIRE(row.guards_intact(d));
              INFO("cache of " << count);
              const std::vector<double> row_tol(tol.begin() + (count - 1) * d, tol.begin() + count * d);
              REQUIRE(first_outside(row.data(), &full[(count - 1) * d], row_tol, d) == "");
            }
          }
        }
      }
}

TEST_CASE("ops: attention argument errors", "[kernels][ops][attention][errors]") {
  const KernelTable& t = tables().front();
  std::vector<float> q(30), out(30);
  REQUIRE_THROWS_WITH(ops::attention_core(t, q.data(), q.data(), q.data(), 5, 6, 4, {}, out.data()),
                      Catch::Contains("not divisible by 4 heads"));
  REQUIRE_THROWS_WITH(ops::attention_core(t, q.data(), q.data(), q.data(), 5, 6, 2, ref::KeyPadding{6}, out.data()),
                      Catch::Contains("left padding 6 exceeds"));
  REQUIRE_THROWS_AS(ops::attention_row(t, q.data(), q.data(), q.data(), 5, 6, 0, {}, out.data()), Error);
  ops::KvCache cache(6);
  AttentionLayer layer;  // 4 x 4 projections: dimension 4, not the cache's 6
  layer.query = layer.key = layer.value = layer.output = LinearLayer::dense(4, 4, std::vector<float>(16, 0.0f));
  REQUIRE_THROWS_WITH(ops::causal_attention_step(t, layer, q.data(), q.data(), cache, {}, out.data()),
                      Catch::Contains("the cache holds rows of 6 values"));
}

// ------------------------------------------------------------------------------------------------
// linear layers, full attention layers, decoding, Caser

namespace {

LinearLayer random_dense(std::size_t out, std::size_t in, std::uint32_t seed, bool with_bias = true) {
  auto w = test::random_normal(out * in, seed, in ? 1.0f / std::sqrt(float(in)) : 1.0f);
  auto b = with_bias ? test::random_normal(out, seed + 1, 0.1f) : std::vector<float>{};
  return LinearLayer::dense(out, in, std::move(w), std::move(b));
}

// The layer in `mode`: dense as is, or quantized per channel to random widths (pruned channels included).
LinearLayer in_mode(const LinearLayer& dense, LinearMode mode, std::uint32_t seed) {
  if (mode == LinearMode::dense_f32) return dense;
  return quantize_linear(dense, test::random_bits(dense.out, seed).data(), mode);
}

const LinearMode kModes[] = {LinearMode::dense_f32, LinearMode::mixed_f32, LinearMode::mixed_s8};

// Bound on |fl(x . w + b) - (x . w + b)|, twice (the kernel's and the reference's orders).
double dot_tolerance(const float* x, std::size_t x_step, const float* w, std::size_t k, float bias) {
  double abs_dot = std::fabs(double(bias));
  for (std::size_t j = 0; j < k; ++j) abs_dot += std::fabs(double(x[j * x_step]) * w[j]);
  return 2.0 * gamma(k + 2) * abs_dot + 1e-30;
}

std::vector<float> effective_weights(const LinearLayer& layer) {
  if (layer.mode == LinearMode::dense_f32) return layer.weight;
  std::vector<float> w(layer.out * layer.in);
  for (std::size_t c = 0; c < layer.out; ++c)
    for (std::size_t j = 0; j < layer.in; ++j)
      w[c * layer.in + j] = dequantize(std::int8_t(layer.mixed.code(c, j)), layer.mixed.scale(c));
  return w;
}

// Per output of a linear layer [m, out] on x (row stride ldx): the fp32 dot-product bound.
std::vector<double> linear_tolerance(const LinearLayer& layer, const float* x, std::size_t ldx, std::size_t m) {
  const std::vector<float> w = effective_weights(layer);
  std::vector<double> tol(m * layer.out);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t c = 0; c < layer.out; ++c)
      tol[i * layer.out + c] = dot_tolerance(x + i * ldx, 1, &w[c * layer.in], layer.in,
                                             layer.bias.empty() ? 0.0f : layer.bias[c]);
  return tol;
}

}  // namespace

TEST_CASE("ops: linear_forward: W-A8 and dense exactly the reference, W-A32 within the dot bound",
          "[kernels][ops][linear]") {
  std::uint32_t seed = 1100;
  for (std::size_t m : {0, 1, 5, 17})
    for (std::size_t in : {1, 7, 16, 50, 65})
      for (std::size_t out : {1, 16, 33}) {
        const LinearLayer dense = random_dense(out, in, seed++, (in + out) % 2 == 0);
        // Contiguous rows, and overlapping windows (ldx < in, as Caser's).
        for (std::size_t ldx : {in, std::max<std::size_t>(1, in / 4)}) {
          const std::vector<float> x = test::random_normal((m > 0 ? (m - 1) * ldx + in : 0), seed++);
          for (LinearMode mode : kModes) {
            const LinearLayer layer = in_mode(dense, mode, seed++);
            std::vector<float> want(m * out);
            ref::linear_forward(layer, x.data(), ldx, want.data(), out, m);
            const std::vector<double> tol = linear_tolerance(layer, x.data(), ldx, m);
            for (const KernelTable& t : tables()) {
              INFO(name("linear", t, std::to_string(m) + ":" + std::to_string(out) + ":" + std::to_string(in)) << " "
                                                                                                     << chord::to_string(mode) << " ldx " << ldx);
              Output y(m * (out + 2));
              ops::linear_forward(t, layer, x.data(), ldx, y.data(), out + 2, m);
              REQUIRE(y.guards_intact(m * (out + 2)));
              const std::vector<double> exact(m * out, 0.0);
              REQUIRE(first_outside(y.data(), want.data(), mode == LinearMode::mixed_f32 ? tol : exact, m * out, out,
                                    out + 2) == "");
              for (std::size_t i = 0; i < m; ++i) REQUIRE(y.data()[i * (out + 2) + out] == kSentinel);  // stride gap
            }
          }
        }
      }
}

// The dense path is nn::gemm_nt (not the reference loop), which sums each output over k in one
// order across its depth blocks (kKC) and adds the bias last: the reference's outputs bit for bit, at k
// within, at and past one block (this file is built with -ffp-contract=off).
TEST_CASE("ops: linear_forward's dense path is nn::gemm_nt, exactly the reference past one depth block",
          "[kernels][ops][linear]") {
  std::uint32_t seed = 1900;
  for (std::size_t m : {1, 9, 40})
    for (std::size_t in : {nn::gemm_detail::kKC, nn::gemm_detail::kKC + 1, std::size_t(700)})
      for (std::size_t out : {3, 40}) {
        const LinearLayer layer = random_dense(out, in, seed++);
        const std::vector<float> x = test::random_normal(m * in, seed++);
        std::vector<float> want(m * out), blocked(m * out);
        ref::linear_forward(layer, x.data(), in, want.data(), out, m);
        nn::gemm_nt(m, out, in, x.data(), in, layer.weight.data(), in, layer.bias.data(), blocked.data(), out, false);
        for (const KernelTable& t : tables()) {
          INFO(name("linear", t, std::to_string(m) + ":" + std::to_string(out) + ":" + std::to_string(in)));
          const std::vector<float> y = ops::linear_forward(t, layer, x.data(), m);
          REQUIRE(y == blocked);
          REQUIRE(y == want);
        }
      }
}

namespace {

AttentionLayer attention_layer(std::size_t d, std::size_t heads, LinearMode mode, std::uint32_t seed) {
  AttentionLayer layer;
  layer.heads = heads;
  layer.query = in_mode(random_dense(d, d, seed), mode, seed + 1);
  layer.key = in_mode(random_dense(d, d, seed + 10), mode, seed + 11);
  layer.value = in_mode(random_dense(d, d, seed + 20), mode, seed + 21);
  layer.output = in_mode(random_dense(d, d, seed + 30), mode, seed + 31);
  return layer;
}

// Bound on |y1 - y2| for two fp32 evaluations of the output projection y = c Wo^T + b whose inputs
// differ by at most dc: sum_j |Wo_oj| dc_j plus both evaluations' rounding.
std::vector<double> output_tolerance(const LinearLayer& output, const std::vector<float>& c,
                                     const std::vector<double>& dc, std::size_t rows) {
  const std::size_t d = output.in;
  const std::vector<float> w = effective_weights(output);
  std::vector<double> tol(rows * output.out);
  for (std::size_t t = 0; t < rows; ++t)
    for (std::size_t o = 0; o < output.out; ++o) {
      double propagated = 0.0;
      for (std::size_t j = 0; j < d; ++j) propagated += std::fabs(double(w[o * d + j])) * dc[t * d + j];
      tol[t * output.out + o] =
          propagated * (1 + 2 * gamma(d + 2)) +
          dot_tolerance(&c[t * d], 1, &w[o * d], d, output.bias.empty() ? 0.0f : output.bias[o]);
    }
  return tol;
}

}  // namespace

TEST_CASE("ops: causal attention layers (dense, W-A32, W-A8) and KV-cache decoding", "[kernels][ops][attention]") {
  std::uint32_t seed = 1300;
  for (std::size_t length : {1, 2, 7, 17, 33})
    for (std::size_t d : {4, 16, 50})
      for (std::size_t heads : {1, 2})
        for (LinearMode mode : kModes) {
          const AttentionLayer layer = attention_layer(d, heads, mode, seed);
          seed += 40;
          const std::vector<float> xq = test::random_normal(length * d, seed++), xkv = test::random_normal(length * d, seed++);
          for (const PaddingCase& pad : padding_cases(length, seed)) {
            std::vector<float> want(length * d);
            ref::causal_attention(layer, xq.data(), xkv.data(), length, pad.view(), want.data());
            for (const KernelTable& t : tables()) {
              INFO(name("causal_attention", t, std::to_string(length) + ":" + std::to_string(d) + ":" +
                                                   std::to_string(heads))
                   << " " << chord::to_string(mode) << " padding " << pad.label);
              Output y(length * d);
              ops::causal_attention(t, layer, xq.data(), xkv.data(), length, pad.view(), y.data());
              REQUIRE(y.guards_intact(length * d));

              // 1. The op is its documented composition of ops (exactly: the same kernels in the same order).
              const std::vector<float> q = ops::linear_forward(t, layer.query, xq.data(), length);
              const std::vector<float> k = ops::linear_forward(t, layer.key, xkv.data(), length);
              const std::vector<float> v = ops::linear_forward(t, layer.value, xkv.data(), length);
              std::vector<float> context(length * d);
              ops::attention_core(t, q.data(), k.data(), v.data(), length, d, heads, pad.view(), context.data());
              const std::vector<float> composed = ops::linear_forward(t, layer.output, context.data(), length);
              REQUIRE(std::memcmp(y.data(), composed.data(), composed.size() * sizeof(float)) == 0);

              // 2. Against the reference layer: the projections are the reference's bit for bit (dense,
              // W-A8; test_kernels covers W-A32), so with dense weights the only difference is the
              // attention core's, propagated through Wo.
              if (mode != LinearMode::mixed_f32) REQUIRE(q == ref::linear_forward(layer.query, xq.data(), length));
              if (mode == LinearMode::dense_f32) {
                const std::vector<double> dc = attention_tolerance(q, k, v, length, d, heads, pad);
                const std::vector<double> tol = output_tolerance(layer.output, context, dc, length);
                REQUIRE(first_outside(y.data(), want.data(), tol, length * d, d, d) == "");
              }

              // 3. Decoding token by token with a KV cache gives the full sequence's rows, within the
              // attention core's rounding (a cached row and the full sequence sum in different orders)
              // carried through Wo. W-A8: the int8 context codes may differ by one step, so the step is
              // checked as its own composition (row projections = the sequence's, bit for bit; cached
              // attention_row within bound of the sequence: the test above).
              std::vector<double> step_tol;
              if (mode == LinearMode::dense_f32) {
                const std::vector<double> dc = attention_tolerance(q, k, v, length, d, heads, pad);
                step_tol = output_tolerance(layer.output, context, dc, length);
              } else if (mode == LinearMode::mixed_f32) {
                // W-A32: the gemm blocks rows, so a lone row's projections may round differently.
                const std::vector<double> dq = linear_tolerance(layer.query, xq.data(), d, length);
                const std::vector<double> dk = linear_tolerance(layer.key, xkv.data(), d, length);
                const std::vector<double> dv = linear_tolerance(layer.value, xkv.data(), d, length);
                const std::vector<double> dc = attention_tolerance(q, k, v, length, d, heads, pad, &dq, &dk, &dv);
                step_tol = output_tolerance(layer.output, context, dc, length);
              }
              ops::KvCache cache(d, length);
              for (std::size_t step = 0; step < length; ++step) {
                const ref::KeyPadding cached{std::min(pad.left, step + 1), pad.view().valid};
                std::vector<float> row(d);
                ops::causal_attention_step(t, layer, &xq[step * d], &xkv[step * d], cache, cached, row.data());
                INFO("decoding step " << step);
                REQUIRE(cache.size() == step + 1);
                if (mode == LinearMode::mixed_s8) {
                  // One row's int8 quantization does not depend on the other rows: the step is the
                  // sequence's projections, attention_row on the cache, then Wo.
                  std::vector<float> context_row(d);
                  ops::attention_row(t, &q[step * d], cache, heads, cached, context_row.data());
                  const std::vector<float> composed_row = ops::linear_forward(t, layer.output, context_row.data(), 1);
                  REQUIRE(std::memcmp(row.data(), composed_row.data(), d * sizeof(float)) == 0);
                  REQUIRE(std::memcmp(cache.keys() + step * d, &k[step * d], d * sizeof(float)) == 0);
                  REQUIRE(std::memcmp(cache.values() + step * d, &v[step * d], d * sizeof(float)) == 0);
                } else {
                  const std::vector<double> tol(step_tol.begin() + step * d, step_tol.begin() + (step + 1) * d);
                  REQUIRE(first_outside(row.data(), y.data() + step * d, tol, d) == "");
                }
              }
            }
          }
        }
}

TEST_CASE("ops: causal self-attention in place (y aliasing x)", "[kernels][ops][attention]") {
  const std::size_t length = 9, d = 16;
  for (LinearMode mode : kModes) {
    const AttentionLayer layer = attention_layer(d, 2, mode, 1500);
    const std::vector<float> x = test::random_normal(length * d, 1501);
    for (const KernelTable& t : tables()) {
      INFO(name("causal_self_attention", t, "9:16:2") << " " << chord::to_string(mode));
      std::vector<float> y(length * d), inplace = x;
      ops::causal_self_attention(t, layer, x.data(), length, ref::KeyPadding{2}, y.data());
      ops::causal_self_attention(t, layer, inplace.data(), length, ref::KeyPadding{2}, inplace.data());
      REQUIRE(inplace == y);
    }
  }
}

namespace {

CaserFilters caser_filters(std::size_t length, std::size_t d, std::size_t nh, std::size_t nv,
                                LinearMode mode, std::uint32_t seed) {
  CaserFilters filters;
  for (std::size_t h = 1; h <= length; ++h)
    filters.horizontal.push_back(in_mode(random_dense(nh, h * d, seed + std::uint32_t(h)), mode, seed + 100 + h));
  filters.vertical = in_mode(random_dense(nv, length, seed + 50), mode, seed + 51);
  return filters;
}

}  // namespace

TEST_CASE("ops: Caser convolutions: W-A8 and dense exactly the reference, W-A32 within the dot bound",
          "[kernels][ops][conv]") {
  std::uint32_t seed = 1700;
  for (std::size_t length : {1, 2, 3, 5, 8})
    for (std::size_t d : {1, 3, 16, 50})
      for (std::size_t nh : {1, 4, 16, 17})
        for (std::size_t nv : {1, 4})
          for (LinearMode mode : kModes) {
            if ((length + d + nh + nv) % 2 == 0 && mode != LinearMode::mixed_s8) continue;  // half of the grid
            const CaserFilters filters = caser_filters(length, d, nh, nv, mode, seed);
            seed += 200;
            const std::vector<float> e = test::random_normal(length * d, seed++);
            const std::size_t size = filters.output_size(length, d);
            std::vector<float> want(size);
            ref::caser_conv(filters, e.data(), length, d, want.data());
            // W-A32 bounds: vertical outputs are single dot products; ReLU and max-pooling are
            // 1-Lipschitz, so a pooled output is within the largest of its windows' bounds.
            std::vector<double> tol(size, 0.0);
            if (mode == LinearMode::mixed_f32) {
              const std::vector<float> wv = effective_weights(filters.vertical);
              for (std::size_t f = 0; f < nv; ++f)
                for (std::size_t j = 0; j < d; ++j)
                  tol[f * d + j] = dot_tolerance(&e[j], d, &wv[f * length], length,
                                                 filters.vertical.bias.empty() ? 0.0f : filters.vertical.bias[f]);
              for (std::size_t h = 1; h <= length; ++h) {
                const std::vector<double> window = linear_tolerance(filters.horizontal[h - 1], e.data(), d, length - h + 1);
                for (std::size_t t = 0; t + h <= length; ++t)
                  for (std::size_t f = 0; f < nh; ++f)
                    tol[nv * d + (h - 1) * nh + f] = std::max(tol[nv * d + (h - 1) * nh + f], window[t * nh + f]);
              }
            }
            const Input in(e);
            for (const KernelTable& t : tables()) {
              INFO(name("caser_conv", t, std::to_string(length) + ":" + std::to_string(d) + ":" + std::to_string(nh) +
                                             ":" + std::to_string(nv)) << " " << chord::to_string(mode));
              Output out(size);
              ops::caser_conv(t, filters, in.data(), length, d, out.data());
              REQUIRE(out.guards_intact(size));
              REQUIRE(first_outside(out.data(), want.data(), tol, size) == "");  // tol 0 except W-A32
            }
          }
  // Shape errors name the bank, as the reference's do.
  CaserFilters filters = caser_filters(3, 4, 2, 1, LinearMode::mixed_s8, 1);
  std::vector<float> e(12), out(32);
  REQUIRE_THROWS_WITH(ops::caser_conv(tables().front(), filters, e.data(), 2, 4, out.data()),
                      Catch::Contains("caser_vertical"));
  filters.horizontal.pop_back();
  REQUIRE_THROWS_WITH(ops::caser_horizontal(tables().front(), e.data(), 3, 4, filters.horizontal, out.data()),
                      Catch::Contains("filter banks given"));
}
