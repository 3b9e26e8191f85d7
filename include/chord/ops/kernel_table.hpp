// chord/ops/kernel_table.hpp: the contract between the ISA-neutral ops and the SIMD backends.
//
// A backend implements, per ISA and per packed width b in {8, 4, 2}, two kernels over one homogeneous
// PackedMatrix (a segment of a MixedMatrix):
//   gemm_s8:  int8 activations (QuantizedRows) x packed weights  -> int32 dot products -> fp32
//   gemm_f32: fp32 activations x packed weights dequantized in registers             -> fp32
// Both write row i, weight row r to output column columns[r] (r when `columns` is null), so a mixed
// matrix's segments land directly in the original channel order. A KernelTable holds one ISA's
// kernels; ops/dispatch.hpp picks a table for the running CPU.
//
// Besides the gemms, a table holds the row kernels around them (one per ISA, not per width):
//   quantize_rows   fp32 rows -> int8 QuantizedRows codes, bit-identical to core/quantize_rows.hpp
//   layernorm, softmax, relu, gelu, add                          fp32 row / element-wise ops
//   attention, attention_row                                     the fp32 core of causal attention
// Kernels never allocate and never throw: scratch memory comes from the caller (the ops in
// chord/ops/*.hpp), and a kernel that meets bad data (a non-finite activation) reports it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "chord/core/quantize_rows.hpp"
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
// x: [m, w.cols()] with row stride ldx; x is read only up to w.cols() (no padding needed). Rows may
// overlap (ldx < w.cols()): Caser's convolution windows are rows of h*d floats at stride d.
using GemmF32Fn = void (*)(const float* x, std::size_t ldx, std::size_t m, const PackedMatrix& w,
                           const GemmOutput& out);

// int8 per-row activation quantization, code for code as chord::quantize_rows (core/quantize_rows.hpp):
//   inv = 127 / max_j |x_ij|, code = clamp(nearbyint(x_ij * inv), +-127) (ties to even), scale = max / 127,
//   sums[i] = sum of row i's codes; a row whose inv is not finite (all zero, or max < ~4e-37) gets
//   codes 0, scale 0, sum 0.
// x: [m, k] (row stride ldx; rows may overlap, ldx < k), codes: [m, stride] with stride >= k (the kernel
// writes zeros from k to stride), scales, sums: [m]. Returns m, or the first row holding a non-finite
// value (that row's and later rows' outputs are then unspecified): the op turns it into a chord::Error.
using QuantizeRowsFn = std::size_t (*)(const float* x, std::size_t ldx, std::size_t m, std::size_t k,
                                       std::int8_t* codes, std::size_t stride, float* scales, std::int32_t* sums);

// Layer normalization over rows (ref::layernorm, fp32 two-pass mean / variance).
// x: [m, d], gamma, beta: [d] or null, eps > 0, y: [m, d]; y may alias x. d > 0.
using LayerNormFn = void (*)(const float* x, std::size_t m, std::size_t d, const float* gamma, const float* beta,
                             float eps, float* y);

// Row-wise softmax (ref::softmax_row per row): -infinity is "masked" (weight exactly 0); a row with no
// finite entry gives zeros. causal: row i normalizes entries 0..i only and writes exact zeros after them
// (the causal limit of an [L, L] score matrix). x, y: [m, n]; y may alias x.
using SoftmaxFn = void (*)(const float* x, std::size_t m, std::size_t n, bool causal, float* y);

// Element-wise: y = f(x) (ReLU, GELU) or y = x + r. x, r, y: [n]; y may alias x or r.
using UnaryFn = void (*)(const float* x, std::size_t n, float* y);
using AddFn = void (*)(const float* x, const float* r, std::size_t n, float* y);

// The padding of the keys as the kernels see it (ref::KeyPadding's two fields, so that this contract
// does not depend on the reference headers): key s is padding when s < left or valid[s] == 0.
struct KeyMask {
  std::size_t left = 0;
  const std::uint8_t* valid = nullptr;  // [keys] or null
};

// Floats of scratch an attention kernel needs for `keys` keys (4 score rows, 16-float aligned rows,
// room for a kernel that works on a block of up to 4 queries at once).
constexpr std::size_t attention_scratch_floats(std::size_t keys) { return 4 * ((keys + 15) / 16 * 16) + 64; }

// Floats of scratch the full-sequence kernel needs for `length` positions of width d: K^T of one head
// [d, keys rounded up to 32], V^T of up to 16 of its columns [16, keys rounded up to 32] or V with its
// columns padded to whole registers [length, d rounded up to 16] (vectors have at most 16 float lanes),
// and 4 score rows; at least attention_scratch_floats(length) (a kernel may run the row routine).
constexpr std::size_t attention_core_scratch_floats(std::size_t length, std::size_t d) {
  const std::size_t keys = (length + 31) / 32 * 32;
  const std::size_t blocked = keys * (d + 4 + 16) + length * ((d + 15) / 16 * 16);
  return blocked > attention_scratch_floats(length) ? blocked : attention_scratch_floats(length);
}

// Causal multi-head attention on projected inputs (ref::attention_core):
//   per head h (columns h*dh .. h*dh+dh-1, dh = d / heads) and query t:
//   out_h[t] = sum_{s <= t, s not padding} softmax_s(q_h[t] . k_h[s] / sqrt(dh)) v_h[s]
// (zeros when query t has no key). q, k, v, out: [length, d] (rows of d floats), heads divides d,
// mask.left <= length, scratch: attention_core_scratch_floats(length, d) floats. out must not overlap
// q, k, v. Within rounding of AttentionRowFn's rows (the full sequence may sum in other orders).
using AttentionFn = void (*)(const float* q, const float* k, const float* v, std::size_t length, std::size_t d,
                             std::size_t heads, KeyMask mask, float* scratch, float* out);

// One query row against a K/V cache (ref::attention_row): q: [d], k_cache, v_cache: [count, d],
// mask indexes cache positions, scratch: attention_scratch_floats(count) floats, out: [d].
// Row count-1 of AttentionFn on the same inputs, within rounding.
using AttentionRowFn = void (*)(const float* q, const float* k_cache, const float* v_cache, std::size_t count,
                                std::size_t d, std::size_t heads, KeyMask mask, float* scratch, float* out);

// Index of a packed width in a table: 8 -> 0, 4 -> 1, 2 -> 2.
constexpr int width_index(int bits) { return bits == 8 ? 0 : bits == 4 ? 1 : 2; }

struct KernelTable {
  Isa isa = Isa::scalar;
  const char* backend = "scalar";             // "scalar", "xsimd" or "highway"
  std::array<GemmS8Fn, 3> gemm_s8{};          // by width_index
  std::array<GemmF32Fn, 3> gemm_f32{};
  QuantizeRowsFn quantize_rows = nullptr;
  LayerNormFn layernorm = nullptr;
  SoftmaxFn softmax = nullptr;
  UnaryFn relu = nullptr;
  UnaryFn gelu = nullptr;
  AddFn add = nullptr;
  AttentionFn attention = nullptr;
  AttentionRowFn attention_row = nullptr;
  // The gemms' entry points by name, by width_index (set with CHORD_SET_GEMMS): see gemm_name below.
  std::array<const char*, 3> gemm_s8_names{};
  std::array<const char*, 3> gemm_f32_names{};

  GemmS8Fn s8(int bits) const { return gemm_s8[width_index(bits)]; }
  GemmF32Fn f32(int bits) const { return gemm_f32[width_index(bits)]; }
};

// The name of a table's gemm of one width, as tests and chord_bench print it: the identifier of its
// entry point in backends/, XNNPACK style, w{bits}{a8|f32}_gemm__<backend>_<isa> (w4a8_gemm__xsimd_avx2;
// the scalar backend's: w4a8_gemm__scalar), so `grep -rn w4a8_gemm__xsimd_avx2 backends/` finds it.
// "(unnamed)" for a hand-built table that set no names.
inline const char* gemm_name(const KernelTable& t, int bits, bool int8) {
  const char* name = (int8 ? t.gemm_s8_names : t.gemm_f32_names)[width_index(bits)];
  return name != nullptr ? name : "(unnamed)";
}

}  // namespace chord

// Sets a table's three gemms of one kind (s8 or f32) and their names, each entry point spelled once:
// the name is the identifier itself (#w8), so a printed name is always one that grep finds.
#define CHORD_SET_GEMMS(table, kind, w8, w4, w2) \
  do {                                            \
    (table).gemm_##kind = {w8, w4, w2};           \
    (table).gemm_##kind##_names = {#w8, #w4, #w2}; \
  } while (false)

namespace chord {

}  // namespace chord
