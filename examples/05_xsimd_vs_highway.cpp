// Step 5: the same w4a8 gemm in xsimd and in Highway, side by side.
//
// What it teaches: two ways to write one kernel for many ISAs, and what batching tokens buys.
// The library has two SIMD backends that implement the same contract (chord::GemmS8Fn over the
// same packed panels) and that the dispatcher can both offer for one ISA. This step runs a 4-bit
// weight x int8 activation gemm of m tokens through the xsimd table and through the Highway table of
// the best ISA both have on this CPU (chord::select_kernels(isa, "xsimd" / "highway")), checks both
// exactly against chord::ref, times them, and prints where each kernel's source is:
//
//   xsimd (backends/xsimd/include/chord/backends/xsimd/): one header per ISA family, written with
//     that ISA's intrinsics for the int8 part (s8_avx512_vnni.hpp: vpdpbusd; s8_avx2.hpp: vpmaddubsw;
//     s8_neon.hpp: sdot / smull), since xsimd 8.1 has no u8 x s8 dot product; xsimd batches carry the
//     fp32 path and the epilogues (common.hpp, gemm_f32.hpp). Each ISA is a separate translation unit
//     compiled with its own -m flags (backends/xsimd/dispatch/<isa>.cpp). The gemm micro-kernel keeps
//     R rows x T tiles of accumulators in registers (8 x 2 zmm on AVX-512), so each unpacked weight
//     panel is used by R rows and each activation broadcast by T tiles.
//   Highway (backends/highway/include/chord/backends/highway/): the loop nest is written ONCE with
//     portable hn:: operations on a descriptor whose vector length the target decides (gemm_s8-inl.hpp;
//     SVE even decides at run time); only the 4-byte dot step is per target (dot-inl.hpp: vpdpbusd,
//     maddubs, sdot, svdot). foreach_target.h compiles that one file for every target with target
//     attributes (backends/highway/dispatch/tables.cpp). Blocks of 4 rows x 128 panels, accumulators
//     in named variables (SVE vectors are sizeless: no arrays of them).
//
// The previous step ran one token (a gemv). Here m tokens go through one gemm call; the speedup over
// step 4 compares it with m gemv calls, the step-4 way: in a gemv every weight byte is loaded and
// unpacked for one row, in a gemm for a block of rows.
// Exercises (check: both "== ref: ok" lines):
//   1. Set m = 1: the gemm/gemv speedup disappears (one row block is one row). From which m does the
//      gemm win by 2x on your CPU?
//   2. Run with CHORD_ISA=avx2 (on an AVX-512 machine): both backends drop to their AVX2 kernels
//      (step 6 explains their speed).
//   3. Find the 4-byte dot step of each backend (the "source:" lines) and compare how many lines of
//      per-ISA code each needs.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"

#include "example_util.hpp"

namespace {

using namespace chord::examples;

// The best ISA for which both backends have a table this CPU runs (scalar does not count: neither
// backend has SIMD code there). Returns false when there is none (e.g. a build without Highway).
bool common_isa(chord::Isa& isa) {
  const std::vector<chord::KernelTable> usable = chord::usable_kernel_tables("");  // best first
  for (const chord::KernelTable& t : usable) {
    if (t.isa == chord::Isa::scalar) continue;
    bool xsimd = false, highway = false;
    for (const chord::KernelTable& u : usable) {
      if (u.isa != t.isa) continue;
      xsimd = xsimd || std::string(u.backend) == "xsimd";
      highway = highway || std::string(u.backend) == "highway";
    }
    if (xsimd && highway) {
      isa = t.isa;
      return true;
    }
  }
  return false;
}

// Where the int8 kernel of each backend lives, for this ISA.
std::string xsimd_source(chord::Isa isa) {
  const std::string dir = "backends/xsimd/include/chord/backends/xsimd/";
  switch (isa) {
    case chord::Isa::avx512_vnni:
      return dir + "s8_avx512_vnni.hpp (vpdpbusd intrinsics), unit backends/xsimd/dispatch/avx512_vnni.cpp";
    case chord::Isa::avx2: return dir + "s8_avx2.hpp (vpmaddubsw intrinsics), unit backends/xsimd/dispatch/avx2.cpp";
    case chord::Isa::neon_dotprod:
      return dir + "s8_neon.hpp (sdot intrinsics), unit backends/xsimd/dispatch/neon_dotprod.cpp";
    case chord::Isa::neon:
      return dir + "s8_neon.hpp (smull / sadalp intrinsics), unit backends/xsimd/dispatch/neon.cpp";
    default: return dir + "gemm.hpp";
  }
}
std::string highway_source(chord::Isa isa) {
  const std::string dir = "backends/highway/include/chord/backends/highway/";
  const std::string unit = isa == chord::Isa::neon_dotprod ? "backends/highway/dispatch/tables_neon_dotprod.cpp"
                                                           : "backends/highway/dispatch/tables.cpp";
  return dir + "gemm_s8-inl.hpp (portable loops) + dot-inl.hpp (DotStep), unit " + unit;
}

}  // namespace

int main() {
  print_guide("the same w4a8 gemm from the xsimd and the Highway backends, and one gemm against m gemv calls",
              "both '== ref: ok', their time ratio (either may win: read it, do not assume it), and the gemm's\n"
              "          speedup over m gemv calls (weights unpacked once per row block instead of once per token)");
  const bool quick = quick_mode();
  // m = 30 tokens: not a multiple of either backend's row block (8, 4), so the tails run too;
  // n = 1000 channels: the last 16-channel tile is padded.
  const std::size_t m = quick ? 6 : 30, n = quick ? 200 : 1000, k = quick ? 264 : 2048;
  const int reps = quick ? 5 : 21;

  chord::Isa isa{};
  if (!common_isa(isa)) {
    std::printf("Step 5: this build or CPU has no ISA with both an xsimd and a Highway table (usable: ");
    for (const chord::KernelTable& t : chord::usable_kernel_tables(""))
      std::printf("%s/%s ", chord::isa_name(t.isa).data(), t.backend);
    std::printf("): nothing to compare\n");
    return 77;  // ctest: skipped
  }
  const chord::KernelTable tables[2] = {chord::select_kernels(isa, "xsimd"), chord::select_kernels(isa, "highway")};

  // A layer with every channel at 4 bits, m tokens, and each token on its own (for the gemv calls).
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> w(n * k), x(m * k), bias(n);
  for (float& v : w) v = 0.05f * normal(rng);
  for (float& v : x) v = normal(rng);
  for (float& v : bias) v = 0.1f * normal(rng);
  const std::vector<std::uint8_t> bits(n, 4);
  const chord::MixedMatrix layer(w.data(), n, k, bits.data(), chord::ClipSearch{8, 0.5, 1});
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), m, k);
  std::vector<chord::QuantizedRows> tokens(m);
  for (std::size_t i = 0; i < m; ++i) chord::quantize_rows(x.data() + i * k, 1, k, k, tokens[i]);

  // The oracle, once: exact int32 sums and the fp32 outputs.
  std::vector<std::int32_t> acc_ref(m * n);
  std::vector<float> y_ref(m * n);
  chord::ref::mixed_gemm_s8_acc(a, layer, acc_ref.data());
  chord::ref::mixed_gemm_s8(a, layer, bias.data(), y_ref.data(), n);

  std::printf("Step 5: w4a8 gemm, %zu tokens x W [%zu x %zu] (4-bit, %zu KiB packed), ISA %s: xsimd vs Highway\n",
              m, n, k, layer.bytes() / 1024, chord::isa_name(isa).data());
  double ms_gemm[2] = {}, ms_gemv[2] = {};
  bool ok = true;
  for (int b = 0; b < 2; ++b) {
    const chord::KernelTable& kernels = tables[b];
    std::vector<float> y(m * n);
    std::vector<std::int32_t> acc(m * n);
    chord::ops::mixed_gemm_s8(kernels, a, layer, bias.data(), y.data(), n);
    chord::ops::mixed_gemm_s8_acc(kernels, a, layer, acc.data());
    const bool exact = y == y_ref && acc == acc_ref;
    ok = ok && exact;
    ms_gemm[b] = median_ms(reps, [&] { chord::ops::mixed_gemm_s8(kernels, a, layer, bias.data(), y.data(), n); });
    ms_gemv[b] = median_ms(reps, [&] {  // step 4's way: one token at a time
      for (std::size_t i = 0; i < m; ++i)
        chord::ops::mixed_gemm_s8(kernels, tokens[i], layer, bias.data(), y.data() + i * n, n);
    });
    std::printf("  %-8s gemm %8.3f ms  %7.2f GMAC/s | %zu gemv calls %8.3f ms | == ref: %s\n", kernels.backend,
                ms_gemm[b], double(m * n * k) / ms_gemm[b] * 1e-6, m, ms_gemv[b], exact ? "ok" : "FAIL");
    std::printf("           source: %s\n", (b == 0 ? xsimd_source(isa) : highway_source(isa)).c_str());
  }
  std::printf("  ratio xsimd / Highway time: %.2f (below 1: xsimd faster)\n", ms_gemm[0] / ms_gemm[1]);
  std::printf("  speedup over previous step (%zu gemv calls -> one gemm): xsimd %.2fx, Highway %.2fx\n", m,
              ms_gemv[0] / ms_gemm[0], ms_gemv[1] / ms_gemm[1]);
  std::printf("  check: both tables == ref::mixed_gemm_s8 (int32 sums and fp32 outputs, exactly): %s\n",
              ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}
