// bench/areas.hpp: one registration function per benchmark area, all called by bench/main.cpp.
// Each runs its ops over every kernel table it is given (see kernel_tables.hpp).
#pragma once

#include <string>
#include <vector>

#include "chord/ops/kernel_table.hpp"

namespace chord::bench {

// gemm/gemv (int8 and fp32 activations) and mixed matrices vs their segments: bench/gemm.cpp.
void register_gemm_benchmarks(const std::vector<KernelTable>& tables);
// int8 activation quantization (quantize_rows), the step in front of every a8 gemm: bench/gemm.cpp.
void register_quantize_benchmarks();
// Attention (SASRec), convolution (Caser) and the fp32 row ops register themselves from
// bench/bench_ops.cpp (a static registrar over bench_kernel_tables()), with the same name layout.

// Peers, each compiled only when its library was found at configure time (bench/peers/*.cpp). Each
// returns its library's name and version for the JSON context.
std::string register_openblas_benchmarks();
std::string register_eigen_benchmarks();
std::string register_onednn_benchmarks();
std::string register_gemmlowp_benchmarks();
std::string register_xnnpack_benchmarks();

}  // namespace chord::bench
