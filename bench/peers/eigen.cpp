// bench/peers/eigen.cpp: Eigen fp32 gemm / gemv, single thread (this file is built without OpenMP and
// with the build machine's ISA, as an Eigen user would build it).
//   peer/eigen_sgemm/M:N:K   Y = X * W^T        peer/eigen_sgemv/1:N:K   y = W * x
#include <Eigen/Core>

#include "../areas.hpp"
#include "../shapes.hpp"
#include "peer_data.hpp"

namespace chord::bench {

std::string register_eigen_benchmarks() {
  Eigen::setNbThreads(1);
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  for (const Shape& s : all_gemm_shapes()) {
    const std::string name = std::string(s.m == 1 ? "peer/eigen_sgemv/" : "peer/eigen_sgemm/") + shape_name(s);
    benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& state) {
      const Eigen::Index m = Eigen::Index(s.m), n = Eigen::Index(s.n), k = Eigen::Index(s.k);
      Eigen::Map<const RowMajor> w(peers::weights_f32(s.n, s.k).data(), n, k);
      Eigen::Map<const RowMajor> x(peers::input_f32(s.m, s.k).data(), m, k);
      RowMajor y(m, n);
      for (auto _ : state) {
        if (s.m == 1) y.row(0).noalias() = x.row(0) * w.transpose();
        else y.noalias() = x * w.transpose();
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
      }
      set_counters(state, s, double(s.n * s.k * sizeof(float)), bound_of(s, false), Isa::scalar);
    })->Unit(benchmark::kMicrosecond);
  }
  return "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
         std::to_string(EIGEN_MINOR_VERSION);
}

}  // namespace chord::bench
