// bench/peers/gemmlowp.cpp: gemmlowp uint8 gemm with int32 results, single-thread context.
//   peer/gemmlowp_u8u8s32/M:N:K   y[M, N] = (x[M, K] - x_off) * (W[N, K] - w_off)^T
// The weights are gemmlowp's LHS (N x K row-major) and the activations its RHS, the way TFLite calls
// it; gemmlowp has no public pre-packed-weights API, so each call packs both operands (its real cost).
// This file is built with the machine's ISA and GEMMLOWP_ENABLE_AVX2, gemmlowp's best x86 kernel.
#include <public/gemmlowp.h>

#include <tuple>

#include "../areas.hpp"
#include "../shapes.hpp"
#include "peer_data.hpp"

namespace chord::bench {

std::string register_gemmlowp_benchmarks() {
  for (const Shape& s : all_gemm_shapes()) {
    const std::string name = "peer/gemmlowp_u8u8s32/" + shape_name(s);
    benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& state) {
      gemmlowp::GemmContext context;
      context.set_max_num_threads(1);
      const std::vector<std::uint8_t>& w = peers::bytes_8bit<std::uint8_t>(s.n, s.k, 3);
      const std::vector<std::uint8_t>& x = peers::bytes_8bit<std::uint8_t>(s.m, s.k, 1);
      std::vector<std::int32_t> y(s.m * s.n);
      const int m = int(s.m), n = int(s.n), k = int(s.k);
      const gemmlowp::MatrixMap<const std::uint8_t, gemmlowp::MapOrder::RowMajor> lhs(w.data(), n, k);
      const gemmlowp::MatrixMap<const std::uint8_t, gemmlowp::MapOrder::ColMajor> rhs(x.data(), k, m);
      gemmlowp::MatrixMap<std::int32_t, gemmlowp::MapOrder::ColMajor> result(y.data(), n, m);
      const std::tuple<> int32_output;  // an empty output pipeline keeps the raw int32 accumulators
      for (auto _ : state) {
        gemmlowp::GemmWithOutputPipeline<std::uint8_t, std::int32_t, gemmlowp::DefaultL8R8BitDepthParams>(
            &context, lhs, rhs, &result, -128, -128, int32_output);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
      }
      set_counters(state, s, double(s.n * s.k), bound_of(s, true), Isa::scalar);
    })->Unit(benchmark::kMicrosecond);
  }
#if defined(GEMMLOWP_AVX2_64)
  return "gemmlowp (AVX2 kernel)";
#else
  return "gemmlowp (SSE/reference kernel)";
#endif
}

}  // namespace chord::bench
