// chord/nn/conv.hpp: Caser's two convolutions over the L x d image of a user's last L items.
//
// Horizontal: for each height h = 1..L, nh filters W_h [nh, h*d] (a filter spans h whole item rows),
// bias b_h [nh]; the filter slides over time t = 0..L-h, then ReLU, then max-pool over time:
//   o_h[f] = max_t relu( sum_{r<h, j<d} W_h[f][r d + j] E[t + r][j] + b_h[f] )
// output [L * nh] ordered by height then filter: out[(h - 1) nh + f].  (relu(max) = max(relu).)
// Vertical: nv filters W_v [nv, L] (one weight per time step), bias b_v [nv], no activation:
//   v[f][j] = sum_t W_v[f][t] E[t][j] + b_v[f]          output [nv * d], out[f d + j]
// (PyTorch's Caser uses nn.Conv2d for both, which has a bias by default: so do we.)
//
// Why a window needs no im2col: E is row-major [L, d], so window t (rows t..t+h-1) is the contiguous
// run E + t d of length h d; consecutive windows are rows of an overlapping matrix with row stride d,
// which gemm_nt reads directly. Over a batch stored as [B, L, d] the same holds across sequences; the
// windows that straddle two sequences are computed and ignored (cheaper than packing W_h per sequence).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/aligned.hpp"
#include "chord/nn/gemm_f32.hpp"
#include "chord/nn/init.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {

// "<name>.h<h>.weight" [nh, h*d] and "<name>.h<h>.bias" [nh] for h = 1..L.
struct CaserHorizontalConv {
  std::size_t L = 0, d = 0, nh = 0;
  std::vector<ParamId> weight, bias;  // index h - 1

  static CaserHorizontalConv create(Parameters& p, const std::string& name, std::size_t L, std::size_t d,
                                    std::size_t nh) {
    CHORD_CHECK(L > 0 && d > 0 && nh > 0, "CaserHorizontalConv '", name, "': zero dimension (L ", L, ", d ", d,
                ", nh ", nh, ")");
    CaserHorizontalConv c;
    c.L = L, c.d = d, c.nh = nh;
    for (std::size_t h = 1; h <= L; ++h) {
      c.weight.push_back(p.add(name + ".h" + std::to_string(h) + ".weight", {nh, h * d}));
      c.bias.push_back(p.add(name + ".h" + std::to_string(h) + ".bias", {nh}, /*weight_decay=*/false));
    }
    return c;
  }
  // nn.Conv2d's default (the same bound as nn.Linear: fan_in = h * d).
  void init(Parameters& p, Rng& rng) const {
    for (std::size_t h = 1; h <= L; ++h) pytorch_linear_init(p.value(weight[h - 1]), p.value(bias[h - 1]), h * d, nh, rng);
  }
  std::size_t output_size() const { return L * nh; }

  // E: [B, L, d] -> out: [B, L*nh]; argmax: [B, L*nh] window start of each maximum (saved);
  // scratch: [B*L, nh] (conv outputs of one height).
  void forward(const Parameters& p, const float* E, std::size_t B, float* out, std::uint32_t* argmax,
               float* scratch) const {
    const std::size_t rows = B * L;
    if (rows == 0) return;
    for (std::size_t h = 1; h <= L; ++h) {
      const std::size_t windows = rows - h + 1;  // every window start of the flat [B*L, d] buffer
      gemm_nt(windows, nh, h * d, E, d, p.value(weight[h - 1]), h * d, p.value(bias[h - 1]), scratch, nh, false);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t f = 0; f < nh; ++f) {
          const float* c = scratch + b * L * nh + f;
          std::uint32_t best = 0;  // first maximum wins ties
          for (std::size_t t = 1; t + h <= L; ++t)
            if (c[t * nh] > c[best * nh]) best = static_cast<std::uint32_t>(t);
          const std::size_t o = b * L * nh + (h - 1) * nh + f;
          out[o] = std::max(c[best * nh], 0.0f);
          argmax[o] = best;
        }
    }
  }

  // dout: [B, L*nh], out and argmax from forward, E: [B, L, d] -> dE: [B, L, d] +=; g += dW_h, db_h.
  // Max-pooling routes each output's gradient to its argmax window only; ReLU stops it when out = 0.
  void backward(const Parameters& p, GradientBuffer& g, const float* E, std::size_t B, const float* out,
                const std::uint32_t* argmax, const float* dout, float* dE) const {
    for (std::size_t h = 1; h <= L; ++h) {
      const float* w = p.value(weight[h - 1]);
      float* dw = g.of(weight[h - 1]);
      float* db = g.of(bias[h - 1]);
      const std::size_t k = h * d;
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t f = 0; f < nh; ++f) {
          const std::size_t o = b * L * nh + (h - 1) * nh + f;
          if (!(out[o] > 0.0f) || dout[o] == 0.0f) continue;
          const float grad = dout[o];
          const std::size_t start = (b * L + argmax[o]) * d;  // the window E[start .. start + k)
          db[f] += grad;
          for (std::size_t j = 0; j < k; ++j) dw[f * k + j] += grad * E[start + j];
          if (dE != nullptr)
            for (std::size_t j = 0; j < k; ++j) dE[start + j] += grad * w[f * k + j];
        }
    }
  }
};

// "<name>.weight" [nv, L] and "<name>.bias" [nv].
struct CaserVerticalConv {
  std::size_t L = 0, d = 0, nv = 0;
  ParamId weight = 0, bias = 0;

  static CaserVerticalConv create(Parameters& p, const std::string& name, std::size_t L, std::size_t d,
                                  std::size_t nv) {
    CHORD_CHECK(L > 0 && d > 0 && nv > 0, "CaserVerticalConv '", name, "': zero dimension (L ", L, ", d ", d,
                ", nv ", nv, ")");
    CaserVerticalConv c;
    c.L = L, c.d = d, c.nv = nv;
    c.weight = p.add(name + ".weight", {nv, L});
    c.bias = p.add(name + ".bias", {nv}, /*weight_decay=*/false);
    return c;
  }
  void init(Parameters& p, Rng& rng) const { pytorch_linear_init(p.value(weight), p.value(bias), L, nv, rng); }
  std::size_t output_size() const { return nv * d; }

  // E: [B, L, d] -> out: [B, nv*d], out[b] = W_v E[b] + b_v (per filter row)
  void forward(const Parameters& p, const float* E, std::size_t B, float* out) const {
    const float* bv = p.value(bias);
    for (std::size_t b = 0; b < B; ++b) {
      float* ob = out + b * nv * d;
      gemm_nn(nv, d, L, p.value(weight), L, E + b * L * d, d, ob, d, false);  // [nv, L] x [L, d]
      for (std::size_t f = 0; f < nv; ++f)
        for (std::size_t j = 0; j < d; ++j) ob[f * d + j] += bv[f];
    }
  }

  // dout: [B, nv*d], E: [B, L, d] -> dE: [B, L, d] += W_v^T dout; g += dW_v = dout E^T, db_v = row sums.
  void backward(const Parameters& p, GradientBuffer& g, const float* E, std::size_t B, const float* dout,
                float* dE) const {
    float* dw = g.of(weight);
    float* db = g.of(bias);
    for (std::size_t b = 0; b < B; ++b) {
      const float* gb = dout + b * nv * d;
      gemm_nt(nv, L, d, gb, d, E + b * L * d, d, nullptr, dw, L, /*accumulate=*/true);  // [nv, d] x [L, d]^T
      if (dE != nullptr) gemm_tn(L, d, nv, p.value(weight), L, gb, d, dE + b * L * d, d);  // [nv, L]^T x [nv, d]
      for (std::size_t f = 0; f < nv; ++f)
        for (std::size_t j = 0; j < d; ++j) db[f] += gb[f * d + j];
    }
  }
};

}  // namespace chord::nn
