#include <cstdio>
#include <vector>

#include "chord/backends/scalar/gemm.hpp"  // the backend: scalar, xsimd or highway (README: without CMake)
#include "chord/ops/gemm.hpp"
#include "chord/ref/gemm.hpp"

int main() {
  const std::size_t n = 4, k = 64, m = 2;  // 4 output channels of 64 weights; 2 tokens
  std::vector<float> w(n * k), x(m * k), y(m * n), y_ref(m * n);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(int(i % 13) - 6) / 8;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 7) - 3) / 2;

  const std::uint8_t bits[n] = {8, 4, 2, 0};             // one bit-width per output channel
  const chord::MixedMatrix layer(w.data(), n, k, bits);  // quantize + pack: 8-, 4-, 2-bit segments
  const chord::QuantizedRows a = chord::quantize_rows(x.data(), m, k);  // int8 per-token activations
  const chord::KernelTable kernels = chord::backends::scalar::kernel_table();  // the backend's kernels
  chord::ops::mixed_gemm_s8(kernels, a, layer, nullptr, y.data(), n);

  chord::ref::mixed_gemm_s8(a, layer, nullptr, y_ref.data(), n);  // the oracle: integer path is exact
  for (std::size_t i = 0; i < m * n; ++i) std::printf("%8.3f%c", y[i], i % n == n - 1 ? '\n' : ' ');
  return y == y_ref ? 0 : 1;
}
