// chord/nn/ffn.hpp: SASRec's point-wise feed-forward network (two 1x1 convolutions = two Linears).
//
//   a = x W1^T + b1              [m, hidden]
//   h = dropout(relu(a))         [m, hidden]   (the reference applies dropout then ReLU: the same
//                                               function, since inverted dropout scales by a positive)
//   y = dropout(h W2^T + b2)     [m, d]
// The residual connection (y + x in the reference) belongs to the model: see residual_forward.
// Parameters: "<name>.fc1" (Linear d -> hidden) and "<name>.fc2" (Linear hidden -> d).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "chord/core/aligned.hpp"
#include "chord/nn/dropout.hpp"
#include "chord/nn/elementwise.hpp"
#include "chord/nn/linear.hpp"

namespace chord::nn {

// What one worker keeps for m rows (forward saves, backward scratch).
struct FeedForwardWorkspace {
  AlignedVector<float> a, h;                  // [m, hidden]: pre-activation, dropped activation (saved)
  AlignedVector<std::uint8_t> keep_h, keep_y; // [m, hidden], [m, d]: dropout decisions (saved)
  AlignedVector<float> dy_pre, dh;            // [m, d], [m, hidden]: backward scratch

  void resize(std::size_t m, std::size_t d, std::size_t hidden) {
    a.resize(m * hidden), h.resize(m * hidden), keep_h.resize(m * hidden), dh.resize(m * hidden);
    keep_y.resize(m * d), dy_pre.resize(m * d);
  }
};

struct PointwiseFeedForward {
  std::size_t d = 0, hidden = 0;
  Linear fc1, fc2;
  Dropout dropout;

  static PointwiseFeedForward create(Parameters& p, const std::string& name, std::size_t d, std::size_t hidden,
                                     float dropout_probability) {
    PointwiseFeedForward f;
    f.d = d, f.hidden = hidden;
    f.fc1 = Linear::create(p, name + ".fc1", d, hidden);
    f.fc2 = Linear::create(p, name + ".fc2", hidden, d);
    f.dropout = Dropout(dropout_probability);
    return f;
  }
  void init(Parameters& p, Rng& rng) const {
    fc1.init(p, rng);
    fc2.init(p, rng);
  }

  // x: [m, d] -> y: [m, d]; ws.resize(m, d, hidden) first. rng drives both dropouts when training.
  void forward(const Parameters& p, const float* x, float* y, std::size_t m, FeedForwardWorkspace& ws, Rng& rng,
               bool training) const {
    check_workspace(ws, m);
    fc1.forward(p, x, ws.a.data(), m);
    relu_forward(ws.a.data(), ws.h.data(), m * hidden);
    dropout.forward(ws.h.data(), ws.h.data(), ws.keep_h.data(), m * hidden, rng, training);
    fc2.forward(p, ws.h.data(), y, m);
    dropout.forward(y, y, ws.keep_y.data(), m * d, rng, training);
  }

  // dy: [m, d], x: [m, d] (forward input) -> dx: [m, d] +=; g += fc1, fc2 gradients.
  void backward(const Parameters& p, GradientBuffer& g, const float* x, const float* dy, float* dx, std::size_t m,
                FeedForwardWorkspace& ws, bool training) const {
    check_workspace(ws, m);
    std::fill(ws.dy_pre.begin(), ws.dy_pre.begin() + m * d, 0.0f);
    dropout.backward(dy, ws.keep_y.data(), ws.dy_pre.data(), m * d, training);
    std::fill(ws.dh.begin(), ws.dh.begin() + m * hidden, 0.0f);
    fc2.backward(p, g, ws.h.data(), ws.dy_pre.data(), ws.dh.data(), m);
    // Through dropout and ReLU at once, in place: da = dh * keep / (1 - p) * [a > 0].
    float* dh = ws.dh.data();
    const float* a = ws.a.data();
    const bool dropping = dropout.active(training);
    const float scale = dropping ? dropout.keep_scale() : 1.0f;
    for (std::size_t i = 0; i < m * hidden; ++i) {
      const bool kept = !dropping || ws.keep_h[i] != 0;
      dh[i] = (kept && a[i] > 0.0f) ? dh[i] * scale : 0.0f;
    }
    fc1.backward(p, g, x, dh, dx, m);
  }

 private:
  void check_workspace(const FeedForwardWorkspace& ws, std::size_t m) const {
    CHORD_CHECK(ws.a.size() >= m * hidden && ws.keep_y.size() >= m * d,
                "PointwiseFeedForward: workspace is smaller than ", m, " rows (call FeedForwardWorkspace::resize)");
  }
};

}  // namespace chord::nn
