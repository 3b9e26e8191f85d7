// bench/peers/onednn.cpp: oneDNN int8 matmul, single thread.
//   peer/onednn_u8s8f32/M:N:K   y[M, N] (f32) = scale[n] * (x[M, K] (u8) * W[K, N] (s8))
// u8 activations without a zero point and s8 weights is oneDNN's fastest int8 configuration on VNNI;
// per-output-channel output scales give fp32 results, as our a8 kernels do. The primitive is created and
// the weights reordered to the layout it asks for (format_tag::any) outside the timed loop, as our
// weights are packed outside it. oneDNN's CPU runtime here is GNU OpenMP: one thread through libgomp's
// omp_set_num_threads (declared here, not from <omp.h>: with Clang that header belongs to LLVM's
// runtime, which oneDNN does not use).
#include <oneapi/dnnl/dnnl.hpp>

#if DNNL_CPU_RUNTIME != DNNL_RUNTIME_OMP
#error "bench/peers/onednn.cpp limits oneDNN to one thread through OpenMP; this oneDNN uses another runtime"
#endif

extern "C" void omp_set_num_threads(int threads);  // libgomp

#include "../areas.hpp"
#include "../shapes.hpp"
#include "peer_data.hpp"

namespace chord::bench {

std::string register_onednn_benchmarks() {
  omp_set_num_threads(1);
  for (const Shape& s : all_gemm_shapes()) {
    const std::string name = "peer/onednn_u8s8f32/" + shape_name(s);
    benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& state) {
      using dnnl::memory;
      using dt = memory::data_type;
      using tag = memory::format_tag;
      const memory::dim m = memory::dim(s.m), n = memory::dim(s.n), k = memory::dim(s.k);
      dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      dnnl::stream stream(engine);

      const memory::desc src_md({m, k}, dt::u8, tag::ab);
      const memory::desc user_weights_md({k, n}, dt::s8, tag::ba);  // W[n, k] row-major is [K, N] "ba"
      const memory::desc any_weights_md({k, n}, dt::s8, tag::any);
      const memory::desc dst_md({m, n}, dt::f32, tag::ab);
      dnnl::primitive_attr attr;
      attr.set_output_scales(1 << 1, random_floats(s.n, s.n, 0.001f, 0.002f));  // one scale per column
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_weights_md, dst_md), attr, engine);
      const dnnl::matmul matmul(pd);

      // oneDNN takes non-const handles; it only reads the source and the user weights.
      auto& x = const_cast<std::vector<std::uint8_t>&>(peers::bytes_8bit<std::uint8_t>(s.m, s.k, 1));
      auto& w = const_cast<std::vector<std::int8_t>&>(peers::bytes_8bit<std::int8_t>(s.n, s.k, 2));
      memory src(src_md, engine, x.data());
      memory user_weights(user_weights_md, engine, w.data());
      memory weights(pd.weights_desc(), engine);
      dnnl::reorder(user_weights, weights).execute(stream, user_weights, weights);
      memory dst(dst_md, engine);
      stream.wait();

      for (auto _ : state) {
        matmul.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
        stream.wait();
        benchmark::ClobberMemory();
      }
      const double bytes = double(pd.weights_desc().get_size()) + double(s.n * sizeof(float));
      set_counters(state, s, bytes, bound_of(s, true), Isa::scalar);
    })->Unit(benchmark::kMicrosecond);
  }
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         " (GNU OpenMP runtime, 1 thread)";
}

}  // namespace chord::bench
