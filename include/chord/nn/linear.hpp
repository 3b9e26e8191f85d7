// chord/nn/linear.hpp: the fully connected layer, y = x W^T + b (PyTorch nn.Linear's layout).
//
// Conventions shared by every chord::nn layer (llm.c style):
//   - forward writes its outputs; backward ADDS (+=) into every gradient it is given, input gradients
//     and parameter gradients alike. Callers zero gradient buffers once per step; residual branches
//     and shared weights then need no special code (two backward calls add up).
//   - rows are independent tokens: m = batch * sequence length; a null gradient pointer skips it.
#pragma once

#include <cstddef>
#include <string>

#include "chord/nn/gemm_f32.hpp"
#include "chord/nn/init.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {

// x: [m, in], w: [out, in], b: [out] or null  ->  y: [m, out]
inline void linear_forward(const float* x, const float* w, const float* b, float* y, std::size_t m,
                           std::size_t in, std::size_t out) {
  gemm_nt(m, out, in, x, in, w, in, b, y, out, /*accumulate=*/false);
}

// dy: [m, out], x: [m, in], w: [out, in]
//   dx: [m, in]   += dy W          (skipped when null)
//   dw: [out, in] += dy^T x        (skipped when null)
//   db: [out]     += sum_i dy[i]   (skipped when null)
inline void linear_backward(const float* dy, const float* x, const float* w, float* dx, float* dw, float* db,
                            std::size_t m, std::size_t in, std::size_t out) {
  if (dx != nullptr) gemm_nn(m, in, out, dy, out, w, in, dx, in, /*accumulate=*/true);
  if (dw != nullptr) gemm_tn(out, in, m, dy, out, x, in, dw, in);
  if (db != nullptr)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t c = 0; c < out; ++c) db[c] += dy[i * out + c];
}

// A Linear bound to its registered parameters "<name>.weight" [out, in] and "<name>.bias" [out].
struct Linear {
  std::size_t in = 0, out = 0;
  ParamId weight = 0, bias = 0;
  bool has_bias = true;

  static Linear create(Parameters& p, const std::string& name, std::size_t in, std::size_t out,
                       bool with_bias = true) {
    CHORD_CHECK(in > 0 && out > 0, "Linear '", name, "': zero dimension (in ", in, ", out ", out, ")");
    Linear l;
    l.in = in, l.out = out, l.has_bias = with_bias;
    l.weight = p.add(name + ".weight", {out, in});
    if (with_bias) l.bias = p.add(name + ".bias", {out}, /*weight_decay=*/false);
    return l;
  }

  // PyTorch's nn.Linear initialization.
  void init(Parameters& p, Rng& rng) const {
    pytorch_linear_init(p.value(weight), has_bias ? p.value(bias) : nullptr, in, out, rng);
  }

  // x: [m, in] -> y: [m, out]
  void forward(const Parameters& p, const float* x, float* y, std::size_t m) const {
    linear_forward(x, p.value(weight), has_bias ? p.value(bias) : nullptr, y, m, in, out);
  }

  // dy: [m, out], x: [m, in] (the forward input) -> dx: [m, in] += (null: skipped); g += dW, db.
  void backward(const Parameters& p, GradientBuffer& g, const float* x, const float* dy, float* dx,
                std::size_t m) const {
    linear_backward(dy, x, p.value(weight), dx, g.of(weight), has_bias ? g.of(bias) : nullptr, m, in, out);
  }
};

}  // namespace chord::nn
