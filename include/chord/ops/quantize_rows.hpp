// chord/ops/quantize_rows.hpp: int8 per-row activation quantization through a KernelTable.
//
// The same codes, scales and row sums as chord::quantize_rows (core/quantize_rows.hpp), bit for bit, from
// the table's SIMD kernel: it sits in front of every W-A8 product, so it is on the hot path of every
// quantized layer. `out` is resized, not reallocated, when its buffers are large enough.
#pragma once

#include <cmath>
#include <cstddef>

#include "chord/core/quantize_rows.hpp"
#include "chord/core/error.hpp"
#include "chord/ops/kernel_table.hpp"

namespace chord::ops {

namespace detail {
// Throws unless the table has the kernel (a hand-built table may hold only the gemms).
template <class Fn>
Fn require(Fn fn, const KernelTable& kernels, const char* what) {
  CHORD_CHECK(fn != nullptr, "kernel table ", isa_name(kernels.isa), "/", kernels.backend, " has no ", what,
              " kernel");
  return fn;
}
}  // namespace detail

// x: [m, k] fp32 (row stride ldx >= 1; rows may overlap, ldx < k, as Caser's windows) -> out: m rows
// of k int8 codes padded to a multiple of kMaxGroupK, scales and sums. A non-finite value throws
// chord::Error naming its row and column, as chord::quantize_rows.
inline void quantize_rows(const KernelTable& kernels, const float* x, std::size_t m, std::size_t k, std::size_t ldx,
                          QuantizedRows& out) {
  const QuantizeRowsFn kernel = detail::require(kernels.quantize_rows, kernels, "quantize_rows");
  // resize, not assign: the kernel writes every code up to the stride, every scale and sum, so zeroing
  // first would only add a pass over the buffers (QuantizedRows is a friend-only writer for this).
  out.m_ = m, out.k_ = k, out.stride_ = round_up(k, kMaxGroupK);
  out.codes_.resize(m * out.stride_);
  out.scales_.resize(m);
  out.sums_.resize(m);
  if (m == 0) return;
  const std::size_t bad = kernel(x, ldx, m, k, out.codes_.data(), out.stride_, out.scales_.data(), out.sums_.data());
  if (bad < m) {
    out.resize(0, 0, 0);  // the rows past `bad` are unspecified: leave nothing a later op could read
    std::size_t column = 0;
    while (column < k && std::isfinite(x[bad * ldx + column])) ++column;
    throw Error(chord::detail::error_message("quantize_rows: activation (", bad, ", ", column, ") is not finite"));
  }
}

inline QuantizedRows quantize_rows(const KernelTable& kernels, const float* x, std::size_t m, std::size_t k) {
  QuantizedRows out;
  quantize_rows(kernels, x, m, k, k, out);
  return out;
}

}  // namespace chord::ops
