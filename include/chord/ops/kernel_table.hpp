// chord/ops/kernel_table.hpp: the contract between the ISA-neutral ops and the SIMD backends.
//
// A backend implements, per ISA and per packed width b in {8, 4, 2}, two kernels over one homogeneous
// PackedMatrix (a segment of a MixedMatrix):
//   gemm_s8:  int8 activations (QuantizedRows) x packed weights  -> int32 dot products -> fp32
//   gemm_f32: fp32 activations x packed weights dequantized in registers             -> fp32
// Both write row i, weight row r to output column columns[r] (r when `columns` is null), so a mixed
// matrix's segments land directly in the original channel order. A KernelTable holds one ISA's
// kernels; ops/dispatch.hpp picks a table for the running CPU.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "chord/core/activations.hpp"
#include "chord/core/packed.hpp"
#include "chord/ops/isa.hpp"

namespace chord {

// Where and how a kernel writes its outputs.
struct GemmOutput {
  float* y = nullptr;                     // [m, ldy] fp32 outputs (when acc is null)
  std::int32_t* acc = nullptr;            // [m, ldy] raw int32 dot products instead (gemm_s8 only; tests)
  std::size_t ldy = 0;                    // row stride of y / acc
  const std::uint32_t* columns = nullptr; // [w.rows()] output column of each weight row, or null
  const float* bias = nullptr;            // indexed by output column, or null

  std::size_t column(std::size_t r) const { return columns ? columns[r] : r; }
};

// The int8 path, per output (i, r), with u the stored unsigned codes and o = 2^(b-1):
//   acc = sum_j a[i][j] * u[r][j] - o * a.sums[i]                     ( = sum_j a[i][j] * q[r][j] )
//   y   = float(acc) * a.scales[i] * w.scales()[r] + bias[column(r)]  (ref::dequantize_acc, same order)
// Preconditions: a.k == w.cols(); a.stride >= w.cols_padded() (QuantizedRows pads to kMaxGroupK).
using GemmS8Fn = void (*)(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out);

// The fp32 path:  y[i][column(r)] = w.scales()[r] * sum_j x[i][j] * q[r][j] + bias[column(r)].
// x: [m, w.cols()] with row stride ldx; x is read only up to w.cols() (no padding needed).
using GemmF32Fn = void (*)(const float* x, std::size_t ldx, std::size_t m, const PackedMatrix& w,
                           const GemmOutput& out);

// Index of a packed width in a table: 8 -> 0, 4 -> 1, 2 -> 2.
constexpr int width_index(int bits) { return bits == 8 ? 0 : bits == 4 ? 1 : 2; }

struct KernelTable {
  Isa isa = Isa::scalar;
  const char* backend = "scalar";             // "scalar", "xsimd" or "highway"
  std::array<GemmS8Fn, 3> gemm_s8{};          // by width_index
  std::array<GemmF32Fn, 3> gemm_f32{};

  GemmS8Fn s8(int bits) const { return gemm_s8[width_index(bits)]; }
  GemmF32Fn f32(int bits) const { return gemm_f32[width_index(bits)]; }
};

}  // namespace chord
