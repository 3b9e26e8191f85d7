// Step 4: one layer, a different bit-width per output channel, from a strategy.
//
// What it teaches: how the library turns per-channel widths into kernels that each run ONE width.
// CHORD sends a device a strategy: one 2-bit level per output channel (0..3, how much the channel
// matters for this user; chord::Strategy). The device decodes the levels with a palette of its
// choice, level -> bits: the standard {0, 2, 4, 8} prunes level-0 channels; {2, 2, 4, 8} keeps them at
// 2 bits (more bytes, less error) with the same strategy and no new round trip. chord::MixedMatrix
// then groups channels of equal width into segments (8-bit, then 4-bit, then 2-bit), each a
// PackedMatrix as in steps 2-3, and remembers each segment row's original channel:
//
//     channel bits:  c0:4 c1:8 c2:2 c3:4 c4:0 c5:8
//     segments:      8-bit {c1, c5}   4-bit {c0, c3}   2-bit {c2}   (c4 pruned: outputs its bias)
//
// ops::mixed_gemm_s8 runs each segment with the kernel for its width from a KernelTable (here the
// best one for this CPU, chord::best_kernels()), and the kernels write output row r of a segment to
// column channels[r]: the caller gets outputs in the original channel order and never sees the
// permutation. The int8 path stays exact, so the whole mixed layer is checked for equality against
// chord::ref. Prints segments, average bits, bytes, the output error against the fp32 layer, and
// the gemv time against the same layer at 8 bits everywhere (step 3's 8-bit case).
// Exercises (check: the "check:" line):
//   1. Add the palette {0, 4, 4, 8}: bits/weight and bytes rise, the error falls; the check stays ok.
//   2. Make every level 0 except one channel: the outputs are the bias everywhere but that channel, in
//      the original order (print_original_order shows it).
//   3. Shuffle the strategy's levels (same counts, other channels): bits and bytes are unchanged, the
//      error vs fp32 grows. What does that say about where the bits go?
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/strategy.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"

#include "example_util.hpp"

namespace {

using namespace chord::examples;

double relative_error(const std::vector<float>& y, const std::vector<float>& exact) {
  double err = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i)
    err += double(y[i] - exact[i]) * (y[i] - exact[i]), norm += double(exact[i]) * exact[i];
  return norm > 0.0 ? std::sqrt(err / norm) : 0.0;
}

// A strategy for one layer from an importance proxy (the channel's energy): the 20% most important
// channels get level 3, the next 40% level 2, the next 30% level 1, the last 10% level 0. (CHORD's
// cloud computes levels per user; any ranking makes the same point here.)  w: [n, k].
chord::Strategy make_strategy(const std::vector<float>& w, std::size_t n, std::size_t k) {
  std::vector<double> energy(n, 0.0);
  for (std::size_t c = 0; c < n; ++c)
    for (std::size_t j = 0; j < k; ++j) energy[c] += double(w[c * k + j]) * w[c * k + j];
  std::vector<std::size_t> order(n);  // least important first
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return energy[a] < energy[b]; });
  chord::Strategy strategy;
  strategy.levels.assign(1, std::vector<std::uint8_t>(n));
  for (std::size_t rank = 0; rank < n; ++rank)
    strategy.levels[0][order[rank]] = rank < n / 10 ? 0 : rank < 4 * n / 10 ? 1 : rank < 8 * n / 10 ? 2 : 3;
  return strategy;
}

// A coarser clip search than the default (32 clip ratios, 2 refinements) keeps the start-up of this
// example short: quantizing is a one-time cost, paid per layer and width, not per token.
constexpr chord::ClipSearch kSearch{8, 0.5, 1};

struct Layer {
  Layer(const std::vector<float>& w, std::size_t n, std::size_t k, const std::vector<std::uint8_t>& bits)
      : matrix(w.data(), n, k, bits.data(), kSearch) {}
  chord::MixedMatrix matrix;
  std::vector<float> y;
  double ms = 0.0;
  bool ok = false;
};

// Runs the layer through the table (y), checks it against the reference (int32 sums and fp32
// outputs, exactly) and times the gemv.
void run_layer(Layer& layer, const chord::KernelTable& kernels, const chord::QuantizedRows& a,
               const std::vector<float>& bias, int reps) {
  const std::size_t n = layer.matrix.rows();
  layer.y.assign(n, 0.0f);
  std::vector<float> y_ref(n);
  std::vector<std::int32_t> acc(n), acc_ref(n);
  chord::ops::mixed_gemm_s8(kernels, a, layer.matrix, bias.data(), layer.y.data(), n);
  chord::ops::mixed_gemm_s8_acc(kernels, a, layer.matrix, acc.data());
  chord::ref::mixed_gemm_s8_acc(a, layer.matrix, acc_ref.data());
  for (std::size_t c = 0; c < n; ++c)  // ref::mixed_gemm_s8's epilogue, from the sums just computed
    y_ref[c] = chord::ref::dequantize_acc(acc_ref[c], a.scales()[0], layer.matrix.scale(c), bias[c]);
  layer.ok = acc == acc_ref && layer.y == y_ref;
  layer.ms = median_ms(reps, [&] {
    chord::ops::mixed_gemm_s8(kernels, a, layer.matrix, bias.data(), layer.y.data(), n);
  });
}

// "8-bit: 819 channels {3, 17, 20, ...}" for every segment, then the pruned channels.
void print_segments(const chord::MixedMatrix& m) {
  for (const chord::MixedMatrix::Segment& s : m.segments()) {
    std::printf("      %d-bit segment: %5zu channels (%zu rows with tile padding, %8zu bytes)  {", s.bits,
                s.channels.size(), s.packed.rows_padded(), s.packed.bytes());
    for (std::size_t r = 0; r < s.channels.size() && r < 6; ++r) std::printf("%s%u", r ? ", " : "", s.channels[r]);
    std::printf("%s}\n", s.channels.size() > 6 ? ", ..." : "");
  }
  std::size_t pruned = 0;
  for (std::size_t c = 0; c < m.rows(); ++c) pruned += m.bits(c) == 0;
  std::printf("      pruned (0 bits):  %5zu channels (no weights; output = bias)\n", pruned);
}

// The first channels in their original order: width, where the kernel found them, output.
void print_original_order(const chord::MixedMatrix& m, const std::vector<float>& y, std::size_t count) {
  std::printf("      original order: ");
  for (std::size_t c = 0; c < count && c < m.rows(); ++c) {
    std::string where = "pruned";
    for (const chord::MixedMatrix::Segment& s : m.segments()) {
      const auto it = std::find(s.channels.begin(), s.channels.end(), std::uint32_t(c));
      if (it != s.channels.end())
        where = std::to_string(s.bits) + "-bit row " + std::to_string(it - s.channels.begin());
    }
    std::printf("%sy[%zu] = %+.3f (%s)", c ? ", " : "", c, y[c], where.c_str());
  }
  std::printf("\n");
}

}  // namespace

int main() {
  print_guide("a 2-bit-per-channel strategy decoded by two palettes into one MixedMatrix, outputs in the original order",
              "bits/weight and bytes per palette, the error vs fp32 growing as bits shrink, the segments per\n"
              "          width, outputs in the original channel order (pruned = bias); 'check: ... ok'");
  const bool quick = quick_mode();
  const std::size_t n = quick ? 200 : 4096, k = quick ? 264 : 2048;
  const int reps = quick ? 5 : 25;

  // A layer whose channels differ in scale (so that their importance differs), a bias, one token.
  std::mt19937 rng(4);
  std::student_t_distribution<float> heavy(4.0f);
  std::normal_distribution<float> normal;
  std::vector<float> w(n * k), bias(n), x(k);
  for (std::size_t c = 0; c < n; ++c) {
    const float gain = 0.2f + 1.8f * float((c * 7) % 23) / 22.0f;
    for (std::size_t j = 0; j < k; ++j) w[c * k + j] = 0.03f * gain * heavy(rng);
  }
  for (float& b : bias) b = 0.1f * normal(rng);
  for (float& v : x) v = normal(rng);
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), 1, k);
  std::vector<float> y_fp32(n);
  chord::ref::gemm_f32(x.data(), k, w.data(), bias.data(), y_fp32.data(), n, 1, n, k);

  const chord::Strategy strategy = make_strategy(w, n, k);
  const std::vector<chord::LayerShape> shapes = {{"ffn.up", std::uint32_t(n), std::uint32_t(k)}};
  chord::check_strategy_shape(strategy, shapes);
  std::size_t per_level[chord::kLevels] = {};
  for (std::uint8_t level : strategy.levels[0]) ++per_level[level];

  const chord::KernelTable& kernels = chord::best_kernels();
  std::printf("Step 4: a mixed-precision layer from a strategy, W [%zu x %zu], 1 token, kernels %s/%s\n", n, k,
              chord::isa_name(kernels.isa).data(), kernels.backend);
  std::printf("  strategy: %zu levels, 2 bits each (%zu bytes to send); channels per level 0..3: %zu %zu %zu %zu\n",
              n, (n + 3) / 4, per_level[0], per_level[1], per_level[2], per_level[3]);

  // The reference point: every channel at 8 bits (step 3's 8-bit gemv, by the library's kernel).
  Layer all8(w, n, k, std::vector<std::uint8_t>(n, 8));
  run_layer(all8, kernels, a, bias, reps);
  std::printf("  all 8-bit:        8.00 bits/weight, %9zu bytes, gemv %8.3f ms, error vs fp32 %.4f\n",
              all8.matrix.bytes(), all8.ms, relative_error(all8.y, y_fp32));

  bool ok = all8.ok;
  const chord::Palette palettes[] = {chord::kStandardPalette, chord::Palette{2, 2, 4, 8}};
  std::string speedups;
  for (const chord::Palette& palette : palettes) {
    const std::vector<std::uint8_t> bits = chord::decode_levels(strategy.levels[0], palette);
    Layer layer(w, n, k, bits);
    run_layer(layer, kernels, a, bias, reps);
    ok = ok && layer.ok;
    const std::string name = "{" + std::to_string(palette[0]) + "," + std::to_string(palette[1]) + "," +
                             std::to_string(palette[2]) + "," + std::to_string(palette[3]) + "}";
    std::printf("  palette %s: %.2f bits/weight, %9zu bytes, gemv %8.3f ms, error vs fp32 %.4f, == ref: %s\n",
                name.c_str(), chord::average_bits(strategy, shapes, palette), layer.matrix.bytes(), layer.ms,
                relative_error(layer.y, y_fp32), layer.ok ? "ok" : "FAIL");
    print_segments(layer.matrix);
    print_original_order(layer.matrix, layer.y, 4);
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%s%s %.2fx", speedups.empty() ? "" : ", ", name.c_str(), all8.ms / layer.ms);
    speedups += buffer;
  }
  std::printf("  speedup over previous step (the all-8-bit layer, step 3's 8-bit kernel): %s\n", speedups.c_str());
  std::printf("  check: int32 sums and outputs (original order, bias on pruned channels) == chord::ref: %s\n",
              ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}
