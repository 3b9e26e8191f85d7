// chord/ops/conv.hpp: Caser's convolutions through a KernelTable (the reference: ref/conv.hpp).
//
// Both filter kinds are linear layers (one filter = one output channel), so they run through
// ops::linear_forward and get the dense, W-A32 and W-A8 paths:
//   horizontal, height h: the windows of E: [L, d] are h consecutive rows = h*d contiguous floats, i.e.
//     the rows of an [L-h+1, h*d] matrix at row stride d (overlapping: the im2col is free, nothing is
//     copied); the gemm writes [L-h+1, nh], then ReLU (table.relu) and max-pooling over time;
//   vertical: an [nv, L] layer over the columns of E (E^T: [d, L], one transposed copy).
// In W-A8 mode the outputs equal the reference's bit for bit (the int8 path and ReLU / max are exact).
// Scratch: the thread's Workspace (workspace.hpp, slots conv and columns).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/ops/elementwise.hpp"
#include "chord/ops/kernel_table.hpp"
#include "chord/ops/linear.hpp"
#include "chord/ops/workspace.hpp"
#include "chord/ref/conv.hpp"

namespace chord::ops {


// Horizontal filters with ReLU and max-pooling over time. E: [L, d]; filters: L banks, filters[h-1]:
// [nh, h*d] -> out: [L * nh], out[(h-1)*nh + f] = max_t relu(conv_h(E)[t][f]) (by height, then filter).
inline void caser_horizontal(const KernelTable& kernels, const float* E, std::size_t length, std::size_t d,
                             const std::vector<LinearLayer>& filters, float* out) {
  ref::detail::check_horizontal(filters, length, d);
  const std::size_t nh = filters[0].out;
  float* conv = Workspace::reserve(Workspace::local().conv, length * nh);  // [positions, nh]
  for (std::size_t h = 1; h <= length; ++h) {
    const std::size_t positions = length - h + 1;
    linear_forward(kernels, filters[h - 1], E, d, conv, nh, positions);  // windows: rows of h*d at stride d
    relu(kernels, conv, positions * nh, conv);
    for (std::size_t f = 0; f < nh; ++f) {
      float best = conv[f];
      for (std::size_t t = 1; t < positions; ++t) best = std::max(best, conv[t * nh + f]);
      out[(h - 1) * nh + f] = best;
    }
  }
}

// Vertical filters (no activation): out[f][j] = sum_i W[f][i] * E[i][j] + b[f].
// E: [L, d]; filters: [nv, L] -> out: [nv * d], filter-major.
inline void caser_vertical(const KernelTable& kernels, const float* E, std::size_t length, std::size_t d,
                           const LinearLayer& filters, float* out) {
  filters.validate("caser_vertical: filters");
  CHORD_CHECK(filters.in == length, "caser_vertical: filters have length ", filters.in,
              ", expected the sequence length ", length);
  const std::size_t nv = filters.out;
  // E^T first, then the products [d, nv], in one buffer: columns of E as rows, so that each embedding
  // dimension gets its own int8 scale in W-A8 mode, as in the reference.
  float* columns = Workspace::reserve(Workspace::local().columns, d * length + d * nv);
  float* y = columns + d * length;
  for (std::size_t i = 0; i < length; ++i)
    for (std::size_t j = 0; j < d; ++j) columns[j * length + i] = E[i * d + j];
  linear_forward(kernels, filters, columns, length, y, nv, d);
  for (std::size_t f = 0; f < nv; ++f)
    for (std::size_t j = 0; j < d; ++j) out[f * d + j] = y[j * nv + f];
}

// E: [L, d] -> out: [nv*d + L*nh] = [vertical | horizontal], Caser's torch.cat([out_v, out_h]).
inline void caser_conv(const KernelTable& kernels, const CaserFilters& filters, const float* E, std::size_t length,
                       std::size_t d, float* out) {
  caser_vertical(kernels, E, length, d, filters.vertical, out);
  caser_horizontal(kernels, E, length, d, filters.horizontal, out + filters.vertical.out * d);
}

}  // namespace chord::ops
