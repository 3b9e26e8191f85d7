// bench/peers/openblas.cpp: OpenBLAS fp32, single thread: cblas_sgemm for M > 1, cblas_sgemv for M = 1.
//   peer/openblas_sgemm/M:N:K   y[M, N] = x[M, K] * W[N, K]^T   (W row-major, transposed in the call)
//   peer/openblas_sgemv/1:N:K   y[N] = W[N, K] * x[K]
#include <cblas.h>

#include "../areas.hpp"
#include "../shapes.hpp"
#include "peer_data.hpp"

namespace chord::bench {

std::string register_openblas_benchmarks() {
  openblas_set_num_threads(1);  // the comparison is one core against one core
  for (const Shape& s : all_gemm_shapes()) {
    const std::string name = std::string(s.m == 1 ? "peer/openblas_sgemv/" : "peer/openblas_sgemm/") + shape_name(s);
    benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& state) {
      const std::vector<float>& w = peers::weights_f32(s.n, s.k);
      const std::vector<float>& x = peers::input_f32(s.m, s.k);
      std::vector<float> y(s.m * s.n);
      const int m = int(s.m), n = int(s.n), k = int(s.k);
      for (auto _ : state) {
        if (s.m == 1)
          cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w.data(), k, x.data(), 1, 0.0f, y.data(), 1);
        else
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f,
                      y.data(), n);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
      }
      set_counters(state, s, double(s.n * s.k * sizeof(float)), bound_of(s, false), Isa::scalar);
    })->Unit(benchmark::kMicrosecond);
  }
  return std::string("OpenBLAS ") + openblas_get_config();
}

}  // namespace chord::bench
