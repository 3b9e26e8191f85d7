// chord::nn training layers: the three gemm forms against the reference gemm (norm-derived bound),
// every backward against central finite differences (norm-relative), and the optimizer, loss,
// dropout, registry and batch-parallel helpers against hand-derived expectations.
//
// Finite differences: each layer's output y is reduced to f = sum(R * y) with a fixed random R, so the
// analytic gradient is backward(dy = R). f is accumulated in double; the steps are float, so the check
// is ||fd - analytic|| <= 1e-2 ||analytic|| + a noise floor: rounding noise is ~1e-4 relative, a wrong
// formula is O(1).
// Where a layer has kinks (ReLU, max-pool), a component whose +-h evaluations change the activation
// pattern is skipped (the function is not differentiable across the kink); few may be skipped.
// CHORD_TEST_NO_THREADS (set for cross builds): thread creation hangs under qemu-user 7.2 with a
// dynamically linked glibc, so there the batch-parallel test runs its workers one after the other.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chord/nn/adam.hpp"
#include "chord/nn/attention.hpp"
#include "chord/nn/batch_parallel.hpp"
#include "chord/nn/conv.hpp"
#include "chord/nn/dropout.hpp"
#include "chord/nn/elementwise.hpp"
#include "chord/nn/embedding.hpp"
#include "chord/nn/ffn.hpp"
#include "chord/nn/gemm_f32.hpp"
#include "chord/nn/init.hpp"
#include "chord/nn/layernorm.hpp"
#include "chord/nn/linear.hpp"
#include "chord/nn/loss.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/ref/activation.hpp"
#include "chord/ref/attention.hpp"
#include "chord/ref/conv.hpp"
#include "chord/ref/embedding.hpp"
#include "chord/ref/gemm.hpp"
#include "chord/ref/linear.hpp"
#include "chord/ref/norm.hpp"
#include "test_helpers.hpp"

using namespace chord;
using namespace chord::nn;

namespace {

using Objective = std::function<double()>;
using Pattern = std::function<std::vector<std::uint8_t>()>;

struct GradientCheck {
  double error_norm = 0.0, analytic_norm = 0.0;  // ||fd - analytic||, ||analytic|| over checked entries
  std::size_t checked = 0, skipped = 0;
  // Float evaluations of f carry noise ~ 8 eps |f| / h per component (~3e-4 here): a gradient that is
  // zero in exact arithmetic (a key bias under softmax) is judged against that floor.
  bool passes() const { return error_norm <= 1e-2 * analytic_norm + 1e-3 * std::sqrt(double(checked)); }
};

// Central differences of `objective` w.r.t. v[0..n) against `analytic` (copied before perturbing).
// `pattern` (optional) returns the kink pattern after an objective call: a component whose perturbed
// evaluations change it is skipped.
GradientCheck check_gradient(float* v, std::size_t n, std::vector<float> analytic, const Objective& objective,
                             const Pattern& pattern = nullptr, float h = 1e-3f) {
  GradientCheck result;
  std::vector<std::uint8_t> base;
  if (pattern) {
    objective();
    base = pattern();
  }
  double diff2 = 0.0, norm2 = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const float saved = v[i];
    v[i] = saved + h;
    const double up_at = v[i];
    const double up = objective();
    const bool up_smooth = !pattern || pattern() == base;
    v[i] = saved - h;
    const double down_at = v[i];
    const double down = objective();
    const bool down_smooth = !pattern || pattern() == base;
    v[i] = saved;
    if (!up_smooth || !down_smooth) {
      ++result.skipped;
      continue;
    }
    const double fd = (up - down) / (up_at - down_at);
    diff2 += (fd - analytic[i]) * (fd - analytic[i]);
    norm2 += double(analytic[i]) * analytic[i];
    ++result.checked;
  }
  result.error_norm = std::sqrt(diff2);
  result.analytic_norm = std::sqrt(norm2);
  return result;
}

#define REQUIRE_GRADIENT(check)                                  \
  do {                                                           \
    const GradientCheck gc_ = (check);                           \
    INFO("|fd - analytic| " << gc_.error_norm << ", |analytic| " << gc_.analytic_norm << ", checked " \
         << gc_.checked << ", skipped " << gc_.skipped);          \
    REQUIRE(gc_.checked > 0);                                    \
    REQUIRE(gc_.skipped * 10 <= gc_.checked);                    \
    REQUIRE(gc_.passes());                                       \
  } while (0)

double weighted_sum(const float* r, const float* y, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += double(r[i]) * y[i];
  return s;
}

std::vector<float> gradient_copy(const GradientBuffer& g, const Parameters& p, ParamId id) {
  return std::vector<float>(g.of(id), g.of(id) + p.info(id).size);
}

// Every parameter of the registry checked against finite differences of `objective`.
void require_parameter_gradients(Parameters& p, const GradientBuffer& g, const Objective& objective,
                                 const Pattern& pattern = nullptr) {
  for (ParamId id = 0; id < p.count(); ++id) {
    INFO("parameter " << p.info(id).name);
    REQUIRE_GRADIENT(check_gradient(p.value(id), p.info(id).size, gradient_copy(g, p, id), objective, pattern));
  }
}

void randomize(Parameters& p, std::uint32_t seed, float stddev = 0.5f) {
  for (ParamId id = 0; id < p.count(); ++id) {
    const auto v = test::random_normal(p.info(id).size, seed + std::uint32_t(id), stddev);
    std::copy(v.begin(), v.end(), p.value(id));
  }
}

// |fl(dot) - dot| <= gamma_k sum |a_j b_j| for any summation order (Higham), for both results compared.
double dot_bound(const std::vector<double>& abs_terms_sum, std::size_t idx, std::size_t k) {
  const double gamma = (k + 2) * double(FLT_EPSILON) / (1.0 - (k + 2) * double(FLT_EPSILON));
  return 2.0 * gamma * abs_terms_sum[idx] + 1e-30;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// gemm_f32: the three forms against ref::gemm_f32
// ------------------------------------------------------------------------------------------------

TEST_CASE("gemm_nt / gemm_nn / gemm_tn equal the reference gemm on awkward shapes", "[nn][gemm]") {
  struct Shape { std::size_t m, n, k; };
  std::vector<Shape> shapes;
  for (std::size_t m : {1, 3, 7, 17, 65, 131})
    for (std::size_t n : {1, 5, 9, 31, 50})
      for (std::size_t k : {1, 6, 33, 50}) shapes.push_back({m, n, k});
  shapes.push_back({5, 7, 300});   // two depth blocks
  shapes.push_back({2, 2100, 3});  // two column blocks
  shapes.push_back({200, 50, 50});
  for (const Shape& s : shapes) {
    const std::size_t m = s.m, n = s.n, k = s.k;
    INFO("m " << m << " n " << n << " k " << k);
    const std::size_t pad = 3;  // leading dimensions larger than the rows
    const auto x = test::random_normal(m * (k + pad), std::uint32_t(m * 131 + n * 7 + k));  // [m, k] ld k+pad
    const auto w = test::random_normal(n * (k + pad), std::uint32_t(n * 17 + k));           // [n, k] ld k+pad
    const auto bias = test::random_normal(n, std::uint32_t(n + 5));
    const auto y0 = test::random_normal(m * (n + pad), 99);  // prior contents for accumulate
    std::vector<float> xc(m * k), wc(n * k);                  // compact copies for the reference
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < k; ++j) xc[i * k + j] = x[i * (k + pad) + j];
    for (std::size_t c = 0; c < n; ++c)
      for (std::size_t j = 0; j < k; ++j) wc[c * k + j] = w[c * (k + pad) + j];
    std::vector<float> expected(m * n);
    ref::gemm_f32(xc.data(), k, wc.data(), nullptr, expected.data(), n, m, n, k);
    std::vector<double> abs_sum(m * n, 0.0);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t c = 0; c < n; ++c)
        for (std::size_t j = 0; j < k; ++j) abs_sum[i * n + c] += std::fabs(double(xc[i * k + j]) * wc[c * k + j]);

    // y = x W^T + b, written; then y += x W^T on top of y0.
    std::vector<float> y(m * (n + pad), -7.0f), ya = y0;
    gemm_nt(m, n, k, x.data(), k + pad, w.data(), k + pad, bias.data(), y.data(), n + pad, false);
    gemm_nt(m, n, k, x.data(), k + pad, w.data(), k + pad, nullptr, ya.data(), n + pad, true);
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t c = 0; c < n; ++c) {
        const std::size_t e = i * n + c, o = i * (n + pad) + c;
        REQUIRE(std::fabs(y[o] - (expected[e] + bias[c])) <= dot_bound(abs_sum, e, k) + 2 * FLT_EPSILON * std::fabs(bias[c]));
        REQUIRE(std::fabs(ya[o] - (expected[e] + y0[o])) <= dot_bound(abs_sum, e, k) + 2 * FLT_EPSILON * std::fabs(y0[o]));
      }
      for (std::size_t c = n; c < n + pad; ++c) REQUIRE(y[i * (n + pad) + c] == -7.0f);  // padding untouched
    }

    // gemm_nn: C[m, n] = A[m, k] B[k, n] with A = x and B = W^T stored as [k, n] (ld n + pad).
    std::vector<float> b_kn(k * (n + pad), 0.0f);
    for (std::size_t j = 0; j < k; ++j)
      for (std::size_t c = 0; c < n; ++c) b_kn[j * (n + pad) + c] = wc[c * k + j];
    std::vector<float> c_nn(m * (n + pad), 5.0f);
    gemm_nn(m, n, k, x.data(), k + pad, b_kn.data(), n + pad, c_nn.data(), n + pad, false);
    // gemm_tn: C[m, n] += A[k, m]^T B[k, n] with A = x^T stored as [k, m] (ld m + pad).
    std::vector<float> a_km(k * (m + pad), 0.0f);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < k; ++j) a_km[j * (m + pad) + i] = xc[i * k + j];
    std::vector<float> c_tn = y0;
    gemm_tn(m, n, k, a_km.data(), m + pad, b_kn.data(), n + pad, c_tn.data(), n + pad);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t c = 0; c < n; ++c) {
        const std::size_t e = i * n + c, o = i * (n + pad) + c;
        REQUIRE(std::fabs(c_nn[o] - expected[e]) <= dot_bound(abs_sum, e, k));
        REQUIRE(std::fabs(c_tn[o] - (expected[e] + y0[o])) <= dot_bound(abs_sum, e, k) + 2 * FLT_EPSILON * std::fabs(y0[o]));
      }
  }
}

TEST_CASE("gemm: empty shapes, and a row alone equals the same row inside a batch", "[nn][gemm]") {
  std::vector<float> y(12, 3.0f);
  const std::vector<float> bias = {1.0f, 2.0f, 3.0f};
  gemm_nt(4, 3, 0, nullptr, 0, nullptr, 0, bias.data(), y.data(), 3, false);  // k = 0: bias only
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t c = 0; c < 3; ++c) REQUIRE(y[i * 3 + c] == bias[c]);
  gemm_tn(4, 3, 0, nullptr, 4, nullptr, 3, y.data(), 3);  // k = 0, accumulating: unchanged
  REQUIRE(y[5] == bias[2]);
  gemm_nn(0, 3, 5, nullptr, 5, nullptr, 3, nullptr, 3, false);  // m = 0: nothing touched

  const std::size_t m = 37, n = 29, k = 45;
  const auto x = test::random_normal(m * k, 1), w = test::random_normal(n * k, 2);
  std::vector<float> all(m * n), one(n);
  gemm_nt(m, n, k, x.data(), k, w.data(), k, nullptr, all.data(), n, false);
  for (std::size_t row : {0, 5, 36}) {
    gemm_nt(1, n, k, x.data() + row * k, k, w.data(), k, nullptr, one.data(), n, false);
    for (std::size_t c = 0; c < n; ++c) REQUIRE(one[c] == all[row * n + c]);
  }
}

// ------------------------------------------------------------------------------------------------
// Layers against finite differences
// ------------------------------------------------------------------------------------------------

TEST_CASE("Linear backward matches finite differences", "[nn][grad]") {
  const std::size_t m = 7, in = 13, out = 5;
  Parameters p;
  const Linear fc = Linear::create(p, "fc", in, out);
  randomize(p, 10);
  auto x = test::random_normal(m * in, 11);
  const auto r = test::random_normal(m * out, 12);
  std::vector<float> y(m * out), dx(m * in, 0.0f);
  fc.backward(p, p.grads(), x.data(), r.data(), dx.data(), m);
  const Objective f = [&] {
    fc.forward(p, x.data(), y.data(), m);
    return weighted_sum(r.data(), y.data(), y.size());
  };
  REQUIRE_GRADIENT(check_gradient(x.data(), x.size(), dx, f));
  require_parameter_gradients(p, p.grads(), f);
}

TEST_CASE("Embedding: gather, scatter-add backward, padding id 0 is zero and gets no gradient", "[nn][grad]") {
  const std::size_t rows = 6, d = 5;
  Parameters p;
  const Embedding emb = Embedding::create(p, "item", rows, d);
  Rng rng(3);
  emb.init(p, rng);
  for (std::size_t j = 0; j < d; ++j) REQUIRE(p.value(emb.weight)[j] == 0.0f);
  p.value(emb.weight)[2] = 4.0f;  // a nonzero padding row must still look up as zero
  const std::vector<std::uint32_t> ids = {0, 3, 1, 3, 0, 5, 2};
  const float scale = 1.5f;
  const auto r = test::random_normal(ids.size() * d, 4);
  std::vector<float> out(ids.size() * d);
  emb.forward(p, ids.data(), ids.size(), out.data(), scale);
  for (std::size_t j = 0; j < d; ++j) {
    REQUIRE(out[0 * d + j] == 0.0f);
    REQUIRE(out[4 * d + j] == 0.0f);
    REQUIRE(out[1 * d + j] == scale * p.value(emb.weight)[3 * d + j]);
  }
  emb.backward(p.grads(), ids.data(), ids.size(), r.data(), scale);
  for (std::size_t j = 0; j < d; ++j) {
    REQUIRE(p.grad(emb.weight)[j] == 0.0f);                     // padding row: no gradient
    REQUIRE(p.grad(emb.weight)[4 * d + j] == 0.0f);             // never looked up
    REQUIRE(p.grad(emb.weight)[3 * d + j] == Approx(scale * (r[1 * d + j] + r[3 * d + j])));  // repeated id adds
  }
  require_parameter_gradients(p, p.grads(), [&] {
    emb.forward(p, ids.data(), ids.size(), out.data(), scale);
    return weighted_sum(r.data(), out.data(), out.size());
  });
  const std::vector<std::uint32_t> bad = {1, 6};
  REQUIRE_THROWS_AS(emb.forward(p, bad.data(), bad.size(), out.data()), Error);
  REQUIRE_THROWS_WITH(emb.forward(p, bad.data(), bad.size(), out.data()), Catch::Contains("position 1"));
}

TEST_CASE("LayerNorm: forward is (x - mean) / sqrt(biased var + eps); backward matches finite differences",
          "[nn][grad]") {
  const std::size_t m = 5, d = 11;
  Parameters p;
  const LayerNorm ln = LayerNorm::create(p, "ln", d, 1e-5f);
  randomize(p, 20);
  auto x = test::random_normal(m * d, 21, 2.0f);
  for (std::size_t j = 0; j < d; ++j) x[j] += 30.0f;  // a row with |mean| >> std
  const auto r = test::random_normal(m * d, 22);
  std::vector<float> y(m * d), mean(m), rstd(m), dx(m * d, 0.0f);
  ln.forward(p, x.data(), y.data(), mean.data(), rstd.data(), m);
  for (std::size_t i = 0; i < m; ++i) {
    double mu = 0.0, var = 0.0;
    for (std::size_t j = 0; j < d; ++j) mu += x[i * d + j];
    mu /= d;
    for (std::size_t j = 0; j < d; ++j) var += (x[i * d + j] - mu) * (x[i * d + j] - mu);
    var /= d;
    for (std::size_t j = 0; j < d; ++j) {
      const double expected = (x[i * d + j] - mu) / std::sqrt(var + 1e-5) * p.value(ln.gamma)[j] + p.value(ln.beta)[j];
      REQUIRE(y[i * d + j] == Approx(expected).epsilon(1e-5).margin(1e-5));
    }
  }
  ln.backward(p, p.grads(), x.data(), mean.data(), rstd.data(), r.data(), dx.data(), m);
  const Objective f = [&] {
    ln.forward(p, x.data(), y.data(), mean.data(), rstd.data(), m);
    return weighted_sum(r.data(), y.data(), y.size());
  };
  REQUIRE_GRADIENT(check_gradient(x.data(), x.size(), dx, f));
  require_parameter_gradients(p, p.grads(), f);
}

TEST_CASE("ReLU, GELU (erf form) and residual add: forward values and backward", "[nn][grad]") {
  auto x = test::random_normal(40, 30, 1.5f);
  for (float& v : x)
    if (std::fabs(v) < 0.05f) v = 0.3f;  // keep ReLU's kink out of the finite differences
  const auto r = test::random_normal(40, 31);
  std::vector<float> y(40), dx(40, 0.0f);
  gelu_forward(x.data(), y.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    REQUIRE(y[i] == Approx(0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)))).epsilon(1e-5).margin(1e-6));
  gelu_backward(x.data(), r.data(), dx.data(), x.size());
  REQUIRE_GRADIENT(check_gradient(x.data(), x.size(), dx, [&] {
    gelu_forward(x.data(), y.data(), x.size());
    return weighted_sum(r.data(), y.data(), y.size());
  }));
  std::fill(dx.begin(), dx.end(), 0.0f);
  relu_backward(x.data(), r.data(), dx.data(), x.size());
  REQUIRE_GRADIENT(check_gradient(x.data(), x.size(), dx, [&] {
    relu_forward(x.data(), y.data(), x.size());
    return weighted_sum(r.data(), y.data(), y.size());
  }));
  std::vector<float> da(40, 1.0f), db(40, 2.0f);
  residual_forward(x.data(), r.data(), y.data(), x.size());
  residual_backward(r.data(), da.data(), db.data(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(y[i] == x[i] + r[i]);
    REQUIRE(da[i] == 1.0f + r[i]);
    REQUIRE(db[i] == 2.0f + r[i]);
  }
}

TEST_CASE("causal attention forward equals the plain definition (scale 1/sqrt(dh), causal, left padding)",
          "[nn][attention]") {
  const std::size_t L = 9, d = 6, heads = 2, dh = d / heads;
  for (std::size_t pad : {0, 3, 9, 12}) {
    INFO("pad " << pad);
    const auto q = test::random_normal(L * d, 40), k = test::random_normal(L * d, 41), v = test::random_normal(L * d, 42);
    std::vector<float> context(L * d, -1.0f), probs(heads * L * L, -1.0f);
    causal_attention_forward(q.data(), k.data(), v.data(), context.data(), probs.data(), L, d, heads, pad);
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t i = 0; i < L; ++i) {
        std::vector<double> expected_p(L, 0.0);
        if (i >= pad) {
          double max_s = -1e300, sum = 0.0;
          std::vector<double> s(L);
          for (std::size_t j = pad; j <= i; ++j) {
            s[j] = 0.0;
            for (std::size_t t = 0; t < dh; ++t) s[j] += double(q[i * d + h * dh + t]) * k[j * d + h * dh + t];
            s[j] /= std::sqrt(double(dh));
            max_s = std::max(max_s, s[j]);
          }
          for (std::size_t j = pad; j <= i; ++j) sum += (expected_p[j] = std::exp(s[j] - max_s));
          for (std::size_t j = pad; j <= i; ++j) expected_p[j] /= sum;
        }
        for (std::size_t j = 0; j < L; ++j) REQUIRE(probs[h * L * L + i * L + j] == Approx(expected_p[j]).margin(1e-6));
        for (std::size_t t = 0; t < dh; ++t) {
          double c = 0.0;
          for (std::size_t j = 0; j < L; ++j) c += expected_p[j] * v[j * d + h * dh + t];
          REQUIRE(context[i * d + h * dh + t] == Approx(c).margin(1e-5));
        }
      }
  }
}

TEST_CASE("causal attention core backward matches finite differences (strips, padding, dropout)",
          "[nn][attention][grad]") {
  // L > kCausalRowBlock so that several row strips are exercised.
  const std::size_t L = kCausalRowBlock + 5, d = 4, heads = 2, pad = 3;
  const Dropout dropout(0.25f);
  for (bool dropping : {false, true}) {
    INFO("attention dropout " << dropping);
    auto q = test::random_normal(L * d, 50), k = test::random_normal(L * d, 51), v = test::random_normal(L * d, 52);
    const auto r = test::random_normal(L * d, 53);
    std::vector<float> context(L * d), probs(heads * L * L), scratch(kCausalRowBlock * L), dropped(heads * L * L);
    std::vector<std::uint8_t> keep(heads * L * L);
    std::vector<float> dq(L * d, 0.0f), dk(L * d, 0.0f), dv(L * d, 0.0f);
    Rng rng(11);
    const AttentionDropout drop{&dropout, dropping, &rng, dropped.data(), keep.data()};
    causal_attention_forward(q.data(), k.data(), v.data(), context.data(), probs.data(), L, d, heads, pad, drop);
    causal_attention_backward(r.data(), q.data(), k.data(), v.data(), probs.data(), dq.data(), dk.data(), dv.data(),
                              scratch.data(), L, d, heads, pad, drop);
    if (dropping) {  // D = P * keep / (1 - p) on the causal block, some entries dropped
      std::size_t dropped_count = 0;
      for (std::size_t h = 0; h < heads; ++h)
        for (std::size_t i = pad; i < L; ++i)
          for (std::size_t j = pad; j <= i; ++j) {
            const std::size_t e = h * L * L + i * L + j;
            REQUIRE(dropped[e] == (keep[e] ? probs[e] * dropout.keep_scale() : 0.0f));
            dropped_count += keep[e] == 0;
          }
      REQUIRE(dropped_count > 0);
    }
    for (std::size_t i = 0; i < pad * d; ++i) {  // padding positions receive nothing
      REQUIRE(dq[i] == 0.0f);
      REQUIRE(dk[i] == 0.0f);
      REQUIRE(dv[i] == 0.0f);
    }
    const Objective f = [&] {
      Rng same(11);  // the same dropout decisions at every evaluation
      const AttentionDropout again{&dropout, dropping, &same, dropped.data(), keep.data()};
      causal_attention_forward(q.data(), k.data(), v.data(), context.data(), probs.data(), L, d, heads, pad, again);
      return weighted_sum(r.data(), context.data(), context.size());
    };
    REQUIRE_GRADIENT(check_gradient(q.data(), q.size(), dq, f));
    REQUIRE_GRADIENT(check_gradient(k.data(), k.size(), dk, f));
    REQUIRE_GRADIENT(check_gradient(v.data(), v.size(), dv, f));
  }
}

TEST_CASE("CausalSelfAttention layer: projections, separate query and key inputs, batch with padding",
          "[nn][attention][grad]") {
  const std::size_t B = 2, L = 7, d = 6, heads = 3;
  const std::vector<std::size_t> pads = {0, 4};
  for (bool output_projection : {true, false}) {
    const bool training = output_projection;  // with attention dropout in one of the two runs
    INFO("output projection " << output_projection << ", training " << training);
    Parameters p;
    const auto attn = CausalSelfAttention::create(p, "attn", d, heads, output_projection, 0.2f);
    randomize(p, 60);
    auto xq = test::random_normal(B * L * d, 61), xkv = test::random_normal(B * L * d, 62);
    const auto r = test::random_normal(B * L * d, 63);
    AttentionWorkspace ws;
    ws.resize(B, L, d, heads);
    std::vector<float> y(B * L * d), dxq(B * L * d, 0.0f), dxkv(B * L * d, 0.0f);
    Rng rng(4);
    attn.forward(p, xq.data(), xkv.data(), pads.data(), B, L, ws, y.data(), rng, training);
    attn.backward(p, p.grads(), xq.data(), xkv.data(), pads.data(), B, L, ws, r.data(), dxq.data(), dxkv.data(),
                  training);
    for (std::size_t i = 0; i < pads[1] * d; ++i) {  // sequence 1's padding positions
      REQUIRE(dxq[L * d + i] == 0.0f);
      REQUIRE(dxkv[L * d + i] == 0.0f);
    }
    const Objective f = [&] {
      Rng same(4);
      attn.forward(p, xq.data(), xkv.data(), pads.data(), B, L, ws, y.data(), same, training);
      return weighted_sum(r.data(), y.data(), y.size());
    };
    REQUIRE_GRADIENT(check_gradient(xq.data(), xq.size(), dxq, f));
    REQUIRE_GRADIENT(check_gradient(xkv.data(), xkv.size(), dxkv, f));
    require_parameter_gradients(p, p.grads(), f);
  }
  Parameters p;
  const auto attn = CausalSelfAttention::create(p, "attn", d, heads);
  AttentionWorkspace small;
  small.resize(1, L, d, heads);
  std::vector<float> x(B * L * d), y(B * L * d);
  Rng rng(1);
  REQUIRE_THROWS_AS(attn.forward(p, x.data(), x.data(), pads.data(), B, L, small, y.data(), rng, false), Error);
  REQUIRE_THROWS_AS(CausalSelfAttention::create(p, "bad", 10, 3), Error);
}

TEST_CASE("PointwiseFeedForward backward matches finite differences, in eval and with a fixed dropout mask",
          "[nn][grad]") {
  const std::size_t m = 6, d = 5, hidden = 7;
  for (bool training : {false, true}) {
    INFO("training " << training);
    Parameters p;
    const auto ffn = PointwiseFeedForward::create(p, "ffn", d, hidden, 0.3f);
    randomize(p, 70);
    auto x = test::random_normal(m * d, 71);
    const auto r = test::random_normal(m * d, 72);
    FeedForwardWorkspace ws;
    ws.resize(m, d, hidden);
    std::vector<float> y(m * d), dx(m * d, 0.0f);
    Rng rng(5);
    ffn.forward(p, x.data(), y.data(), m, ws, rng, training);
    ffn.backward(p, p.grads(), x.data(), r.data(), dx.data(), m, ws, training);
    const Objective f = [&] {
      Rng same(5);  // the same dropout decisions at every evaluation
      ffn.forward(p, x.data(), y.data(), m, ws, same, training);
      return weighted_sum(r.data(), y.data(), y.size());
    };
    const Pattern relu_pattern = [&] {
      std::vector<std::uint8_t> signs(m * hidden);
      for (std::size_t i = 0; i < signs.size(); ++i) signs[i] = ws.a[i] > 0.0f;
      return signs;
    };
    REQUIRE_GRADIENT(check_gradient(x.data(), x.size(), dx, f, relu_pattern));
    require_parameter_gradients(p, p.grads(), f, relu_pattern);
  }
}

TEST_CASE("Caser horizontal conv: output order, max-pool routes the gradient through the argmax", "[nn][conv][grad]") {
  const std::size_t B = 3, L = 4, d = 3, nh = 2;
  Parameters p;
  const auto conv = CaserHorizontalConv::create(p, "conv_h", L, d, nh);
  Rng rng(8);
  conv.init(p, rng);
  REQUIRE(p.info(conv.weight[2]).shape == std::vector<std::size_t>{nh, 3 * d});
  auto E = test::random_normal(B * L * d, 80);
  const auto r = test::random_normal(B * L * nh, 81);
  std::vector<float> out(B * L * nh), scratch(B * L * nh), dE(B * L * d, 0.0f);
  std::vector<std::uint32_t> argmax(B * L * nh);
  conv.forward(p, E.data(), B, out.data(), argmax.data(), scratch.data());
  // out[(h-1) nh + f] against the definition, for every sequence, height and filter
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 1; h <= L; ++h)
      for (std::size_t f = 0; f < nh; ++f) {
        const float* w = p.value(conv.weight[h - 1]);
        double best = -1e300;
        for (std::size_t t = 0; t + h <= L; ++t) {
          double c = p.value(conv.bias[h - 1])[f];
          for (std::size_t j = 0; j < h * d; ++j) c += double(w[f * h * d + j]) * E[(b * L + t) * d + j];
          best = std::max(best, c);
        }
        REQUIRE(out[b * L * nh + (h - 1) * nh + f] == Approx(std::max(best, 0.0)).margin(1e-5));
      }
  conv.backward(p, p.grads(), E.data(), B, out.data(), argmax.data(), r.data(), dE.data());
  // Routing: an item row outside every active argmax window gets exactly zero gradient.
  std::vector<bool> routed(B * L, false);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 1; h <= L; ++h)
      for (std::size_t f = 0; f < nh; ++f) {
        const std::size_t o = b * L * nh + (h - 1) * nh + f;
        if (out[o] > 0.0f)
          for (std::size_t t = argmax[o]; t < argmax[o] + h; ++t) routed[b * L + t] = true;
      }
  for (std::size_t row = 0; row < B * L; ++row)
    if (!routed[row])
      for (std::size_t j = 0; j < d; ++j) REQUIRE(dE[row * d + j] == 0.0f);
  const Objective f = [&] {
    conv.forward(p, E.data(), B, out.data(), argmax.data(), scratch.data());
    return weighted_sum(r.data(), out.data(), out.size());
  };
  const Pattern pooling_pattern = [&] {  // which window wins, and whether ReLU passes it
    std::vector<std::uint8_t> pattern(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) pattern[i] = std::uint8_t(argmax[i] * 2 + (out[i] > 0.0f));
    return pattern;
  };
  REQUIRE_GRADIENT(check_gradient(E.data(), E.size(), dE, f, pooling_pattern));
  require_parameter_gradients(p, p.grads(), f, pooling_pattern);
}

TEST_CASE("Caser vertical conv: forward definition and backward against finite differences", "[nn][conv][grad]") {
  const std::size_t B = 2, L = 5, d = 3, nv = 4;
  Parameters p;
  const auto conv = CaserVerticalConv::create(p, "conv_v", L, d, nv);
  randomize(p, 90);
  auto E = test::random_normal(B * L * d, 91);
  const auto r = test::random_normal(B * nv * d, 92);
  std::vector<float> out(B * nv * d), dE(B * L * d, 0.0f);
  conv.forward(p, E.data(), B, out.data());
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t f = 0; f < nv; ++f)
      for (std::size_t j = 0; j < d; ++j) {
        double v = p.value(conv.bias)[f];
        for (std::size_t t = 0; t < L; ++t) v += double(p.value(conv.weight)[f * L + t]) * E[(b * L + t) * d + j];
        REQUIRE(out[b * nv * d + f * d + j] == Approx(v).margin(1e-5));
      }
  conv.backward(p, p.grads(), E.data(), B, r.data(), dE.data());
  const Objective f = [&] {
    conv.forward(p, E.data(), B, out.data());
    return weighted_sum(r.data(), out.data(), out.size());
  };
  REQUIRE_GRADIENT(check_gradient(E.data(), E.size(), dE, f));
  require_parameter_gradients(p, p.grads(), f);
}

// ------------------------------------------------------------------------------------------------
// The training graph's forward agrees with the reference inference ops (same conventions)
// ------------------------------------------------------------------------------------------------

namespace {
LinearLayer ref_linear(const Parameters& p, const Linear& l) {
  return LinearLayer::dense(l.out, l.in, std::vector<float>(p.value(l.weight), p.value(l.weight) + l.out * l.in),
                            std::vector<float>(p.value(l.bias), p.value(l.bias) + l.out));
}
// ||a - b|| <= 64 k eps ||b||: k the longest dot product behind an output, a few chained roundings
// each (projection, scores, softmax, context, projection), both sides rounding differently.
void require_close(const std::vector<float>& a, const std::vector<float>& b, std::size_t k) {
  REQUIRE(a.size() == b.size());
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  INFO("||a - b|| " << std::sqrt(diff) << ", ||b|| " << std::sqrt(norm));
  REQUIRE(norm > 0.0);
  REQUIRE(std::sqrt(diff) <= 64.0 * k * FLT_EPSILON * std::sqrt(norm));
}
}  // namespace

TEST_CASE("forward passes agree with the ref ops: attention, layernorm, GELU, Caser convolutions, embedding",
          "[nn][ref]") {
  Rng rng(17);
  {  // attention with projections, left padding, query and key inputs apart
    const std::size_t L = 40, d = 12, heads = 3;
    for (std::size_t pad : {0, 7, 40}) {
      INFO("pad " << pad);
      Parameters p;
      const auto attn = CausalSelfAttention::create(p, "attn", d, heads);
      attn.init(p, rng);
      const auto xq = test::random_normal(L * d, 200), xkv = test::random_normal(L * d, 201);
      AttentionWorkspace ws;
      ws.resize(1, L, d, heads);
      std::vector<float> y(L * d), expected(L * d);
      attn.forward(p, xq.data(), xkv.data(), &pad, 1, L, ws, y.data(), rng, false);
      AttentionLayer layer;
      layer.heads = heads;
      layer.query = ref_linear(p, attn.q), layer.key = ref_linear(p, attn.k);
      layer.value = ref_linear(p, attn.v), layer.output = ref_linear(p, attn.out);
      ref::causal_attention(layer, xq.data(), xkv.data(), L, ref::KeyPadding{pad}, expected.data());
      require_close(y, expected, L + d);
      std::vector<float> weights(heads * L * L);
      ref::attention_weights(ws.q.data(), ws.k.data(), L, d, heads, ref::KeyPadding{pad}, weights.data());
      if (pad < L) require_close(std::vector<float>(ws.probs.begin(), ws.probs.end()), weights, d);
    }
  }
  {  // layernorm and GELU
    const std::size_t m = 9, d = 50;
    Parameters p;
    const LayerNorm ln = LayerNorm::create(p, "ln", d, 1e-8f);
    randomize(p, 210);
    const auto x = test::random_normal(m * d, 211, 3.0f);
    std::vector<float> y(m * d), expected(m * d), mean(m), rstd(m);
    ln.forward(p, x.data(), y.data(), mean.data(), rstd.data(), m);
    ref::layernorm(x.data(), m, d, p.value(ln.gamma), p.value(ln.beta), 1e-8f, expected.data());
    require_close(y, expected, d);
    gelu_forward(x.data(), y.data(), x.size());
    ref::gelu(x.data(), x.size(), expected.data());
    require_close(y, expected, 1);
  }
  {  // Caser horizontal and vertical filters, per sequence of a batch
    const std::size_t B = 3, L = 5, d = 7, nh = 4, nv = 2;
    Parameters p;
    const auto conv_h = CaserHorizontalConv::create(p, "conv_h", L, d, nh);
    const auto conv_v = CaserVerticalConv::create(p, "conv_v", L, d, nv);
    conv_h.init(p, rng);
    conv_v.init(p, rng);
    const auto E = test::random_normal(B * L * d, 220);
    std::vector<float> out_h(B * L * nh), scratch(B * L * nh), out_v(B * nv * d);
    std::vector<std::uint32_t> argmax(B * L * nh);
    conv_h.forward(p, E.data(), B, out_h.data(), argmax.data(), scratch.data());
    conv_v.forward(p, E.data(), B, out_v.data());
    std::vector<LinearLayer> banks;
    for (std::size_t h = 1; h <= L; ++h) {
      const float* w = p.value(conv_h.weight[h - 1]);
      const float* b = p.value(conv_h.bias[h - 1]);
      banks.push_back(LinearLayer::dense(nh, h * d, std::vector<float>(w, w + nh * h * d), std::vector<float>(b, b + nh)));
    }
    const auto vertical = LinearLayer::dense(
        nv, L, std::vector<float>(p.value(conv_v.weight), p.value(conv_v.weight) + nv * L),
        std::vector<float>(p.value(conv_v.bias), p.value(conv_v.bias) + nv));
    std::vector<float> expected_h(B * L * nh), expected_v(B * nv * d);
    for (std::size_t b = 0; b < B; ++b) {
      ref::caser_horizontal(E.data() + b * L * d, L, d, banks, expected_h.data() + b * L * nh);
      ref::caser_vertical(E.data() + b * L * d, L, d, vertical, expected_v.data() + b * nv * d);
    }
    require_close(out_h, expected_h, L * d);
    require_close(out_v, expected_v, L);
  }
  {  // embedding gather, with the padding row zero as training keeps it
    Parameters p;
    const Embedding emb = Embedding::create(p, "item", 9, 4);
    emb.init(p, rng);
    const std::vector<std::uint32_t> ids = {0, 8, 3, 3, 1, 0};
    std::vector<float> out(ids.size() * 4), expected(ids.size() * 4);
    emb.forward(p, ids.data(), ids.size(), out.data());
    ref::embedding_gather(p.value(emb.weight), 9, 4, ids.data(), ids.size(), expected.data());
    REQUIRE(out == expected);
  }
}

// ------------------------------------------------------------------------------------------------
// Dropout, loss, optimizer, registry, threads
// ------------------------------------------------------------------------------------------------

TEST_CASE("Dropout: identity in eval; in training keeps 1 - p of the elements, scaled by 1 / (1 - p)", "[nn][dropout]") {
  const Dropout dropout(0.3f);
  const std::size_t n = 100001;  // odd: the last element uses half a draw
  const auto x = test::random_normal(n, 100);
  std::vector<float> y(n);
  std::vector<std::uint8_t> keep(n, 7);
  Rng rng(1);
  dropout.forward(x.data(), y.data(), keep.data(), n, rng, /*training=*/false);
  REQUIRE(y == x);
  dropout.forward(x.data(), y.data(), keep.data(), n, rng, /*training=*/true);
  std::size_t kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(keep[i] <= 1);
    kept += keep[i];
    REQUIRE(y[i] == (keep[i] ? x[i] * (1.0f / 0.7f) : 0.0f));
  }
  // Binomial(n, 0.7): 6 standard deviations is ~0.87% of n.
  const double sigma = std::sqrt(n * 0.3 * 0.7);
  REQUIRE(std::fabs(double(kept) - 0.7 * n) < 6.0 * sigma);
  // Expected scale: the mean of y over a constant input stays that constant.
  std::vector<float> ones(n, 1.0f), y1(n);
  Rng rng2(2);
  dropout.forward(ones.data(), y1.data(), keep.data(), n, rng2, true);
  double mean = 0.0;
  for (float v : y1) mean += v;
  mean /= n;
  REQUIRE(std::fabs(mean - 1.0) < 6.0 * sigma / (0.7 * n));
  // Backward: dx += dy * keep / (1 - p); eval: dx += dy.
  const auto dy = test::random_normal(n, 101);
  std::vector<float> dx(n, 1.0f);
  dropout.backward(dy.data(), keep.data(), dx.data(), n, true);
  for (std::size_t i = 0; i < n; i += 997) REQUIRE(dx[i] == 1.0f + (keep[i] ? dy[i] * (1.0f / 0.7f) : 0.0f));
  // Reproducible: the same seed and stream give the same mask; another stream another one.
  std::vector<std::uint8_t> a(1000), b(1000), c(1000);
  std::vector<float> tmp(1000);
  Rng s1(9, 4), s2(9, 4), s3(9, 5);
  dropout.forward(x.data(), tmp.data(), a.data(), 1000, s1, true);
  dropout.forward(x.data(), tmp.data(), b.data(), 1000, s2, true);
  dropout.forward(x.data(), tmp.data(), c.data(), 1000, s3, true);
  REQUIRE(a == b);
  REQUIRE(a != c);
  REQUIRE_THROWS_AS(Dropout(1.0f), Error);
  REQUIRE_THROWS_AS(Dropout(-0.1f), Error);
}

TEST_CASE("BCE loss over positive and negative logits: stable values, masked gradient, split normalizers",
          "[nn][loss][grad]") {
  auto pos = test::random_normal(9, 110, 2.0f), neg = test::random_normal(9, 111, 2.0f);
  pos[2] = 120.0f, pos[3] = -120.0f, neg[4] = 120.0f, neg[5] = -120.0f;  // exp() would overflow naively
  const std::vector<std::uint8_t> mask = {1, 1, 1, 1, 1, 1, 0, 1, 0};
  std::vector<float> dpos(9), dneg(9);
  const BceLoss loss = bce_pos_neg_loss(pos.data(), mask.data(), 9, neg.data(), mask.data(), 9, dpos.data(), dneg.data());
  REQUIRE(loss.positives == 7);
  REQUIRE(loss.negatives == 7);
  double expected = 0.0;
  for (std::size_t i = 0; i < 9; ++i) {
    if (!mask[i]) continue;
    expected += std::log1p(std::exp(-double(pos[i]))) / 7.0;  // -log sigmoid(pos), in double
    expected += std::log1p(std::exp(double(neg[i]))) / 7.0;   // -log(1 - sigmoid(neg))
  }
  REQUIRE(std::isfinite(loss.loss));
  REQUIRE(loss.loss == Approx(expected).epsilon(1e-6));
  REQUIRE(dpos[6] == 0.0f);
  REQUIRE(dneg[8] == 0.0f);
  REQUIRE(dpos[3] == Approx(-1.0 / 7.0));
  REQUIRE(dneg[4] == Approx(1.0 / 7.0));
  for (float g : dpos) REQUIRE(std::isfinite(g));
  // Finite differences (away from the saturated entries, where the loss is flat or linear).
  pos[2] = 0.5f, pos[3] = -0.5f, neg[4] = 0.25f, neg[5] = -1.0f;
  bce_pos_neg_loss(pos.data(), mask.data(), 9, neg.data(), mask.data(), 9, dpos.data(), dneg.data());
  std::vector<float> scratch_p(9), scratch_n(9);
  const Objective f = [&] {
    return bce_pos_neg_loss(pos.data(), mask.data(), 9, neg.data(), mask.data(), 9, scratch_p.data(), scratch_n.data()).loss;
  };
  REQUIRE_GRADIENT(check_gradient(pos.data(), 9, dpos, f));
  REQUIRE_GRADIENT(check_gradient(neg.data(), 9, dneg, f));
  // Two workers with the global counts add up to the whole batch's loss and gradients.
  std::vector<float> dp2(9), dn2(9);
  const BceLoss first = bce_pos_neg_loss(pos.data(), mask.data(), 4, neg.data(), mask.data(), 4, dp2.data(),
                                         dn2.data(), 7, 7);
  const BceLoss second = bce_pos_neg_loss(pos.data() + 4, mask.data() + 4, 5, neg.data() + 4, mask.data() + 4, 5,
                                          dp2.data() + 4, dn2.data() + 4, 7, 7);
  const BceLoss whole = bce_pos_neg_loss(pos.data(), mask.data(), 9, neg.data(), mask.data(), 9, dpos.data(), dneg.data());
  REQUIRE(first.loss + second.loss == Approx(whole.loss).epsilon(1e-12));
  REQUIRE(dp2 == dpos);
  REQUIRE(dn2 == dneg);
  // Caser's shape: T positives and a different number of negatives, no mask.
  const BceLoss caser = bce_pos_neg_loss(pos.data(), nullptr, 3, neg.data(), nullptr, 5, dpos.data(), dneg.data());
  REQUIRE(caser.positives == 3);
  REQUIRE(caser.negatives == 5);
  REQUIRE(dneg[0] == Approx(sigmoid(neg[0]) / 5.0));
}

TEST_CASE("Adam: one and two steps equal the hand-derived update; decay coupled, decoupled and per tensor",
          "[nn][adam]") {
  for (bool decoupled : {false, true}) {
    INFO("decoupled " << decoupled);
    Parameters p;
    const ParamId w = p.add("w", {2, 3});
    const ParamId b = p.add("b", {3}, /*weight_decay=*/false);
    const ParamId pad = p.add("pad", {2});  // stays zero: zero gradient on a zero weight
    const std::vector<float> w0 = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f, -0.25f}, b0 = {1.0f, -2.0f, 0.5f};
    std::copy(w0.begin(), w0.end(), p.value(w));
    std::copy(b0.begin(), b0.end(), p.value(b));
    AdamOptions o;
    o.lr = 0.01f, o.weight_decay = 0.1f, o.decoupled = decoupled;
    Adam adam(p, o);
    REQUIRE(o.beta1 == 0.9f);
    REQUIRE(o.beta2 == 0.98f);
    REQUIRE(o.eps == 1e-8f);
    const std::vector<float> g1 = {0.1f, -0.2f, 0.0f, 1.0f, 0.5f, -3.0f}, g2 = {-0.3f, 0.2f, 0.7f, 0.0f, 0.5f, 1.0f};
    // The update written out in double, for w (decay) and b (no decay).
    auto expected_after_two = [&](float x, float ga, float gb, bool decays) {
      const double lr = o.lr, b1 = o.beta1, b2 = o.beta2, eps = o.eps, wd = decays ? o.weight_decay : 0.0;
      double value = x, m = 0.0, v = 0.0;
      const float grads[2] = {ga, gb};
      for (int t = 1; t <= 2; ++t) {
        const double g = grads[t - 1] + (decoupled ? 0.0 : wd * value);
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        if (decoupled) value *= 1.0 - lr * wd;
        const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
        value -= lr * mhat / (std::sqrt(vhat) + eps);
      }
      return value;
    };
    for (int step = 0; step < 2; ++step) {
      const auto& g = step == 0 ? g1 : g2;
      std::copy(g.begin(), g.end(), p.grad(w));
      std::copy(g.begin(), g.begin() + 3, p.grad(b));
      adam.step(p);
    }
    REQUIRE(adam.steps() == 2);
    for (std::size_t i = 0; i < 6; ++i)
      REQUIRE(p.value(w)[i] == Approx(expected_after_two(w0[i], g1[i], g2[i], true)).epsilon(1e-6).margin(1e-7));
    for (std::size_t i = 0; i < 3; ++i)
      REQUIRE(p.value(b)[i] == Approx(expected_after_two(b0[i], g1[i], g2[i], false)).epsilon(1e-6).margin(1e-7));
    REQUIRE(p.value(pad)[0] == 0.0f);
    REQUIRE(p.value(pad)[1] == 0.0f);
  }
  Parameters p;
  p.add("w", {2});
  AdamOptions bad;
  bad.beta2 = 1.0f;
  REQUIRE_THROWS_AS(Adam(p, bad), Error);
  Adam adam(p);
  p.add("late", {3});
  REQUIRE_THROWS_WITH(adam.step(p), Catch::Contains("parameters added after Adam"));
}

TEST_CASE("Parameters: registry layout, names, init formulas", "[nn][params]") {
  Parameters p;
  const ParamId a = p.add("blocks.0.w", {3, 5});
  const ParamId b = p.add("blocks.0.b", {3}, false);
  const ParamId c = p.add("emb", {7, 4, 2});
  REQUIRE(p.count() == 3);
  REQUIRE(p.id("emb") == c);
  REQUIRE(!p.find("nope").has_value());
  REQUIRE_THROWS_WITH(p.id("nope"), Catch::Contains("nope"));
  REQUIRE_THROWS_AS(p.add("emb", {1}), Error);
  REQUIRE_THROWS_AS(p.add("zero", {3, 0}), Error);
  REQUIRE(p.element_count() == 15 + 3 + 56);
  for (ParamId id : {a, b, c}) REQUIRE(p.info(id).offset % kParamAlignFloats == 0);
  REQUIRE(p.info(b).offset >= p.info(a).offset + 15);
  REQUIRE(!p.info(b).weight_decay);
  REQUIRE(fans_of(p.info(c)).in == 8);
  REQUIRE(fans_of(p.info(c)).out == 14);
  REQUIRE_THROWS_AS(fans_of(p.info(b)), Error);

  // Seeded and bounded: the same seed gives the same values; xavier_uniform stays in its bound.
  Rng r1(42), r2(42);
  xavier_uniform(p, a, r1);
  std::vector<float> first(p.value(a), p.value(a) + 15);
  xavier_uniform(p, a, r2);
  REQUIRE(std::vector<float>(p.value(a), p.value(a) + 15) == first);
  const float bound = std::sqrt(6.0f / (5 + 3));
  for (float v : first) REQUIRE(std::fabs(v) <= bound);
  // xavier_normal: the sample standard deviation of many draws is near sqrt(2 / (fan_in + fan_out)).
  std::vector<float> big(20000);
  Rng r3(7);
  xavier_normal(big.data(), big.size(), Fans{100, 300}, r3);
  double sq = 0.0;
  for (float v : big) sq += double(v) * v;
  REQUIRE(std::sqrt(sq / big.size()) == Approx(std::sqrt(2.0 / 400.0)).epsilon(0.03));
  // nn.Linear's init: U(-1/sqrt(in), 1/sqrt(in)).
  Parameters q;
  const Linear fc = Linear::create(q, "fc", 16, 4);
  Rng r4(1);
  fc.init(q, r4);
  for (std::size_t i = 0; i < 64; ++i) REQUIRE(std::fabs(q.value(fc.weight)[i]) <= 0.25f);
  REQUIRE(q.find("fc.weight").has_value());
  REQUIRE(q.find("fc.bias").has_value());
}

TEST_CASE("batch-parallel: per-worker gradients reduced in order equal the single-thread gradient", "[nn][threads]") {
  const std::size_t B = 6, L = 5, d = 8, heads = 2;
  Parameters p;
  const auto attn = CausalSelfAttention::create(p, "attn", d, heads);
  Rng rng(3);
  attn.init(p, rng);
  const auto x = test::random_normal(B * L * d, 120);
  const auto dy = test::random_normal(B * L * d, 121);
  const std::vector<std::size_t> pads = {0, 1, 2, 3, 4, 5};
  // One thread, whole batch.
  {
    AttentionWorkspace ws;
    ws.resize(B, L, d, heads);
    std::vector<float> y(B * L * d), dx(B * L * d, 0.0f);
    Rng no_dropout(0);
    attn.forward(p, x.data(), x.data(), pads.data(), B, L, ws, y.data(), no_dropout, false);
    attn.backward(p, p.grads(), x.data(), x.data(), pads.data(), B, L, ws, dy.data(), dx.data(), dx.data(), false);
  }
  const std::vector<float> single(p.grads().data(), p.grads().data() + p.grads().size());
  // Two workers, sequences w, w + 2, w + 4, one sequence at a time.
  const std::size_t T = 2;
  std::vector<GradientBuffer> parts;
  for (std::size_t w = 0; w < T; ++w) parts.push_back(p.new_gradient_buffer());
  const auto worker = [&](std::size_t w) {
    AttentionWorkspace ws;
    ws.resize(1, L, d, heads);
    std::vector<float> y(L * d), dx(L * d, 0.0f);
    for (std::size_t b = w; b < B; b += T) {
      const float* xb = x.data() + b * L * d;
      Rng no_dropout(0);
      attn.forward(p, xb, xb, &pads[b], 1, L, ws, y.data(), no_dropout, false);
      attn.backward(p, parts[w], xb, xb, &pads[b], 1, L, ws, dy.data() + b * L * d, dx.data(), dx.data(), false);
    }
  };
#ifdef CHORD_TEST_NO_THREADS
  for (std::size_t w = 0; w < T; ++w) worker(w);  // the same work, one worker after the other
#else
  run_workers(T, worker);
#endif
  p.zero_grad();
  reduce_gradients(parts, p.grads());
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < single.size(); ++i) {
    diff += (p.grads().data()[i] - single[i]) * double(p.grads().data()[i] - single[i]);
    norm += double(single[i]) * single[i];
  }
  REQUIRE(norm > 0.0);
  REQUIRE(std::sqrt(diff) <= 1e-5 * std::sqrt(norm));  // same sums, grouped differently
  // Deterministic: a second reduction of the same parts gives the same bits.
  GradientBuffer again = p.new_gradient_buffer();
  reduce_gradients(parts, again);
  REQUIRE(std::equal(again.data(), again.data() + again.size(), p.grads().data()));
  // A buffer from another registry is refused; a worker's exception reaches the caller.
  Parameters other;
  other.add("x", {3});
  std::vector<GradientBuffer> wrong = {other.new_gradient_buffer()};
  REQUIRE_THROWS_AS(reduce_gradients(wrong, p.grads()), Error);
  REQUIRE_THROWS_WITH(run_workers(1, [](std::size_t) { throw Error("worker 0 failed"); }), "worker 0 failed");
#ifndef CHORD_TEST_NO_THREADS
  REQUIRE_THROWS_WITH(run_workers(3, [](std::size_t w) {
                        if (w >= 1) throw Error("worker " + std::to_string(w) + " failed");
                      }),
                      "worker 1 failed");  // the lowest failing worker wins
#endif
}
