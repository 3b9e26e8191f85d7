// Step 0: quantize one layer with a mixed per-channel strategy.
//
// What it teaches: a strategy gives every output channel its own bit-width. Here a 256 x 256 layer
// with heavy-tailed weights gets levels from a simple importance proxy (the channel's energy) and the
// standard palette {0, 2, 4, 8}; the layer becomes a MixedMatrix (8-, 4- and 2-bit segments) and runs
// through the packed kernels. It prints, per bit-width, channels, bytes and quantization error, then the
// output error of the mixed layer against fp32, and checks the packed kernel against the reference.
//
// Reading the output: each width's "rel. error" is its channels' weight error (||W - Q(W)|| / ||W||):
// about 0.02 at 8 bits, 0.2 at 4, 0.5 at 2, and 1 for pruned channels (their weights are gone). The
// output error of the whole layer (about 0.2 here) is what the device pays for 3.8 bits instead of 32;
// it is dominated by the pruned and 2-bit channels, which is why a strategy gives those widths only to
// channels that matter little (here: low energy). Whether 0.2 is "good" depends on the model: CHORD
// judges it by the recommender's ranking quality (docs/chord.md), not by this number.
//
// Exercises (check: the program's last line must still say "ok"; the numbers move as described):
//   1. Prune nothing (make the bottom 10 % level 1 instead of 0): the average rises to about 4.0 bits
//      and the output error falls well below 0.2. Which row of the table disappears?
//   2. Rank the channels in reverse (highest energy pruned): at the same average bits the output error
//      rises sharply. This is the gap a good importance estimate closes.
//   3. Replace kStandardPalette by chord::Palette{2, 2, 4, 8} (a device that cannot prune): compare bytes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "chord/backends/scalar/gemm.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/strategy.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"

#include "example_util.hpp"

int main() {
  chord::examples::print_guide(
      "a 256 x 256 layer quantized per channel at 0/2/4/8 bits from a strategy, run by the packed kernels",
      "the weight error per width (8 bits ~0.02 ... pruned 1.0), the layer's output error (~0.2 at 3.8 bits),\n"
      "          and 'packed kernel == reference: ok'");
  const std::size_t n = 256, k = 256, m = 8;
  std::mt19937 rng(2025);
  std::student_t_distribution<float> heavy(3.0f);
  std::vector<float> w(n * k), x(m * k);
  for (std::size_t c = 0; c < n; ++c) {
    const float channel_gain = 0.2f + 1.8f * float(c % 17) / 16.0f;  // channels differ in importance
    for (std::size_t j = 0; j < k; ++j) w[c * k + j] = channel_gain * heavy(rng) * 0.05f;
  }
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);

  // Levels from an importance proxy: rank channels by energy, top 25% -> level 3, ... bottom -> 0.
  std::vector<double> energy(n, 0.0);
  for (std::size_t c = 0; c < n; ++c)
    for (std::size_t j = 0; j < k; ++j) energy[c] += double(w[c * k + j]) * w[c * k + j];
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return energy[a] < energy[b]; });
  std::vector<std::uint8_t> levels(n);
  // 10% pruned, 30% at 2 bits, 40% at 4 bits, 20% at 8 bits: an average of 3.8 bits.
  for (std::size_t r = 0; r < n; ++r) levels[order[r]] = r < n / 10 ? 0 : r < 4 * n / 10 ? 1 : r < 8 * n / 10 ? 2 : 3;
  const std::vector<std::uint8_t> bits = chord::decode_levels(levels, chord::kStandardPalette);

  const chord::MixedMatrix layer(w.data(), n, k, bits.data());
  std::printf("layer %zu x %zu, average %.2f bits per weight, %zu bytes packed (fp32: %zu bytes)\n", n, k,
              layer.average_bits(), layer.bytes(), n * k * sizeof(float));
  std::printf("%6s %9s %10s %14s\n", "bits", "channels", "bytes", "rel. error");
  for (int b : chord::kWeightBits) {
    std::size_t channels = 0;
    double err = 0.0, ref = 0.0;
    for (std::size_t c = 0; c < n; ++c) {
      if (bits[c] != b) continue;
      ++channels;
      for (std::size_t j = 0; j < k; ++j) {
        const double d = w[c * k + j] - double(layer.code(c, j)) * layer.scale(c);
        err += d * d, ref += double(w[c * k + j]) * w[c * k + j];
      }
    }
    std::size_t bytes = 0;
    for (const auto& s : layer.segments())
      if (s.bits == b) bytes = s.packed.bytes() + s.packed.rows_padded() * sizeof(float);
    std::printf("%6d %9zu %10zu %14.5f\n", b, channels, bytes, ref > 0 ? std::sqrt(err / ref) : 0.0);
  }

  // Run the layer: fp32 reference vs mixed weights with int8 activations through the packed kernels.
  std::vector<float> y_fp32(m * n), y_mixed(m * n), y_ref(m * n);
  chord::ref::gemm_f32(x.data(), k, w.data(), nullptr, y_fp32.data(), n, m, n, k);
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), m, k);
  chord::ops::mixed_gemm_s8(chord::backends::scalar::kernel_table(), a, layer, nullptr, y_mixed.data(), n);
  chord::ref::mixed_gemm_s8(a, layer, nullptr, y_ref.data(), n);
  double err = 0.0, ref = 0.0;
  for (std::size_t i = 0; i < m * n; ++i) {
    err += double(y_mixed[i] - y_fp32[i]) * (y_mixed[i] - y_fp32[i]);
    ref += double(y_fp32[i]) * y_fp32[i];
  }
  std::printf("output relative error (W-mixed A8 vs fp32): %.4f\n", std::sqrt(err / ref));
  if (y_mixed != y_ref) {
    std::printf("FAIL: packed kernel differs from the reference\n");
    return 1;
  }
  std::printf("packed kernel == reference: ok\n");
  return 0;
}
