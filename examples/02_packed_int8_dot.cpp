// Step 2: packed int8 weights and a dot-product instruction (vpdpbusd, sdot).
//
// What it teaches: why the library stores weights in 64-byte panels, and how one instruction then
// does 64 multiply-adds. A dot-product instruction adds, in each 32-bit lane, the 4 products of 4 byte
// pairs. So the weights are packed (chord::PackedMatrix, docs/packing.md) in tiles of 16 channels x
// k-groups of 4: panel g of tile t is 64 bytes, byte 4c + j = weight (channel 16t + c, column 4g + j):
//
//     byte:  0  1  2  3 | 4  5  6  7 | ... | 60 61 62 63        one panel = one zmm register
//           c0 c0 c0 c0 | c1 c1 c1 c1| ... | c15 ...            = four NEON q-registers
//           k0 k1 k2 k3 | k0 k1 k2 k3| ... | k0 k1 k2 k3
//
// and the 4 activations a[4g .. 4g+3] are broadcast to all 16 lanes: one instruction then advances
// 16 channels by 4 columns. No shuffles, no horizontal sums: lane c ends up holding channel c's dot.
//
// The unsigned-offset trick. x86's vpdpbusd multiplies UNSIGNED bytes by SIGNED bytes. The panel
// stores u = q + 128 (in [0, 255]) instead of the code q, and the activations stay signed, so
//     sum_j u_j a_j = sum_j (q_j + 128) a_j = sum_j q_j a_j + 128 * sum_j a_j
// and the kernel subtracts 128 * sum(a) once per output: the row sum comes with the quantized
// activations (QuantizedRows::sums), nothing is fixed up per weight. ARM's sdot is signed x signed:
// there u ^ 0x80 turns the byte back into q (flip the top bit = subtract 128 mod 256) and no
// correction is needed. The portable kernel below does the offset arithmetic in plain C++.
//
// The SIMD kernels are compiled with function target attributes, not with -m flags for the whole
// file, and chosen at run time with chord::detect_cpu(): the program still starts on a CPU without
// VNNI or dotprod, and runs the portable kernel there. The library does the same at a larger scale
// (one translation unit per ISA, chord/ops/dispatch.hpp).
//
// Checks: the int32 accumulators equal step 1's (exactly), and the library's kernel on the same
// packed matrix gives the same outputs. Prints the speedup over step 1 (its kernel, repeated here).
// Exercises (check: the "check:" line):
//   1. Drop "- 128 * a.sums()[0]" in the portable kernel: the check fails, and every channel is off by the
//      same amount. Print acc_portable[c] - acc_step1[c] and compare it with 128 * a.sums()[0].
//   2. Run with CHORD_ISA=scalar: the chosen kernel is the portable one; by how much is it slower?
//   3. Time a 64 x 64 layer (change the shape in main): the SIMD speedup shrinks. What dominates now?
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EXAMPLE_HAVE_VNNI 1
#elif defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
#include <arm_neon.h>
#define EXAMPLE_HAVE_DOTPROD 1
#endif

#include "chord/core/quantize_rows.hpp"
#include "chord/core/packed.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ref/gemm.hpp"

#include "example_util.hpp"

namespace {

using namespace chord::examples;

using chord::kDot;
using chord::kPanelBytes;
using chord::kTileN;

// The kernels of this step. All three: w: [n, k] packed int8 (panels), a: one row of [k] int8 codes,
// zero-padded past k (QuantizedRows pads to 16, so reading whole k-groups of 4 is safe);
// acc: [w.rows_padded()] int32 = sum_j q[c][j] * a[j].

// Portable: the same walk over the panels, one lane at a time, with the unsigned-offset arithmetic.
void packed_gemv_s8_portable(const chord::PackedMatrix& w, const chord::QuantizedRows& a, std::int32_t* acc) {
  const std::int8_t* x = a.row(0);
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    std::int32_t lanes[kTileN] = {};
    const std::uint8_t* panel = w.tile(t);
    for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes)
      for (std::size_t c = 0; c < kTileN; ++c)      // lane c = channel 16t + c
        for (std::size_t j = 0; j < kDot; ++j)      // the 4 products one instruction would add
          lanes[c] += std::int32_t(panel[c * kDot + j]) * x[g * kDot + j];  // u * a, u = q + 128
    for (std::size_t c = 0; c < kTileN; ++c) acc[t * kTileN + c] = lanes[c] - 128 * a.sums()[0];
  }
}

#if defined(EXAMPLE_HAVE_VNNI)
// AVX-512 VNNI: one zmm accumulator = the 16 channels of a tile; one vpdpbusd per panel.
// The target attribute lets this one function use AVX-512 instructions (and only it: call it after
// checking the CPU). Every __m512i stays inside it, so no other function's ABI changes.
__attribute__((target("avx512f,avx512bw,avx512vnni")))
void packed_gemv_s8_vnni(const chord::PackedMatrix& w, const chord::QuantizedRows& a, std::int32_t* acc) {
  const std::int8_t* x = a.row(0);
  const __m512i offset = _mm512_set1_epi32(128 * a.sums()[0]);
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    const std::uint8_t* panel = w.tile(t);
    __m512i sum = _mm512_setzero_si512();
    for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes) {
      const __m512i weights = _mm512_loadu_si512(panel);                    // u8: 16 channels x 4 k
      const __m512i activations = _mm512_set1_epi32(load4(x + g * kDot));   // s8: a[4g..4g+3] x 16
      sum = _mm512_dpbusd_epi32(sum, weights, activations);                 // lane c += sum_j u * a
    }
    _mm512_storeu_si512(acc + t * kTileN, _mm512_sub_epi32(sum, offset));   // remove 128 * sum(a)
  }
}
#endif

#if defined(EXAMPLE_HAVE_DOTPROD)
// ARM dotprod (armv8.2-a): a tile is four q-registers of 4 channels; one sdot per q-register.
// GCC's arm_neon.h declares vdotq_s32 for arch=armv8.2-a+dotprod: this function is compiled for it.
__attribute__((target("arch=armv8.2-a+dotprod")))
void packed_gemv_s8_dotprod(const chord::PackedMatrix& w, const chord::QuantizedRows& a, std::int32_t* acc) {
  const std::int8_t* x = a.row(0);
  const uint8x16_t top_bit = vdupq_n_u8(0x80);
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    const std::uint8_t* panel = w.tile(t);
    int32x4_t sum[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes) {
      const int8x16_t activations = vreinterpretq_s8_s32(vdupq_n_s32(load4(x + g * kDot)));
      for (int r = 0; r < 4; ++r) {  // channels 4r .. 4r+3
        // u ^ 0x80 = q: sdot is signed x signed and would read u >= 128 as negative.
        const int8x16_t weights = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(panel + 16 * r), top_bit));
        sum[r] = vdotq_s32(sum[r], weights, activations);
      }
    }
    for (int r = 0; r < 4; ++r) vst1q_s32(acc + t * kTileN + 4 * r, sum[r]);  // q * a: no offset
  }
}
#endif

using PackedGemv = void (*)(const chord::PackedMatrix&, const chord::QuantizedRows&, std::int32_t*);

struct Choice {
  const char* name;
  PackedGemv kernel;
};

// The best kernel of this file that the running CPU can execute.
Choice choose_kernel() {
  [[maybe_unused]] const chord::CpuFeatures cpu = chord::detect_cpu();
  const char* forced = std::getenv("CHORD_ISA");  // CHORD_ISA=scalar: the portable kernel, as in the library
  if (forced != nullptr && std::string(forced) == "scalar")
    return {"portable (forced by CHORD_ISA)", packed_gemv_s8_portable};
#if defined(EXAMPLE_HAVE_VNNI)
  if (cpu.avx512f && cpu.avx512bw && cpu.avx512vnni) return {"avx512_vnni (vpdpbusd)", packed_gemv_s8_vnni};
#endif
#if defined(EXAMPLE_HAVE_DOTPROD)
  if (cpu.dotprod) return {"neon_dotprod (sdot)", packed_gemv_s8_dotprod};
#endif
  return {"portable (no VNNI / dotprod on this CPU)", packed_gemv_s8_portable};
}

// acc: [rows_padded] -> y: [rows], the epilogue of step 1 (ref::dequantize_acc's order).
void epilogue(const std::int32_t* acc, const chord::QuantizedRows& a, const chord::PackedMatrix& w, float* y) {
  for (std::size_t c = 0; c < w.rows(); ++c) y[c] = float(acc[c]) * a.scales()[0] * w.scales()[c];
}

// One shape: quantize, pack, run step 1 and this step's kernels and the library; returns success.
bool run(std::size_t n, std::size_t k, int reps, bool print) {
  std::mt19937 rng(2);
  std::normal_distribution<float> normal;
  std::vector<float> w(n * k), x(k);
  for (std::size_t c = 0; c < n; ++c)
    for (std::size_t j = 0; j < k; ++j) w[c * k + j] = 0.02f * (1.0f + float(c % 7)) * normal(rng);
  for (float& v : x) v = normal(rng);
  const std::vector<std::uint8_t> bits(n, 8);
  const chord::QuantizedChannels q = chord::quantize_channels(w.data(), n, k, bits.data());
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), 1, k);
  const chord::PackedMatrix packed(8, q.codes.data(), q.scales.data(), n, k);  // the panel layout

  std::vector<std::int32_t> acc_step1(n), acc_portable(packed.rows_padded()), acc_simd(packed.rows_padded());
  naive_gemv_s8(q.codes.data(), a.row(0), n, k, acc_step1.data());
  packed_gemv_s8_portable(packed, a, acc_portable.data());
  const Choice simd = choose_kernel();
  simd.kernel(packed, a, acc_simd.data());

  // The library's best kernel table on the same packed matrix (outputs y, through its own epilogue).
  const chord::KernelTable& library = chord::best_kernels();
  std::vector<float> y(n), y_library(n), y_ref(n);
  library.s8(8)(a, packed, chord::GemmOutput{y_library.data(), nullptr, n, nullptr, nullptr});
  epilogue(acc_simd.data(), a, packed, y.data());
  chord::ref::mixed_gemv_s8(a, chord::MixedMatrix(q), nullptr, y_ref.data());

  bool ok = true;
  for (std::size_t c = 0; c < n; ++c)
    ok = ok && acc_portable[c] == acc_step1[c] && acc_simd[c] == acc_step1[c] && y[c] == y_ref[c] &&
         y_library[c] == y_ref[c];
  if (!print) return ok;

  const double ms_step1 = median_ms(reps, [&] { naive_gemv_s8(q.codes.data(), a.row(0), n, k, acc_step1.data()); });
  const double ms_portable = median_ms(reps, [&] { packed_gemv_s8_portable(packed, a, acc_portable.data()); });
  const double ms_simd = median_ms(reps, [&] { simd.kernel(packed, a, acc_simd.data()); });
  const double ms_library = median_ms(reps, [&] {
    library.s8(8)(a, packed, chord::GemmOutput{y_library.data(), nullptr, n, nullptr, nullptr});
  });
  const auto line = [&](const char* what, double ms) {
    std::printf("  %-34s %9.3f ms   %6.2f GMAC/s   %5.2fx step 1\n", what, ms, double(n * k) / ms * 1e-6,
                ms_step1 / ms);
  };
  std::printf("Step 2: packed int8 gemv, W [%zu x %zu] in %zu tiles x %zu panels of 64 bytes\n", n, k,
              packed.tiles(), packed.groups());
  std::printf("  kernel chosen at run time (chord::detect_cpu): %s\n", simd.name);
  line("step 1: naive gemv (row-major)", ms_step1);
  line("packed, portable C++", ms_portable);
  line((std::string("packed, ") + simd.name).c_str(), ms_simd);
  line((std::string("library: ") + chord::isa_name(library.isa).data() + "/" + library.backend).c_str(), ms_library);
  std::printf("  speedup over previous step (step 1): %.2fx\n", ms_step1 / ms_simd);
  return ok;
}

}  // namespace

int main() {
  print_guide("the 64-byte panel layout and one dot instruction (vpdpbusd / sdot) per panel",
              "which kernel was chosen at run time; the SIMD kernel several times faster than step 1, the\n"
              "          portable panel kernel possibly slower (the layout pays only with its instruction); 'check: ok'");
  const bool quick = quick_mode();
  // An odd shape first: 37 channels (3 tiles, the last one padded), k = 301 (the last panel padded).
  const bool odd_ok = run(37, 301, 1, false);
  const bool ok = run(quick ? 200 : 2048, quick ? 300 : 2048, quick ? 5 : 15, true);
  std::printf("  check: int32 accumulators == step 1 (exact), y == ref::mixed_gemv_s8 and == library, "
              "also at 37 x 301: %s\n", odd_ok && ok ? "ok" : "FAIL");
  return odd_ok && ok ? 0 : 1;
}
