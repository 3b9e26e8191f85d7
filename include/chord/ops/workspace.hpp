// chord/ops/workspace.hpp: the scratch memory of the ops (kernels never allocate).
//
// Each op that needs intermediate buffers (projected Q/K/V, attention scores, int8 activations,
// convolution outputs) takes them from the calling thread's Workspace: buffers that grow on demand and
// are never shrunk, so a model that runs the same shapes again allocates nothing after its first call,
// and threads never share scratch. Each op owns distinct slots (documented below), so an op may call
// another (causal_attention -> linear_forward -> quantize_rows) without the two overwriting each other.
// Nothing an op returns points into the workspace.
#pragma once

#include <cstddef>
#include <vector>

#include "chord/core/quantize_rows.hpp"

namespace chord::ops {

struct Workspace {
  QuantizedRows rows;                     // linear_forward (mixed_s8): the int8 activations
  std::vector<float> scores;              // attention_core / attention_row: the kernels' scratch
  std::vector<float> q, k, v, context;    // causal_attention, causal_attention_step: [L, d] each
  std::vector<float> conv, columns;       // caser_horizontal: [L, nh]; caser_vertical: [d, L] and [d, nv]

  // The calling thread's workspace.
  static Workspace& local() {
    thread_local Workspace workspace;
    return workspace;
  }
  // `buffer` with room for n floats (grown, never shrunk).
  static float* reserve(std::vector<float>& buffer, std::size_t n) {
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
  }
};

}  // namespace chord::ops
