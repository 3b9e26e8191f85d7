// tests/consumer/main.cpp: the installed headers at work. Quantizes a small matrix with one
// bit-width per output channel, runs the packed scalar kernels, and exits non-zero unless the result
// equals the reference op exactly (the integer path is exact by contract). Built with
// CHORD_CONSUMER_DISPATCH (chord_add_kernels() from the install), it runs the best kernel table for
// this CPU instead (chord::best_kernels()): the same exactness holds for every table.
#include <cstdio>
#include <string_view>
#include <vector>

#include "chord/backends/scalar/gemm.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"
#if CHORD_CONSUMER_DISPATCH
#include "chord/ops/dispatch.hpp"
#endif

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
#if CHORD_CONSUMER_DISPATCH
  const chord::KernelTable& kernels = chord::best_kernels();
#else
  const chord::KernelTable kernels = chord::backends::scalar::kernel_table();
#endif
  chord::ops::mixed_gemm_s8(kernels, a, layer, bias.data(), y.data(), n);
  chord::ref::mixed_gemm_s8(a, layer, bias.data(), y_ref.data(), n);

  std::size_t nonzero = 0;
  for (float v : y_ref) nonzero += v != 0.0f;
  if (y != y_ref || nonzero == 0) {
    std::printf("chord_consumer: FAIL: mixed_gemm_s8 differs from ref::mixed_gemm_s8 (or is all zero)\n");
    return 1;
  }
  const std::string_view isa = chord::isa_name(kernels.isa);
  std::printf("chord_consumer: ok: %zu x %zu mixed layer (%.2f bits/weight) matches the reference (%.*s/%s)\n", n,
              k, layer.average_bits(), static_cast<int>(isa.size()), isa.data(), kernels.backend);
  return 0;
}
