// bench/peers/xnnpack.cpp: XNNPACK (Debian's 2022 snapshot), single thread, what mobile users run.
//   peer/xnnpack_qs8_fc/M:N:K     fully_connected_nc_qs8: y[M, N] (s8) = requant(x[M, K] (s8) * W[N, K]^T (s8)),
//                                 one scale for the whole weight matrix (per tensor)
//   peer/xnnpack_qc8_conv1x1/M:N:K  convolution2d_nhwc_qc8 with a 1x1 kernel over M pixels: the same product
//                                 with one scale per output channel (this snapshot has no qc8 fully-connected)
//   peer/xnnpack_f32_fc/M:N:K     fully_connected_nc_f32: y[M, N] (f32) = x[M, K] * W[N, K]^T
// Weights are packed once, when the operator is created, and the operator is set up once: the timed
// loop is xnn_run_operator alone, as our rows time the kernels on prepacked weights. No thread pool
// (null): XNNPACK then runs on the calling thread. The int8 operators requantize to int8 outputs while
// our a8 kernels write fp32: the epilogue differs, the dot products are the same work.
#include <xnnpack.h>

#include <cmath>
#include <stdexcept>

#include "../areas.hpp"
#include "../shapes.hpp"
#include "peer_data.hpp"

namespace chord::bench {
namespace {

void check(xnn_status status, const char* what) {
  if (status != xnn_status_success) throw std::runtime_error(std::string("XNNPACK: ") + what + " failed");
}

// An operator deleted when the benchmark ends.
struct Operator {
  xnn_operator_t op = nullptr;
  ~Operator() {
    if (op) xnn_delete_operator(op);
  }
};

// Scales of the int8 rows: the requantization scale input * kernel / output must lie in XNNPACK's range
// ([2^-32, 256)); an output scale of K * 32 steps keeps the requantized values in range.
constexpr float kInputScale = 0.02f, kKernelScale = 0.01f;
float output_scale(const Shape& s) { return kInputScale * kKernelScale * float(s.k) * 32.0f; }

void run(benchmark::State& state, const Operator& op, const Shape& s, double weight_bytes, bool int8) {
  for (auto _ : state) {
    check(xnn_run_operator(op.op, nullptr), "run");
    benchmark::ClobberMemory();
  }
  set_counters(state, s, weight_bytes, bound_of(s, int8), Isa::scalar);
}

void qs8_fully_connected(benchmark::State& state, Shape s) {
  const auto& x = peers::bytes_8bit<std::int8_t>(s.m, s.k, 1);
  const auto& w = peers::bytes_8bit<std::int8_t>(s.n, s.k, 2);
  std::vector<std::int8_t> y(s.m * s.n);
  Operator fc;
  check(xnn_create_fully_connected_nc_qs8(s.k, s.n, s.k, s.n, 0, kInputScale, kKernelScale, w.data(), nullptr, 0,
                                          output_scale(s), -128, 127, 0, &fc.op),
        "create fully_connected_nc_qs8");
  check(xnn_setup_fully_connected_nc_qs8(fc.op, s.m, x.data(), y.data(), nullptr), "setup fully_connected_nc_qs8");
  run(state, fc, s, double(s.n * s.k), true);
}

void qc8_convolution_1x1(benchmark::State& state, Shape s) {
  const auto& x = peers::bytes_8bit<std::int8_t>(s.m, s.k, 1);
  const auto& w = peers::bytes_8bit<std::int8_t>(s.n, s.k, 2);
  const std::vector<float> kernel_scales = random_floats(s.n, s.n, 0.005f, 0.015f);
  std::vector<std::int8_t> y(s.m * s.n);
  Operator conv;
  // NHWC input of 1 x M x 1 pixels with K channels; a 1x1 kernel [N, 1, 1, K]: one matrix product.
  check(xnn_create_convolution2d_nhwc_qc8(0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, s.k, s.n, s.k, s.n, 0, kInputScale,
                                          kernel_scales.data(), w.data(), nullptr, 0, output_scale(s), -128, 127, 0,
                                          &conv.op),
        "create convolution2d_nhwc_qc8");
  check(xnn_setup_convolution2d_nhwc_qc8(conv.op, 1, s.m, 1, x.data(), y.data(), nullptr),
        "setup convolution2d_nhwc_qc8");
  run(state, conv, s, double(s.n * s.k + s.n * sizeof(float)), true);
}

void f32_fully_connected(benchmark::State& state, Shape s) {
  const auto& x = peers::input_f32(s.m, s.k);
  const auto& w = peers::weights_f32(s.n, s.k);
  std::vector<float> y(s.m * s.n);
  Operator fc;
  check(xnn_create_fully_connected_nc_f32(s.k, s.n, s.k, s.n, w.data(), nullptr, -INFINITY, INFINITY, 0, &fc.op),
        "create fully_connected_nc_f32");
  check(xnn_setup_fully_connected_nc_f32(fc.op, s.m, x.data(), y.data(), nullptr), "setup fully_connected_nc_f32");
  run(state, fc, s, double(s.n * s.k * sizeof(float)), false);
}

}  // namespace

std::string register_xnnpack_benchmarks() {
  check(xnn_initialize(nullptr), "initialize");
  for (const Shape& s : all_gemm_shapes()) {
    const std::string shape = shape_name(s);
    benchmark::RegisterBenchmark(("peer/xnnpack_qs8_fc/" + shape).c_str(), qs8_fully_connected, s)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("peer/xnnpack_qc8_conv1x1/" + shape).c_str(), qc8_convolution_1x1, s)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("peer/xnnpack_f32_fc/" + shape).c_str(), f32_fully_connected, s)
        ->Unit(benchmark::kMicrosecond);
  }
  return "XNNPACK (Debian 0.0~git20220216, 1 thread: no thread pool)";
}

}  // namespace chord::bench
