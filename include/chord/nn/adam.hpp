// chord/nn/adam.hpp: the Adam optimizer (Kingma & Ba 2015) over a Parameters registry.
//
// Per element, at step t (from 1), with g the gradient in Parameters::grads():
//   coupled L2 (decoupled = false, torch.optim.Adam's weight_decay):  g <- g + weight_decay * w
//   m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2
//   decoupled (decoupled = true, torch.optim.AdamW):                  w <- w - lr * weight_decay * w
//   w <- w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The last line is PyTorch's arrangement (eps added after the bias correction of sqrt(v)), so the same
// gradients give the same steps as torch. Decay applies only to tensors registered with
// weight_decay = true (biases and norm parameters are registered without). Defaults follow SASRec:
// lr 1e-3, betas 0.9 / 0.98, eps 1e-8, no decay. A zero gradient on a zero weight (the embedding
// padding row) leaves it exactly zero under every option.
#pragma once
#define CHORD_TRAINING_CODE 1  // training-only code: tests/device_only.cpp refuses to compile with it

#include <cmath>
#include <cstddef>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.98f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool decoupled = false;  // false: L2 added to the gradient (Adam); true: AdamW
};

class Adam {
 public:
  Adam(const Parameters& params, AdamOptions options = {})
      : options_(options), m_(params.flat_size(), 0.0f), v_(params.flat_size(), 0.0f) {
    CHORD_CHECK(options.lr >= 0.0f, "Adam: learning rate must be non-negative, got ", options.lr);
    CHORD_CHECK(options.beta1 >= 0.0f && options.beta1 < 1.0f, "Adam: beta1 must be in [0, 1), got ", options.beta1);
    CHORD_CHECK(options.beta2 >= 0.0f && options.beta2 < 1.0f, "Adam: beta2 must be in [0, 1), got ", options.beta2);
    CHORD_CHECK(options.eps > 0.0f, "Adam: eps must be positive, got ", options.eps);
    CHORD_CHECK(options.weight_decay >= 0.0f, "Adam: weight decay must be non-negative, got ", options.weight_decay);
  }

  // One update of every parameter from params.grads(). Gradients are left as they are (zero them).
  void step(Parameters& params) {
    CHORD_CHECK(params.flat_size() == m_.size(), "Adam: the registry has ", params.flat_size(),
                " floats but the optimizer was built for ", m_.size(), " (parameters added after Adam?)");
    ++t_;
    const AdamOptions& o = options_;
    const double correction1 = 1.0 - std::pow(double(o.beta1), double(t_));
    const double correction2 = 1.0 - std::pow(double(o.beta2), double(t_));
    const float step_size = static_cast<float>(o.lr / correction1);
    const float inv_sqrt_correction2 = static_cast<float>(1.0 / std::sqrt(correction2));
    for (const ParamInfo& info : params.infos()) {
      float* w = params.values() + info.offset;
      const float* grad = params.grads().data() + info.offset;
      float* m = m_.data() + info.offset;
      float* v = v_.data() + info.offset;
      const float decay = info.weight_decay ? o.weight_decay : 0.0f;
      const float l2 = o.decoupled ? 0.0f : decay;
      const float shrink = o.decoupled ? 1.0f - o.lr * decay : 1.0f;
      for (std::size_t i = 0; i < info.size; ++i) {
        const float g = grad[i] + l2 * w[i];
        m[i] = o.beta1 * m[i] + (1.0f - o.beta1) * g;
        v[i] = o.beta2 * v[i] + (1.0f - o.beta2) * g * g;
        w[i] = w[i] * shrink - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_correction2 + o.eps);
      }
    }
  }

  std::size_t steps() const { return t_; }
  const AdamOptions& options() const { return options_; }
  void set_lr(float lr) { options_.lr = lr; }
  // The moment estimates, flat like the registry (for checkpoints).
  const AlignedVector<float>& first_moment() const { return m_; }
  const AlignedVector<float>& second_moment() const { return v_; }

 private:
  AdamOptions options_;
  AlignedVector<float> m_, v_;
  std::size_t t_ = 0;
};

}  // namespace chord::nn
