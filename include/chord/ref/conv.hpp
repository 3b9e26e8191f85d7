// chord/ref/conv.hpp: reference Caser convolutions over the embedding "image" E: [L, d].
//
// Caser (Tang & Wang 2018) reads the last L items' embeddings as an L x d image and runs two kinds of
// filters over it:
//   horizontal, for every height h = 1..L, nh filters of shape [h, d]: each slides down the time axis
//     (positions t = 0..L-h), then ReLU, then max-pooling over time -> one value per filter;
//   vertical, nv filters of shape [L, 1]: each is a weighted sum of the L rows -> one row of d values.
// Both are linear layers in disguise, which is what lets a strategy quantize them per channel (one
// filter = one output channel, docs/design.md#precision):
//   - a height-h window of E is h consecutive rows, i.e. h*d contiguous floats (E is row-major), so
//     the windows are the rows of an [L-h+1, h*d] matrix at row stride d (overlapping, no copy: the
//     im2col of this convolution is free), and the nh filters are the rows of an [nh, h*d] layer;
//   - the vertical filters are an [nv, L] layer applied to the columns of E (the rows of E^T: [d, L]).
// So each takes `LinearLayer` layers and runs dense fp32, W-A32 or W-A8 through ref::linear_forward.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/ref/activation.hpp"
#include "chord/ref/linear.hpp"

namespace chord::ref {

namespace detail {
inline void check_horizontal(const std::vector<LinearLayer>& filters, std::size_t length, std::size_t d) {
  CHORD_CHECK(length >= 1, "caser_horizontal: sequence length L must be at least 1");
  CHORD_CHECK(filters.size() == length, "caser_horizontal: ", filters.size(),
              " filter banks given, expected one per height 1..", length);
  for (std::size_t h = 1; h <= length; ++h) {
    const LinearLayer& bank = filters[h - 1];
    const std::string where = "caser_horizontal: filters of height " + std::to_string(h);
    bank.validate(where.c_str());
    CHORD_CHECK(bank.in == h * d, where, " have fan-in ", bank.in, ", expected h * d = ", h * d);
    CHORD_CHECK(bank.out == filters[0].out, where, " number ", bank.out, ", height 1 has ", filters[0].out,
                " (every height needs the same nh)");
  }
}
}  // namespace detail

// Horizontal filters with ReLU and max-pooling over time.
// E: [L, d]; filters: L banks, filters[h-1]: [nh, h*d] with bias [nh] (window row r, column j is
// weight r*d + j) -> out: [L * nh], out[(h-1)*nh + f] = max_t relu(conv_h(E)[t][f]), ordered by height
// then filter, as Caser concatenates them.
inline void caser_horizontal(const float* E, std::size_t length, std::size_t d, const std::vector<LinearLayer>& filters,
                             float* out) {
  detail::check_horizontal(filters, length, d);
  const std::size_t nh = filters[0].out;
  for (std::size_t h = 1; h <= length; ++h) {
    const std::size_t positions = length - h + 1;
    std::vector<float> conv(positions * nh);  // [positions, nh]
    // The windows: `positions` rows of h*d floats starting every d floats (see the header comment).
    linear_forward(filters[h - 1], E, d, conv.data(), nh, positions);
    relu(conv.data(), conv.size(), conv.data());
    for (std::size_t f = 0; f < nh; ++f) {
      float best = conv[f];  // positions >= 1, so there is always a first value
      for (std::size_t t = 1; t < positions; ++t) best = std::max(best, conv[t * nh + f]);
      out[(h - 1) * nh + f] = best;
    }
  }
}

// Vertical filters (no activation, as in Caser):
//   out[f][j] = sum_i W[f][i] * E[i][j] + b[f]
// E: [L, d]; filters: [nv, L] with bias [nv] -> out: [nv * d], filter-major (out[f*d + j]).
inline void caser_vertical(const float* E, std::size_t length, std::size_t d, const LinearLayer& filters, float* out) {
  filters.validate("caser_vertical: filters");
  CHORD_CHECK(filters.in == length, "caser_vertical: filters have length ", filters.in,
              ", expected the sequence length ", length);
  const std::size_t nv = filters.out;
  // Columns of E as rows ([d, L]), so that each filter is a channel of an ordinary linear layer and,
  // in the W-A8 mode, each column (one embedding dimension over time) gets its own int8 scale.
  std::vector<float> columns(d * length);
  for (std::size_t i = 0; i < length; ++i)
    for (std::size_t j = 0; j < d; ++j) columns[j * length + i] = E[i * d + j];
  const std::vector<float> y = linear_forward(filters, columns.data(), d);  // [d, nv]
  for (std::size_t f = 0; f < nv; ++f)
    for (std::size_t j = 0; j < d; ++j) out[f * d + j] = y[j * nv + f];
}

// E: [L, d] -> out: [nv*d + L*nh] = [vertical | horizontal], the order of Caser's torch.cat([out_v, out_h]).
inline void caser_conv(const CaserFilters& filters, const float* E, std::size_t length, std::size_t d,
                       float* out) {
  caser_vertical(E, length, d, filters.vertical, out);
  caser_horizontal(E, length, d, filters.horizontal, out + filters.vertical.out * d);
}

}  // namespace chord::ref
