// Step 6: the int8 dot product on AVX2, which has no dot-product instruction (vpmaddubsw + vpmaddwd).
//
// What it teaches: how step 2's panels run on the x86 CPUs most laptops have (AVX2, no AVX-512 VNNI),
// and why such a kernel reaches only about half of what its multiply instruction promises.
//
// The same 64-byte panel as step 2 (16 channels x 4 k-bytes) is two ymm registers of 8 channels.
// AVX2 has no vpdpbusd; the 4-byte dot product of each 32-bit lane takes two instructions:
//     vpmaddubsw(u8 w, s8 a) -> int16 lanes: w0 a0 + w1 a1, w2 a2 + w3 a3   (saturating!)
//     vpmaddwd(that, 1)      -> int32 lanes: the sum of the lane's 4 products
// and a vpaddd into the accumulator. The saturation matters for 8-bit weights: the panel stores
// u = q + 128 up to 255, and 255 * 127 + 255 * 127 = 64770 does not fit int16. So the kernel turns the
// byte back into the signed code q = u ^ 0x80 and multiplies |q| by a * sign(q) (vpabsb, vpsignb):
// |q| <= 128 is a valid unsigned operand, a * sign(q) stays in [-127, 127], and a pair is at most
// 2 * 128 * 127 = 32512. No saturation, and no 128 * sum(a) correction either (the product is q * a).
// (backends/xsimd/include/chord/backends/xsimd/s8_avx2.hpp does the same, with more rows per pass.)
//
// Why about half the nominal peak. vpmaddubsw multiplies 32 byte pairs per ymm, and a Zen 4 or a
// Skylake core issues two per cycle: 64 multiply-adds per cycle is AVX2's nominal int8 peak. But every
// vpmaddubsw needs its vpmaddwd, and the two compete for the same two vector multiply pipes: one
// useful pair per cycle, 32 multiply-adds. VNNI's vpdpbusd fuses both (and the add) into one
// instruction on 16 lanes of a zmm: 64 per instruction. The step measures this on your CPU: a loop of
// vpmaddubsw alone against the loop of the full step (maddubs + maddwd + add), both from registers.
//
// Checks: the int32 accumulators equal step 1's exactly (also at an odd 37 x 301); the library's AVX2
// table gives the same outputs as chord::ref. Runs where the CPU has AVX2 (exit 77 = skipped: other
// CPUs, and builds for other architectures, e.g. aarch64, where the step compiles to the skip).
//
// Exercises (check each with the program's own "check:" line, or `ctest -L examples`):
//   1. Remove the vpsignb/vpabsb pair (use u and a directly, then subtract 128 * sum(a) as step 2
//      does): the check fails on random data. Find the first channel that differs and show by hand
//      that its int16 pair saturated.
//   2. Change kRows from 4 to 1 and to 8: how does the GMAC/s of the step's kernel move, and why (how
//      many times is each loaded weight panel used)? Where does it stop improving (16 ymm registers)?
//   3. In the peak loop, replace vpmaddwd by a second vpmaddubsw: the "full step" rate should rise to
//      the "maddubs alone" rate, showing that the pipes, not the loads, set the limit.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EXAMPLE_HAVE_AVX2 1
#endif

#include "chord/core/quantize_rows.hpp"
#include "chord/core/packed.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ref/gemm.hpp"

#include "example_util.hpp"

namespace {

using namespace chord::examples;

constexpr int kSkipped = 77;  // ctest's SKIP_RETURN_CODE for this step

#if defined(EXAMPLE_HAVE_AVX2)
using chord::kDot;
using chord::kPanelBytes;
using chord::kTileN;

constexpr std::size_t kRows = 4;  // tokens per pass: each loaded panel is used kRows times

// w: [n, k] packed int8 (step 2's panels); a: kRows rows of [k] int8 codes (zero-padded past k);
// acc: [kRows, w.rows_padded()] int32 = sum_j q[c][j] * a[r][j]. a.m() must be a multiple of kRows.
__attribute__((target("avx2")))
void packed_gemm_s8_avx2(const chord::PackedMatrix& w, const chord::QuantizedRows& a, std::int32_t* acc) {
  const __m256i top_bit = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  const std::size_t ld = w.rows_padded();
  for (std::size_t i = 0; i < a.m(); i += kRows)
    for (std::size_t t = 0; t < w.tiles(); ++t) {
      const std::uint8_t* panel = w.tile(t);
      __m256i sum[kRows][2];
      for (std::size_t r = 0; r < kRows; ++r) sum[r][0] = sum[r][1] = _mm256_setzero_si256();
      for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes) {
        for (int h = 0; h < 2; ++h) {  // channels 8h .. 8h+7 of the tile
          const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + 32 * h));
          const __m256i q = _mm256_xor_si256(u, top_bit);  // the signed code q = u - 128
          const __m256i magnitude = _mm256_abs_epi8(q);     // |q| <= 128: a valid u8 operand
          for (std::size_t r = 0; r < kRows; ++r) {
            const __m256i x = _mm256_set1_epi32(load4(a.row(i + r) + g * kDot));  // a[4g..4g+3] x 8 lanes
            const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(x, q));  // |q| (a sign q)
            sum[r][h] = _mm256_add_epi32(sum[r][h], _mm256_madd_epi16(pairs, ones));       // 4 products
          }
        }
      }
      for (std::size_t r = 0; r < kRows; ++r)
        for (int h = 0; h < 2; ++h)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + (i + r) * ld + t * kTileN + 8 * h), sum[r][h]);
    }
}

// A register-only loop: vpmaddubsw alone (the nominal peak), or the full step (maddubs + maddwd + add),
// `iterations` x 8 independent chains (they hide the latencies) x 32 multiply-adds. sink: [8] results.
// Named variables, not arrays, and few enough for the 16 ymm registers: GCC keeps an array of vectors
// (or what does not fit) on the stack, and the loop would then measure loads and stores.
__attribute__((target("avx2")))
void peak_loop(bool full_step, long iterations, std::int32_t* sink) {
  __m256i v0 = _mm256_set1_epi8(1), v1 = _mm256_set1_epi8(2), v2 = _mm256_set1_epi8(3), v3 = _mm256_set1_epi8(4);
  __m256i v4 = _mm256_set1_epi8(5), v5 = _mm256_set1_epi8(6), v6 = _mm256_set1_epi8(7), v7 = _mm256_set1_epi8(8);
  __m256i a0 = v0, a1 = v1, a2 = v2, a3 = v3;
  const __m256i w = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
  if (full_step) {
    // Twice 4 products per iteration, from v0..v3 (the adds, not the multiplies, form the chains here).
    // The empty asm says v0..v3 "change", so the compiler can neither hoist nor merge the multiplies.
    for (long it = 0; it < iterations; ++it) {
      __asm__("" : "+x"(v0), "+x"(v1), "+x"(v2), "+x"(v3));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v0), ones));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v1), ones));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v2), ones));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v3), ones));
      __asm__("" : "+x"(v0), "+x"(v1), "+x"(v2), "+x"(v3));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v0), ones));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v1), ones));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v2), ones));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_maddubs_epi16(w, v3), ones));
    }
  } else {
    for (long it = 0; it < iterations; ++it) {  // each int16 result is the next signed operand
      v0 = _mm256_maddubs_epi16(w, v0);
      v1 = _mm256_maddubs_epi16(w, v1);
      v2 = _mm256_maddubs_epi16(w, v2);
      v3 = _mm256_maddubs_epi16(w, v3);
      v4 = _mm256_maddubs_epi16(w, v4);
      v5 = _mm256_maddubs_epi16(w, v5);
      v6 = _mm256_maddubs_epi16(w, v6);
      v7 = _mm256_maddubs_epi16(w, v7);
    }
  }
  const __m256i all = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(v0, v1), _mm256_add_epi32(v2, v3)),
                                       _mm256_add_epi32(_mm256_add_epi32(v4, v5), _mm256_add_epi32(v6, v7)));
  const __m256i accs = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sink), _mm256_add_epi32(all, accs));
}

// Multiply-adds per second (GMAC/s) of peak_loop: the fastest of many short runs (a peak is what the
// core can do; on a shared machine a long run would mostly measure the other jobs).
double peak_gmacs(bool full_step) {
  const long iterations = 20000;  // about 0.1 ms at the peak
  std::int32_t sink[8];
  double best = 1e30;
  for (int r = 0; r < 101; ++r) best = std::min(best, median_ms(1, [&] { peak_loop(full_step, iterations, sink); }));
  return double(iterations) * 8 * 32 / best * 1e-6;
}

// acc: [m, rows_padded] -> y: [m, n], step 1's epilogue (ref::dequantize_acc's order).
void epilogue(const std::int32_t* acc, const chord::QuantizedRows& a, const chord::PackedMatrix& w, float* y) {
  for (std::size_t i = 0; i < a.m(); ++i)
    for (std::size_t c = 0; c < w.rows(); ++c)
      y[i * w.rows() + c] = float(acc[i * w.rows_padded() + c]) * a.scales()[i] * w.scales()[c];
}

// One shape, m tokens: the step's kernel against step 1 (exact), the library's AVX2 table against ref.
bool run(std::size_t m, std::size_t n, std::size_t k, int reps, bool print) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal;
  std::vector<float> w(n * k), x(m * k);
  for (std::size_t c = 0; c < n; ++c)
    for (std::size_t j = 0; j < k; ++j) w[c * k + j] = 0.02f * (1.0f + float(c % 7)) * normal(rng);
  for (float& v : x) v = normal(rng);
  const std::vector<std::uint8_t> bits(n, 8);
  const chord::QuantizedChannels q = chord::quantize_channels(w.data(), n, k, bits.data());
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), m, k);
  const chord::PackedMatrix packed(8, q.codes.data(), q.scales.data(), n, k);

  std::vector<std::int32_t> acc_step1(n), acc(m * packed.rows_padded());
  packed_gemm_s8_avx2(packed, a, acc.data());
  bool ok = true;
  for (std::size_t i = 0; i < m; ++i) {
    naive_gemv_s8(q.codes.data(), a.row(i), n, k, acc_step1.data());
    for (std::size_t c = 0; c < n; ++c) ok = ok && acc[i * packed.rows_padded() + c] == acc_step1[c];
  }
  const chord::KernelTable library = chord::select_kernels(chord::Isa::avx2);
  std::vector<float> y(m * n), y_library(m * n), y_ref(m * n);
  epilogue(acc.data(), a, packed, y.data());
  library.s8(8)(a, packed, chord::GemmOutput{y_library.data(), nullptr, n, nullptr, nullptr});
  chord::ref::mixed_gemm_s8(a, chord::MixedMatrix(q), nullptr, y_ref.data(), n);
  ok = ok && y == y_ref && y_library == y_ref;
  if (!print) return ok;

  const double macs = double(m * n * k);
  const auto line = [&](const std::string& what, double ms) {
    std::printf("  %-40s %9.3f ms  %7.2f GMAC/s\n", what.c_str(), ms, macs / ms * 1e-6);
  };
  std::printf("Step 6: int8 gemm on AVX2, %zu tokens x W [%zu x %zu] (%zu KiB packed: it stays in the caches, so "
              "the multiply pipes set the pace)\n",
              m, n, k, packed.bytes() / 1024);
  line("this step: vpmaddubsw + vpmaddwd, 4 rows", median_ms(reps, [&] { packed_gemm_s8_avx2(packed, a, acc.data()); }));
  const auto library_ms = [&](const chord::KernelTable& t) {
    return median_ms(reps, [&] { t.s8(8)(a, packed, chord::GemmOutput{y_library.data(), nullptr, n, nullptr, nullptr}); });
  };
  line(std::string("library: avx2/") + library.backend, library_ms(library));
  if (chord::cpu_supports(chord::Isa::avx512_vnni)) {
    const chord::KernelTable vnni = chord::select_kernels(chord::Isa::avx512_vnni);
    line(std::string("library: avx512_vnni/") + vnni.backend + " (vpdpbusd)", library_ms(vnni));
  } else {
    std::printf("  (no AVX-512 VNNI on this CPU: step 2's vpdpbusd cannot run here)\n");
  }
  const double alone = peak_gmacs(false), full = peak_gmacs(true);
  std::printf("  register-only loops, one core: vpmaddubsw alone %.1f GMAC/s (the nominal peak), maddubs + maddwd "
              "+ add %.1f GMAC/s: %.0f %% of it\n",
              alone, full, 100.0 * full / alone);
  return ok;
}
#endif

}  // namespace

int main() {
#if defined(EXAMPLE_HAVE_AVX2)
  if (!chord::cpu_supports(chord::Isa::avx2)) {
    std::printf("Step 6: skipped: this CPU has no AVX2 (+FMA)\n");
    return kSkipped;
  }
  print_guide("the int8 dot product on AVX2 without a dot instruction (vpmaddubsw + vpmaddwd), and its cost",
              "'check: ok'; the full step at about half of 'maddubs alone'; VNNI, if listed, several times\n"
              "          faster (one fused instruction on 64-byte registers); the library's general avx2 kernel");
  const bool quick = quick_mode();
  const bool odd_ok = run(4, 37, 301, 1, false);
  const bool ok = run(quick ? 8 : 64, quick ? 64 : 512, quick ? 256 : 1024, quick ? 3 : 15, true);
  std::printf("  check: int32 accumulators == step 1 (exact), y == ref::mixed_gemm_s8 and == the library's avx2 "
              "table, also at 37 x 301: %s\n",
              odd_ok && ok ? "ok" : "FAIL");
  return odd_ok && ok ? 0 : 1;
#else
  std::printf("Step 6: skipped: AVX2 is an x86 instruction set (this build is for another architecture)\n");
  return kSkipped;
#endif
}
