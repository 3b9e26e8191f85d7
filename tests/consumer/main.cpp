// tests/consumer/main.cpp: the installed headers at work. Quantizes a small matrix with one
// bit-width per output channel, runs the packed scalar kernels, and exits non-zero unless the result
// equals the reference op exactly (the integer path is exact by contract).
#include <cstdio>
#include <vector>

#include "chord/backends/scalar/gemm.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"

int main() {
  const std::size_t n = 19, k = 37, m = 3;  // not multiples of any tile
  std::vector<float> w(n * k), x(m * k), bias(n);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(int((i * 7919) % 23) - 11) / 8.0f;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(int((i * 104729) % 17) - 8) / 4.0f;
  for (std::size_t c = 0; c < n; ++c) bias[c] = 0.25f * float(c);
  std::vector<std::uint8_t> bits(n);
  const std::uint8_t widths[4] = {8, 4, 2, 0};
  for (std::size_t c = 0; c < n; ++c) bits[c] = widths[c % 4];

  const chord::MixedMatrix layer(w.data(), n, k, bits.data());
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), m, k);
  std::vector<float> y(m * n), y_ref(m * n);
  chord::ops::mixed_gemm_s8(chord::backends::scalar::kernel_table(), a, layer, bias.data(), y.data(), n);
  chord::ref::mixed_gemm_s8(a, layer, bias.data(), y_ref.data(), n);

  std::size_t nonzero = 0;
  for (float v : y_ref) nonzero += v != 0.0f;
  if (y != y_ref || nonzero == 0) {
    std::printf("chord_consumer: FAIL: mixed_gemm_s8 differs from ref::mixed_gemm_s8 (or is all zero)\n");
    return 1;
  }
  std::printf("chord_consumer: ok: %zu x %zu mixed layer (%.2f bits/weight) matches the reference\n", n, k,
              layer.average_bits());
  return 0;
}
