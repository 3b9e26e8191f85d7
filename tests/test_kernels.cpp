// Every usable kernel table (each ISA this CPU runs x each backend compiled in, see ops/dispatch.hpp)
// against the reference ops: the int8 path exactly (int32 sums and fp32 epilogue, bit for bit), the fp32
// path within the dot-product rounding bound derived from the operands' norms. Shapes are the ruy-style
// awkward sizes around every tile / k-group / block edge, with unaligned rows, odd strides, NaN past the
// end of every fp32 row (a kernel that reads past k poisons its output), sentinels around every output,
// extreme activations and codes, and k = 2^16 (the int32 limit the kernels document).
// Each check names its kernel like XNNPACK, by the identifier of its entry point in backends/ (grep
// finds it): w4a8_gemm__xsimd_avx512_vnni/m:n:k.
//
// This file is compiled with -ffp-contract=off (tests/CMakeLists.txt): the reference epilogue must
// round exactly as the kernels' does.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ops/quantize_rows.hpp"
#include "chord/ref/gemm.hpp"
#include "test_helpers.hpp"

using namespace chord;

namespace {

const std::vector<KernelTable>& tested_tables() {
  static const std::vector<KernelTable> tables = [] {
    std::vector<KernelTable> usable = usable_kernel_tables("");
    std::cout << "test_kernels: compiled " << dispatch_detail::describe(compiled_kernel_tables())
              << "; testing (usable on this CPU) " << dispatch_detail::describe(usable) << "\n";
    return usable;
  }();
  return tables;
}

std::string table_name(const KernelTable& t) { return std::string(isa_name(t.isa)) + "/" + t.backend; }

// Weight configurations: one width for every channel, or a random mix with pruned channels.
enum class Weights { w8, w4, w2, mixed };

struct Shape {
  std::size_t m, n, k;
};
// The kernel's own name (ops::gemm_name: the identifier grep finds in backends/) and the shape, as
// chord_bench prints it: w4a8_gemm__xsimd_avx512_vnni/m:n:k. Mixed weights run the three widths' kernels.
std::string kernel_name(Weights weights, const char* activations, const KernelTable& t, const Shape& s) {
  const bool int8 = std::string(activations) == "a8";
  std::ostringstream out;
  if (weights == Weights::mixed)
    out << "wmix" << activations << " via " << gemm_name(t, 8, int8) << "+" << gemm_name(t, 4, int8) << "+"
        << gemm_name(t, 2, int8);
  else
    out << gemm_name(t, weights == Weights::w8 ? 8 : weights == Weights::w4 ? 4 : 2, int8);
  out << "/" << s.m << ":" << s.n << ":" << s.k;
  return out.str();
}

// How the data of a problem is drawn.
enum class Values { random, extreme };

// One weight matrix, activations and the reference outputs, laid out awkwardly on purpose.
struct Problem {
  Shape shape;
  Weights weights;
  QuantizedChannels channels;
  MixedMatrix w;
  std::size_t ldx = 0;
  std::vector<float> x_storage;  // x starts at x_storage[1] (unaligned); NaN past k in every row
  const float* x = nullptr;
  QuantizedRows a;               // odd stride: rows 1.. are unaligned
  std::vector<float> bias;       // empty: no bias
  std::vector<std::int32_t> acc_ref;
  std::vector<float> y_s8_ref, y_f32_ref;
  std::vector<double> f32_tolerance;  // [m, n]: the fp32 path's rounding bound for each output

  const float* bias_ptr() const { return bias.empty() ? nullptr : bias.data(); }
  bool homogeneous() const { return weights != Weights::mixed; }
};

// Draws the codes, scales and activations of a problem.
Problem draw_problem(const Shape& s, Weights weights, Values values, std::uint32_t seed) {
  Problem p;
  p.shape = s;
  p.weights = weights;
  std::mt19937 rng(seed);
  const auto bits = weights == Weights::mixed ? test::random_bits(s.n, seed + 1)
                                              : std::vector<std::uint8_t>(s.n, weights == Weights::w8   ? 8
                                                                               : weights == Weights::w4 ? 4
                                                                                                        : 2);
  QuantizedChannels& q = p.channels;
  q.n = s.n, q.k = s.k, q.bits = bits;
  q.codes.assign(s.n * s.k, 0);
  q.scales.assign(s.n, 0.0f);
  std::uniform_real_distribution<float> scale(0.001f, 0.1f);
  for (std::size_t c = 0; c < s.n; ++c) {
    if (bits[c] == 0) continue;
    q.scales[c] = scale(rng);
    std::uniform_int_distribution<int> code(code_min(bits[c]), code_max(bits[c]));
    std::bernoulli_distribution top(0.5);
    for (std::size_t j = 0; j < s.k; ++j) {
      const int value = values == Values::random ? code(rng) : (top(rng) ? code_max(bits[c]) : code_min(bits[c]));
      q.codes[c * s.k + j] = static_cast<std::int8_t>(value);
    }
  }
  p.w = MixedMatrix(q);

  p.ldx = s.k + 3;
  p.x_storage.assign(1 + s.m * p.ldx, std::numeric_limits<float>::quiet_NaN());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::bernoulli_distribution sign(0.5);
  for (std::size_t i = 0; i < s.m; ++i)
    for (std::size_t j = 0; j < s.k; ++j)
      p.x_storage[1 + i * p.ldx + j] = values == Values::random ? normal(rng) : (sign(rng) ? 1.0f : -1.0f);
  p.x = p.x_storage.data() + 1;
  if ((s.m + s.n + s.k) % 3 != 0) p.bias = test::random_normal(s.n, seed + 2);
  return p;
}

// |fl(sum x w) - sum x w| <= gamma_{k+2} sum |x||w| for each of the two sums compared (the kernel's and
// the reference's, in different orders), plus the rounding of the bias add.
double f32_tolerance(const Problem& p, std::size_t i, std::size_t c) {
  const Shape& s = p.shape;
  double abs_dot = 0.0;
  for (std::size_t j = 0; j < s.k; ++j)
    abs_dot += std::fabs(double(p.x[i * p.ldx + j]) * p.channels.codes[c * s.k + j] * p.channels.scales[c]);
  const double gamma = (s.k + 2) * double(FLT_EPSILON) / (1.0 - (s.k + 2) * double(FLT_EPSILON));
  const double bias = p.bias.empty() ? 0.0 : std::fabs(p.bias[c]);
  return 2.0 * gamma * abs_dot + 4.0 * FLT_EPSILON * bias + 1e-30;
}

// Quantizes the activations (re-laid with an odd stride) and computes the reference outputs.
void finish_problem(Problem& p) {
  const Shape& s = p.shape;
  QuantizedRows packed_rows;
  quantize_rows(p.x, s.m, s.k, p.ldx, packed_rows);
  // Same codes, re-laid with an odd stride (>= the padded k the kernels read): rows 1.. unaligned.
  p.a = QuantizedRows::from_codes(packed_rows.codes(), s.m, s.k, packed_rows.stride(), packed_rows.scales(),
                                  packed_rows.stride() + 5);
  REQUIRE(p.a.stride() == packed_rows.stride() + 5);
  for (std::size_t i = 0; i < s.m; ++i) REQUIRE(p.a.sums()[i] == packed_rows.sums()[i]);

  p.acc_ref.assign(s.m * s.n, 0);
  ref::mixed_gemm_s8_acc(p.a, p.w, p.acc_ref.data());
  p.y_s8_ref.assign(s.m * s.n, 0.0f);  // = ref::mixed_gemm_s8, without recomputing the sums
  for (std::size_t i = 0; i < s.m; ++i)
    for (std::size_t c = 0; c < s.n; ++c)
      p.y_s8_ref[i * s.n + c] = ref::dequantize_acc(p.acc_ref[i * s.n + c], p.a.scales()[i], p.w.scale(c),
                                                    p.bias.empty() ? 0.0f : p.bias[c]);
  p.y_f32_ref.assign(s.m * s.n, 0.0f);
  ref::mixed_gemm_f32(p.x, p.ldx, p.w, p.bias_ptr(), p.y_f32_ref.data(), s.n, s.m);
  p.f32_tolerance.assign(s.m * s.n, 0.0);
  for (std::size_t i = 0; i < s.m; ++i)
    for (std::size_t c = 0; c < s.n; ++c) p.f32_tolerance[i * s.n + c] = f32_tolerance(p, i, c);
}

Problem make_problem(const Shape& s, Weights weights, Values values, std::uint32_t seed) {
  Problem p = draw_problem(s, weights, values, seed);
  finish_problem(p);
  return p;
}

// An output buffer of m rows of stride n + 2, starting one element past an aligned address, filled
// with a sentinel: whatever a kernel must not write keeps it.
template <class T>
struct Output {
  std::size_t ld;
  std::vector<T> storage;
  T* data() { return storage.data() + 1; }
  Output(std::size_t m, std::size_t n, T sentinel) : ld(n + 2), storage(1 + m * (n + 2) + 1, sentinel) {}
};
constexpr float kSentinelF = -12345.0f;
constexpr std::int32_t kSentinelI = -1234567;

// The first difference from the expected values, or "" (so one REQUIRE covers a whole output).
// ok(i, c, got) accepts a value; describe(i, c, got) says what is wrong with one it rejects.
template <class T, class Ok, class Describe>
std::string first_mismatch(const Problem& p, Output<T>& out, T sentinel, bool pruned_untouched, Ok&& ok,
                           Describe&& describe) {
  const Shape& s = p.shape;
  for (std::size_t i = 0; i < s.m; ++i)
    for (std::size_t c = 0; c < out.ld; ++c) {
      const T got = out.data()[i * out.ld + c];
      if (c >= s.n || (pruned_untouched && p.w.bits(c) == 0)) {
        if (!(got == sentinel))
          return "wrote outside its outputs: (" + std::to_string(i) + ", " + std::to_string(c) + ") = " + std::to_string(got);
      } else if (!ok(i, c, got)) {
        return describe(i, c, got);
      }
    }
  if (out.storage.front() != sentinel || out.storage.back() != sentinel) return "wrote outside the output buffer";
  return "";
}

// Runs one table on one problem: int32 sums, int8-path fp32 outputs and fp32-path outputs, through the
// mixed-matrix ops (scattered columns) and, for homogeneous weights, straight into contiguous columns.
void check_table(const Problem& p, const KernelTable& table) {
  const Shape& s = p.shape;
  const auto message = [](const char* what, std::size_t i, std::size_t c, double got, double expected) {
    std::ostringstream why;
    why.precision(9);
    why << what << "(" << i << ", " << c << ") = " << got << ", reference " << expected;
    return why.str();
  };
  const auto exact_acc = [&](std::size_t i, std::size_t c, std::int32_t got) { return got == p.acc_ref[i * s.n + c]; };
  const auto wrong_acc = [&](std::size_t i, std::size_t c, std::int32_t got) {
    return message("acc", i, c, got, p.acc_ref[i * s.n + c]);
  };
  const auto exact_y = [&](std::size_t i, std::size_t c, float got) { return got == p.y_s8_ref[i * s.n + c]; };
  const auto wrong_y = [&](std::size_t i, std::size_t c, float got) {
    return message("y", i, c, got, p.y_s8_ref[i * s.n + c]);
  };
  const auto close_y = [&](std::size_t i, std::size_t c, float got) {
    return std::fabs(double(got) - p.y_f32_ref[i * s.n + c]) <= p.f32_tolerance[i * s.n + c];
  };
  const auto far_y = [&](std::size_t i, std::size_t c, float got) {
    return message("y", i, c, got, p.y_f32_ref[i * s.n + c]) + ", tolerance " +
           std::to_string(p.f32_tolerance[i * s.n + c]);
  };

  {  // int32 sums, through each segment's kernel (as ops::mixed_gemm_s8_acc, but strided and unaligned)
    INFO(kernel_name(p.weights, "a8", table, s) << " (int32 sums)");
    Output<std::int32_t> acc(s.m, s.n, kSentinelI);
    for (const MixedMatrix::Segment& seg : p.w.segments())
      table.s8(seg.bits)(p.a, seg.packed, GemmOutput{nullptr, acc.data(), acc.ld, seg.channels.data(), nullptr});
    REQUIRE(first_mismatch(p, acc, kSentinelI, true, exact_acc, wrong_acc) == "");
  }
  {
    INFO(kernel_name(p.weights, "a8", table, s) << " (fp32 outputs)");
    Output<float> y(s.m, s.n, kSentinelF);
    ops::mixed_gemm_s8(table, p.a, p.w, p.bias_ptr(), y.data(), y.ld);
    REQUIRE(first_mismatch(p, y, kSentinelF, false, exact_y, wrong_y) == "");
  }
  {
    INFO(kernel_name(p.weights, "f32", table, s));
    Output<float> y(s.m, s.n, kSentinelF);
    ops::mixed_gemm_f32(table, p.x, p.ldx, s.m, p.w, p.bias_ptr(), y.data(), y.ld);
    REQUIRE(first_mismatch(p, y, kSentinelF, false, close_y, far_y) == "");
  }
  if (p.homogeneous() && !p.w.segments().empty()) {  // columns == null: the contiguous store path
    const MixedMatrix::Segment& seg = p.w.segments().front();
    INFO(kernel_name(p.weights, "a8", table, s) << " (contiguous columns)");
    Output<float> y(s.m, s.n, kSentinelF);
    table.s8(seg.bits)(p.a, seg.packed, GemmOutput{y.data(), nullptr, y.ld, nullptr, p.bias_ptr()});
    REQUIRE(first_mismatch(p, y, kSentinelF, false, exact_y, wrong_y) == "");
    Output<float> y32(s.m, s.n, kSentinelF);
    table.f32(seg.bits)(p.x, p.ldx, s.m, seg.packed, GemmOutput{y32.data(), nullptr, y32.ld, nullptr, p.bias_ptr()});
    REQUIRE(first_mismatch(p, y32, kSentinelF, false, close_y, far_y) == "");
  }
}

void check_all_tables(const std::vector<Shape>& shapes, Values values, std::uint32_t seed) {
  for (const Shape& s : shapes)
    for (Weights weights : {Weights::w8, Weights::w4, Weights::w2, Weights::mixed}) {
      const Problem p = make_problem(s, weights, values, seed++);
      for (const KernelTable& table : tested_tables()) check_table(p, table);
    }
}

// ruy's sizes around powers of two, and the row counts around every register block (1, 2, 4, 8 rows).
const std::vector<std::size_t> kRows = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33};
const std::vector<std::size_t> kFewN = {1, 16, 17, 33};
const std::vector<std::size_t> kFewK = {1, 4, 15, 17, 65};

}  // namespace

TEST_CASE("kernels: usable tables are ranked and include the scalar fallback", "[kernels][dispatch]") {
  const std::vector<KernelTable>& tables = tested_tables();
  REQUIRE(!tables.empty());
  REQUIRE(tables.back().isa == Isa::scalar);
  for (std::size_t t = 0; t < tables.size(); ++t) {
    INFO(table_name(tables[t]));
    REQUIRE(cpu_supports(tables[t].isa));
    for (int bits : kPackedBits) {
      REQUIRE(tables[t].s8(bits) != nullptr);
      REQUIRE(tables[t].f32(bits) != nullptr);
      // Every gemm is named after its table, w{b}{a8|f32}_gemm__<backend>[_<isa>] (the scalar backend's
      // without the ISA), so that names printed here and by chord_bench are the identifiers in backends/.
      const std::string b = std::to_string(bits), backend = tables[t].backend;
      const std::string suffix = backend == "scalar" ? "scalar" : backend + "_" + std::string(isa_name(tables[t].isa));
      REQUIRE(gemm_name(tables[t], bits, true) == "w" + b + "a8_gemm__" + suffix);
      REQUIRE(gemm_name(tables[t], bits, false) == "w" + b + "f32_gemm__" + suffix);
    }
    if (t > 0) REQUIRE(dispatch_detail::isa_rank(tables[t - 1].isa) >= dispatch_detail::isa_rank(tables[t].isa));
  }
  // The best table is the first usable one unless the environment forces another (ctest runs this
  // case again as test_kernels_forced, with CHORD_ISA=scalar).
  const std::string forced_isa = dispatch_detail::environment("CHORD_ISA");
  const std::string forced_backend = dispatch_detail::environment("CHORD_BACKEND");
  if (forced_isa.empty() && forced_backend.empty()) {
    REQUIRE(best_kernels().isa == tables.front().isa);
    REQUIRE(std::string(best_kernels().backend) == tables.front().backend);
  } else {
    INFO("CHORD_ISA=" << forced_isa << " CHORD_BACKEND=" << forced_backend);
    if (!forced_isa.empty()) REQUIRE(isa_name(best_kernels().isa) == forced_isa);
    if (!forced_backend.empty() && forced_isa != "scalar") REQUIRE(best_kernels().backend == forced_backend);
  }
}

TEST_CASE("kernels: forcing an ISA or backend", "[kernels][dispatch]") {
  for (const KernelTable& t : tested_tables()) {
    const KernelTable chosen = select_kernels(t.isa, t.backend);
    REQUIRE(chosen.isa == t.isa);
    REQUIRE(std::string(chosen.backend) == t.backend);
    REQUIRE(chosen.s8(4) == t.s8(4));
    REQUIRE(select_kernels(std::string(isa_name(t.isa)), "").isa == t.isa);
  }
  // The scalar ISA is every backend's fallback.
  REQUIRE(select_kernels(Isa::scalar, "xsimd").isa == Isa::scalar);
  REQUIRE(select_kernels("", "scalar").isa == Isa::scalar);
  // An ISA this CPU or build cannot run is refused with the list of what can.
  bool refused_one = false;
  for (Isa isa : dispatch_detail::kAllIsas) {
    bool usable = false;
    for (const KernelTable& t : tested_tables()) usable = usable || t.isa == isa;
    if (usable) continue;
    INFO("ISA " << isa_name(isa));
    REQUIRE_THROWS_AS(select_kernels(isa), Error);
    REQUIRE_THROWS_WITH(select_kernels(isa), Catch::Contains("usable: ") && Catch::Contains("scalar/scalar"));
    refused_one = true;
  }
  REQUIRE(refused_one);  // x86 never runs the ARM ISAs and vice versa
  REQUIRE_THROWS_WITH(select_kernels("avx3", ""), Catch::Contains("unknown ISA 'avx3'"));
  REQUIRE_THROWS_WITH(select_kernels("", "eigen"), Catch::Contains("unknown kernel backend 'eigen'"));
  REQUIRE_THROWS_AS(parse_isa("Neon"), Error);
  REQUIRE(parse_isa("neon_dotprod") == Isa::neon_dotprod);
}

TEST_CASE("kernels: the int8 expectations are ref::mixed_gemm_s8's outputs", "[kernels]") {
  for (Weights weights : {Weights::w8, Weights::mixed}) {
    const Problem p = make_problem({5, 33, 70}, weights, Values::random, 900);
    std::vector<float> y(p.y_s8_ref.size(), kSentinelF);
    ref::mixed_gemm_s8(p.a, p.w, p.bias_ptr(), y.data(), p.shape.n);
    REQUIRE(y == p.y_s8_ref);
  }
}

TEST_CASE("kernels: gemv (m = 1) and m = 5 over every n x k of the awkward sizes", "[kernels]") {
  std::vector<Shape> shapes;
  for (std::size_t m : {1, 5})
    for (std::size_t n : test::kAwkwardSizes)
      for (std::size_t k : test::kAwkwardSizes)
        if (m == 1 || (n + k) % 4 == 0) shapes.push_back({m, n, k});  // m = 5: a quarter of the grid
  check_all_tables(shapes, Values::random, 1000);
}

TEST_CASE("kernels: every row count around the register blocks", "[kernels]") {
  std::vector<Shape> shapes;
  for (std::size_t m : kRows)
    for (std::size_t n : kFewN)
      for (std::size_t k : kFewK) shapes.push_back({m, n, k});
  shapes.push_back({0, 0, 0});
  shapes.push_back({3, 0, 17});
  shapes.push_back({3, 17, 0});
  check_all_tables(shapes, Values::random, 2000);
}

TEST_CASE("kernels: larger shapes and k off the k-group", "[kernels]") {
  check_all_tables({{200, 64, 64}, {33, 97, 50}, {9, 50, 200}, {4, 40, 1000}, {1, 300, 777}}, Values::random, 3000);
}

TEST_CASE("kernels: extreme activations (+-127) and extreme codes stay exact", "[kernels]") {
  check_all_tables({{1, 16, 64}, {8, 33, 129}, {17, 17, 1023}, {3, 33, 4096}}, Values::extreme, 4000);
}

// Every table on a problem whose int32 sums are the largest possible: every code at one end, every
// activation +127 (row 0); a wrapped sum would differ from the reference's by 2^32. Only int8 weights
// come near the limit (int4: 15 * 127 * 2^16 < 2^27).
void check_full_scale(std::size_t k) {
  const Shape s{2, 17, k};
  Problem p = draw_problem(s, Weights::w8, Values::extreme, 5000);
  for (std::size_t c = 0; c < s.n; ++c)
    for (std::size_t j = 0; j < s.k; ++j)
      p.channels.codes[c * s.k + j] = static_cast<std::int8_t>(c % 2 ? code_min(p.channels.bits[c]) : code_max(p.channels.bits[c]));
  p.w = MixedMatrix(p.channels);
  for (std::size_t j = 0; j < s.k; ++j) p.x_storage[1 + j] = 1.0f;  // row 0: all +127 after quantizing
  finish_problem(p);
  for (const KernelTable& table : tested_tables()) check_table(p, table);
}

TEST_CASE("kernels: k = 2^16 at full scale is exact", "[kernels]") { check_full_scale(std::size_t(1) << 16); }

TEST_CASE("kernels: k = kMaxS8DotK (the int32 bound) at full scale is exact on every table", "[kernels]") {
  check_full_scale(kMaxS8DotK);
}

// Readers get const views only: nothing outside the quantizers and from_codes can write a code.
static_assert(std::is_same_v<decltype(std::declval<const QuantizedRows&>().codes()), const std::int8_t*> &&
              std::is_same_v<decltype(std::declval<QuantizedRows&>().codes()), const std::int8_t*>);

TEST_CASE("kernels: the int8 ops refuse k past the bound, QuantizedRows refuses -128 codes, on every table", "[kernels]") {
  for (const std::size_t k : {kMaxS8DotK + 1, std::size_t(140000)}) {
    const std::vector<float> x(k, 1.0f);
    const std::uint8_t bits8 = 8;
    const MixedMatrix w(x.data(), 1, k, &bits8);
    for (const KernelTable& table : tested_tables()) {
      INFO(table.backend << " k " << k);
      const QuantizedRows a = ops::quantize_rows(table, x.data(), 1, k);
      float y = 0.0f;
      std::int32_t acc = 0;
      REQUIRE_THROWS_WITH(ops::mixed_gemm_s8(table, a, w, nullptr, &y, 1), Catch::Contains("exceeds kMaxS8DotK"));
      REQUIRE_THROWS_WITH(ops::mixed_gemm_s8_acc(table, a, w, &acc), Catch::Contains("exceeds kMaxS8DotK"));
    }
  }
  const std::size_t k = 64;
  std::vector<float> x(3 * k, 0.5f);
  const std::uint8_t bits[3] = {8, 4, 2};
  const MixedMatrix w(x.data(), 3, k, bits);
  for (const KernelTable& table : tested_tables()) {
    INFO(table.backend);
    // -128 cannot reach a kernel: the struct's only way in for hand-made codes refuses it (below).
    const QuantizedRows a = ops::quantize_rows(table, x.data(), 2, k);
    std::vector<std::int8_t> codes(a.codes(), a.codes() + 2 * a.stride());
    codes[a.stride() + 5] = -128;
    REQUIRE_THROWS_WITH(QuantizedRows::from_codes(codes.data(), 2, k, a.stride(), a.scales()),
                        Catch::Contains("-128 at (1, 5)"));
    codes[a.stride() + 5] = -127;  // the same rows without it go through and run like the quantized ones
    const QuantizedRows b = QuantizedRows::from_codes(codes.data(), 2, k, a.stride(), a.scales());
    std::vector<float> y(2 * 3), y_ref(2 * 3);
    ops::mixed_gemm_s8(table, b, w, nullptr, y.data(), 3);
    ref::mixed_gemm_s8(b, w, nullptr, y_ref.data(), 3);
    REQUIRE(y == y_ref);
    const float bad_scales[2] = {1.0f, -1.0f};
    REQUIRE_THROWS_WITH(QuantizedRows::from_codes(codes.data(), 2, k, a.stride(), bad_scales),
                        Catch::Contains("scale 1 is -1"));
    std::vector<float> bad = x;
    bad[k + 7] = std::numeric_limits<float>::quiet_NaN();
    REQUIRE_THROWS_WITH(ops::quantize_rows(table, bad.data(), 2, k), Catch::Contains("(1, 7) is not finite"));
  }
}

TEST_CASE("kernels: output columns in any order (a tile's ends in place, its middle swapped)", "[kernels]") {
  // GemmOutput::columns is any list of distinct columns, not only a mixed matrix's ascending ones.
  // Kernels take a fast path for a tile whose columns are consecutive; these lists keep each tile's
  // first and last column where a consecutive run would have them but swap two in the middle (a check
  // of the ends alone would be fooled), or shuffle the whole list.
  std::uint32_t seed = 6000;
  for (const Shape& s : std::vector<Shape>{{1, 33, 17}, {3, 48, 64}, {9, 16, 40}, {17, 40, 65}})
    for (Weights weights : {Weights::w8, Weights::w4, Weights::w2})
      for (bool shuffle : {false, true}) {
        const Problem p = make_problem(s, weights, Values::random, seed++);
        std::vector<std::uint32_t> columns(s.n);
        for (std::size_t c = 0; c < s.n; ++c) columns[c] = static_cast<std::uint32_t>(c);
        if (shuffle) std::shuffle(columns.begin(), columns.end(), std::mt19937(seed));
        else
          for (std::size_t t = 0; t + 3 <= s.n; t += kTileN) std::swap(columns[t + 1], columns[t + 2]);
        const MixedMatrix::Segment& seg = p.w.segments().front();  // homogeneous: segment row r = channel r
        for (const KernelTable& table : tested_tables()) {
          INFO(kernel_name(p.weights, "a8", table, s) << (shuffle ? " (shuffled columns)" : " (swapped columns)"));
          Output<std::int32_t> acc(s.m, s.n, kSentinelI);
          table.s8(seg.bits)(p.a, seg.packed, GemmOutput{nullptr, acc.data(), acc.ld, columns.data(), nullptr});
          Output<float> y(s.m, s.n, kSentinelF);
          table.s8(seg.bits)(p.a, seg.packed, GemmOutput{y.data(), nullptr, y.ld, columns.data(), nullptr});
          std::string mismatch;
          for (std::size_t i = 0; i < s.m && mismatch.empty(); ++i)
            for (std::size_t r = 0; r < s.n && mismatch.empty(); ++r) {
              const std::int32_t want = p.acc_ref[i * s.n + r];
              const float want_y = ref::dequantize_acc(want, p.a.scales()[i], p.w.scale(r), 0.0f);
              if (acc.data()[i * acc.ld + columns[r]] != want || y.data()[i * y.ld + columns[r]] != want_y)
                mismatch = "row " + std::to_string(i) + ", channel " + std::to_string(r) + " -> column " +
                           std::to_string(columns[r]);
            }
          REQUIRE(mismatch == "");
        }
      }
}
