// Step 3: 4-bit and 2-bit weights, unpacked with AND + shift.
//
// What it teaches: a gemv reads every weight exactly once, so it is bound by memory, not arithmetic:
// halving the bytes per weight can nearly halve the time. The packed format stores 4-bit and 2-bit
// panels as BIT PLANES of the int8 panel of step 2 (docs/packing.md): a 64-byte panel holds 8 / b
// sub-blocks, sub-block s (columns 4s .. 4s+3 of the panel's k-group) in bits [s*b, s*b + b) of
// every byte:
//
//     int4 panel (k-group of 8):   byte 4c + j = [ hi nibble: (c, k0+4+j) | lo nibble: (c, k0+j) ]
//     int2 panel (k-group of 16):  byte 4c + j = [ (c,k0+12+j) | (c,k0+8+j) | (c,k0+4+j) | (c,k0+j) ]
//
// so one shift and one AND of the whole register, (panel >> s*b) & mask, give back exactly an int8
// panel (16 channels x 4 columns) for the same dot-product instruction: no byte shuffles, on any ISA.
// The stored values are u = q + 2^(b-1) (0..15 for 4 bits, 0..3 for 2 bits), so the offset trick of
// step 2 applies with 2^(b-1) instead of 128; on ARM, u <= 15 also fits a signed byte, so sdot takes
// u and the same correction; only 8-bit u needs the ^ 0x80 of step 2.
//
// The kernels below are step 2's with one template parameter, Bits, and the unpack lines added: at
// Bits = 8 they are exactly step 2's kernels, which is what the speedups are measured against.
// Prints bytes moved per gemv and the effective bandwidth, and checks every width exactly against
// chord::ref (at an odd shape) and against a plain int32 dot of the codes (at the timing shape).
// Exercises (check: the "check:" line; timings as "vs 8-bit"):
//   1. Give the 2-bit kernel a single accumulator (add every plane into the same register): the check
//      still passes, and the 2-bit gemv gets slower: the dependency chain, not memory, sets the pace.
//   2. Run a shape that fits in the last-level cache (n = k = 1024): is "vs 8-bit" still close to the
//      byte ratio? Explain with the "GB/s" column.
//   3. Pack 3-bit codes with the 4-bit kernel (codes_at(p.codes8, 3) stored at 4 bits): what do you save?
#include <algorithm>
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
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/packed.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ref/gemm.hpp"

#include "example_util.hpp"

namespace {

using namespace chord::examples;

using chord::group_k;
using chord::kDot;
using chord::kPanelBytes;
using chord::kTileN;

// The kernels of this step. w: [n, k] packed at Bits; a: one row of [k] int8 codes, zero past k up
// to a multiple of 16 (the longest k-group); acc: [w.rows_padded()] int32 = sum_j q[c][j] * a[j].

// Portable: panel by panel, sub-block by sub-block, one lane at a time.
template <int Bits>
void packed_gemv_portable(const chord::PackedMatrix& w, const chord::QuantizedRows& a, std::int32_t* acc) {
  constexpr int kPlanes = 8 / Bits;                 // sub-blocks per panel: 1, 2, 4
  constexpr unsigned kMask = (1u << Bits) - 1u;     // 0xFF, 0x0F, 0x03
  constexpr std::int32_t kOffset = 1 << (Bits - 1); // u = q + kOffset
  const std::int8_t* x = a.row(0);
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    std::int32_t lanes[kTileN] = {};
    const std::uint8_t* panel = w.tile(t);
    for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes)
      for (int s = 0; s < kPlanes; ++s) {
        const std::int8_t* xs = x + g * group_k(Bits) + s * kDot;  // the 4 columns of sub-block s
        for (std::size_t c = 0; c < kTileN; ++c)
          for (std::size_t j = 0; j < kDot; ++j)
            lanes[c] += std::int32_t((panel[c * kDot + j] >> (s * Bits)) & kMask) * xs[j];
      }
    for (std::size_t c = 0; c < kTileN; ++c) acc[t * kTileN + c] = lanes[c] - kOffset * a.sums()[0];
  }
}

using PackedGemv = void (*)(const chord::PackedMatrix&, const chord::QuantizedRows&, std::int32_t*);

PackedGemv packed_gemv_portable_for(int bits) {
  return bits == 8 ? packed_gemv_portable<8> : bits == 4 ? packed_gemv_portable<4> : packed_gemv_portable<2>;
}

#if defined(EXAMPLE_HAVE_VNNI)
// AVX-512 VNNI: step 2's loop plus, per sub-block, one shift and one AND of the whole panel.
// x86 has no byte shift: vpsrlw shifts 16-bit lanes, and the AND drops the bits that crossed over
// from the neighbouring byte, so the pair still gives (byte >> s*b) & mask in every byte.
template <int Bits>
__attribute__((target("avx512f,avx512bw,avx512vnni")))
void packed_gemv_vnni(const chord::PackedMatrix& w, const chord::QuantizedRows& a, std::int32_t* acc) {
  constexpr int kPlanes = 8 / Bits;
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1u << Bits) - 1u));
  const __m512i offset = _mm512_set1_epi32((1 << (Bits - 1)) * a.sums()[0]);
  const std::int8_t* x = a.row(0);
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    const std::uint8_t* panel = w.tile(t);
    // One accumulator per sub-block: the kPlanes vpdpbusd of a panel do not wait for each other.
    // (With a single accumulator, 2-bit weights come so fast that the chain of dependent vpdpbusd,
    // not memory, sets the pace.)
    __m512i sum[kPlanes];
    for (int s = 0; s < kPlanes; ++s) sum[s] = _mm512_setzero_si512();
    for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes) {
      const __m512i packed = _mm512_loadu_si512(panel);
      for (int s = 0; s < kPlanes; ++s) {  // unrolled by the compiler: kPlanes is a constant
        const __m512i u = Bits == 8 ? packed : _mm512_and_si512(_mm512_srli_epi16(packed, s * Bits), mask);
        const __m512i activations = _mm512_set1_epi32(load4(x + g * group_k(Bits) + s * kDot));
        sum[s] = _mm512_dpbusd_epi32(sum[s], u, activations);
      }
    }
    for (int s = 1; s < kPlanes; ++s) sum[0] = _mm512_add_epi32(sum[0], sum[s]);
    _mm512_storeu_si512(acc + t * kTileN, _mm512_sub_epi32(sum[0], offset));
  }
}
#endif

#if defined(EXAMPLE_HAVE_DOTPROD)
// ARM dotprod: NEON has a byte shift (vshlq_u8 by -s*b: a right shift by a run-time count).
template <int Bits>
__attribute__((target("arch=armv8.2-a+dotprod")))
void packed_gemv_dotprod(const chord::PackedMatrix& w, const chord::QuantizedRows& a, std::int32_t* acc) {
  constexpr int kPlanes = 8 / Bits;
  const uint8x16_t mask = vdupq_n_u8(static_cast<std::uint8_t>((1u << Bits) - 1u));
  // 8 bits: u ^ 0x80 = q, no correction (step 2). 4 / 2 bits: u fits s8 as it is, correct afterwards.
  const std::int32_t correction = Bits == 8 ? 0 : (1 << (Bits - 1)) * a.sums()[0];
  const std::int8_t* x = a.row(0);
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    const std::uint8_t* panel = w.tile(t);
    int32x4_t sum[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (std::size_t g = 0; g < w.groups(); ++g, panel += kPanelBytes)
      for (int r = 0; r < 4; ++r) {  // q-register r: channels 4r .. 4r+3
        const uint8x16_t packed = vld1q_u8(panel + 16 * r);
        for (int s = 0; s < kPlanes; ++s) {
          const int8x16_t right_shift = vdupq_n_s8(static_cast<std::int8_t>(-s * Bits));
          const uint8x16_t u =
              Bits == 8 ? veorq_u8(packed, vdupq_n_u8(0x80)) : vandq_u8(vshlq_u8(packed, right_shift), mask);
          const int8x16_t activations = vreinterpretq_s8_s32(vdupq_n_s32(load4(x + g * group_k(Bits) + s * kDot)));
          sum[r] = vdotq_s32(sum[r], vreinterpretq_s8_u8(u), activations);
        }
      }
    for (int r = 0; r < 4; ++r) vst1q_s32(acc + t * kTileN + 4 * r, vsubq_s32(sum[r], vdupq_n_s32(correction)));
  }
}
#endif

struct Kernels {
  const char* name;
  PackedGemv by_width[3];  // 8, 4, 2 bits (chord::width_index)
  PackedGemv of(int bits) const { return by_width[chord::width_index(bits)]; }
};

// The best kernels of this file that the running CPU can execute (as in step 2).
Kernels choose_kernels() {
  [[maybe_unused]] const chord::CpuFeatures cpu = chord::detect_cpu();
  const char* forced = std::getenv("CHORD_ISA");
  const bool portable_only = forced != nullptr && std::string(forced) == "scalar";
#if defined(EXAMPLE_HAVE_VNNI)
  if (!portable_only && cpu.avx512f && cpu.avx512bw && cpu.avx512vnni)
    return {"avx512_vnni (vpdpbusd)", {packed_gemv_vnni<8>, packed_gemv_vnni<4>, packed_gemv_vnni<2>}};
#endif
#if defined(EXAMPLE_HAVE_DOTPROD)
  if (!portable_only && cpu.dotprod)
    return {"neon_dotprod (sdot)", {packed_gemv_dotprod<8>, packed_gemv_dotprod<4>, packed_gemv_dotprod<2>}};
#endif
  return {"portable", {packed_gemv_portable<8>, packed_gemv_portable<4>, packed_gemv_portable<2>}};
}

// Codes at every width from one draw of 8-bit codes: q >> (8 - b) keeps the sign and lands in
// [-2^(b-1), 2^(b-1) - 1]. codes: [n, k].
std::vector<std::int8_t> codes_at(const std::vector<std::int8_t>& codes8, int bits) {
  std::vector<std::int8_t> out(codes8.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::int8_t>(codes8[i] >> (8 - bits));
  return out;
}

struct Problem {
  std::size_t n, k;
  std::vector<std::int8_t> codes8;  // [n, k]
  std::vector<float> scales;        // [n]
  chord::QuantizedRows a;           // [1, k]
};

Problem make_problem(std::size_t n, std::size_t k, unsigned seed) {
  Problem p{n, k, std::vector<std::int8_t>(n * k), std::vector<float>(n), {}};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-128, 127);
  std::uniform_real_distribution<float> scale(0.001f, 0.01f);
  std::normal_distribution<float> normal;
  for (auto& q : p.codes8) q = static_cast<std::int8_t>(code(rng));
  for (auto& s : p.scales) s = scale(rng);
  std::vector<float> x(k);
  for (float& v : x) v = normal(rng);
  p.a = chord::quantize_rows(x.data(), 1, k);
  return p;
}

// Exactness at an odd shape (padded tiles and panels) against chord::ref, every width.
bool check_against_ref(const Kernels& kernels) {
  const Problem p = make_problem(37, 301, 7);
  bool ok = true;
  for (int bits : chord::kPackedBits) {
    const std::vector<std::int8_t> codes = codes_at(p.codes8, bits);
    chord::QuantizedChannels q;
    q.n = p.n, q.k = p.k, q.codes = codes, q.scales = p.scales, q.bits.assign(p.n, std::uint8_t(bits));
    const chord::MixedMatrix layer(q);  // one segment holding channels 0 .. n-1 in order
    std::vector<std::int32_t> acc(layer.segments()[0].packed.rows_padded()), acc_portable(acc.size()), acc_ref(p.n);
    kernels.of(bits)(layer.segments()[0].packed, p.a, acc.data());
    packed_gemv_portable_for(bits)(layer.segments()[0].packed, p.a, acc_portable.data());
    chord::ref::mixed_gemm_s8_acc(p.a, layer, acc_ref.data());
    for (std::size_t c = 0; c < p.n; ++c) ok = ok && acc[c] == acc_ref[c] && acc_portable[c] == acc_ref[c];
  }
  return ok;
}

}  // namespace

int main() {
  print_guide("4- and 2-bit weights unpacked by AND + shift into the int8 panel; a gemv is memory-bound",
              "'vs 8-bit' close to the byte ratio (2x at 4 bits, 4x at 2 bits; more if the smaller matrix\n"
              "          fits in the cache), GB/s near the machine's bandwidth; 'check: ... ok'");
  const bool quick = quick_mode();
  const Kernels kernels = choose_kernels();
  const bool ref_ok = check_against_ref(kernels);

  // The timing shape: big enough that the weights do not fit in cache (32 MiB at 8 bits).
  const std::size_t n = quick ? 256 : 8192, k = quick ? 512 : 4096;
  const int reps = quick ? 5 : 15;
  const Problem p = make_problem(n, k, 3);
  const chord::KernelTable& library = chord::best_kernels();
  std::printf("Step 3: int4 / int2 gemv by AND + shift, W [%zu x %zu], kernels: %s\n", n, k, kernels.name);
  std::printf("  %4s %10s %10s %9s %10s %14s %16s\n", "bits", "MB moved", "ms", "GB/s", "vs 8-bit", "portable ms",
              (std::string("library ") + chord::isa_name(library.isa).data() + " ms").c_str());

  bool ok = ref_ok;
  double ms_by_width[3] = {};
  for (int bits : chord::kPackedBits) {
    const std::vector<std::int8_t> codes = codes_at(p.codes8, bits);
    const chord::PackedMatrix w(bits, codes.data(), p.scales.data(), n, k);
    std::vector<std::int32_t> acc(w.rows_padded()), acc_library(n), expected(n);
    for (std::size_t c = 0; c < n; ++c) {  // the plain int32 dot of step 1, as the expected answer
      std::int32_t sum = 0;
      for (std::size_t j = 0; j < k; ++j) sum += std::int32_t(codes[c * k + j]) * p.a.row(0)[j];
      expected[c] = sum;
    }
    const double ms = median_ms(reps, [&] { kernels.of(bits)(w, p.a, acc.data()); });
    const double ms_portable = median_ms(quick ? 1 : 3, [&] { packed_gemv_portable_for(bits)(w, p.a, acc.data()); });
    const chord::GemmOutput out{nullptr, acc_library.data(), n, nullptr, nullptr};
    const double ms_library = median_ms(reps, [&] { library.s8(bits)(p.a, w, out); });
    kernels.of(bits)(w, p.a, acc.data());
    for (std::size_t c = 0; c < n; ++c) ok = ok && acc[c] == expected[c] && acc_library[c] == expected[c];

    // Bytes a gemv must move: packed weights + one scale per channel + activations + outputs.
    const double bytes = double(w.bytes() + w.rows_padded() * sizeof(float) + p.a.stride() + n * sizeof(float));
    ms_by_width[chord::width_index(bits)] = ms;
    std::printf("  %4d %10.2f %10.3f %9.2f %9.2fx %14.3f %16.3f\n", bits, bytes * 1e-6, ms, bytes / ms * 1e-6,
                ms_by_width[0] / ms, ms_portable, ms_library);
  }
  std::printf("  speedup over previous step (step 2's int8 kernel, same shape): 4-bit %.2fx, 2-bit %.2fx\n",
              ms_by_width[0] / ms_by_width[1], ms_by_width[0] / ms_by_width[2]);
  std::printf("  check: every width == ref::mixed_gemm_s8_acc at 37 x 301, == plain int32 dot and == library "
              "at %zu x %zu: %s\n", n, k, ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}
