// chord/nn/batch_parallel.hpp: running one training batch across std::thread workers.
//
// How the models use it (data parallelism inside one process, no locks on the hot path):
//   1. Before training: one Worker per thread, each with its own GradientBuffer
//      (params.new_gradient_buffer()) and its own activation workspaces (AttentionWorkspace, ...):
//      nothing a worker writes during a batch is shared.
//   2. Per batch: every worker zeroes its gradients, then takes the sequences b = w, w + T, w + 2T, ...
//      (a static assignment: which sequence lands in which buffer never depends on timing) and runs
//      forward + backward on them, reading the shared parameters (read-only during the batch) and
//      adding into its own gradients. The loss is normalized by the WHOLE batch's counts
//      (bce_pos_neg_loss's pos_count / neg_count), so the sum of the workers' gradients is the
//      full-batch gradient. Dropout streams are seeded per sequence (Rng(seed, step * B + b)).
//   3. After run_workers returns (the join is the barrier): reduce_gradients sums the workers' buffers
//      into params.grads() in worker order, and one thread calls Adam::step.
// The same seed and thread count therefore give bit-identical training runs.
#pragma once

#include <cstddef>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {

// into = sum over w of parts[w], added in order w = 0, 1, ... (deterministic).
// Every part must have into's layout (same registry).
inline void reduce_gradients(const std::vector<GradientBuffer>& parts, GradientBuffer& into) {
  for (std::size_t w = 0; w < parts.size(); ++w)
    CHORD_CHECK(parts[w].same_layout(into), "reduce_gradients: worker ", w,
                "'s gradient buffer has another layout than the target (built from another registry?)");
  float* out = into.data();
  const std::size_t n = into.size();
  if (parts.empty()) {
    into.zero();
    return;
  }
  const float* first = parts[0].data();
  for (std::size_t i = 0; i < n; ++i) out[i] = first[i];
  for (std::size_t w = 1; w < parts.size(); ++w) {
    const float* part = parts[w].data();
    for (std::size_t i = 0; i < n; ++i) out[i] += part[i];
  }
}

// Runs fn(worker) for worker = 0 .. workers-1: worker 0 on the calling thread, the others on new
// std::threads (or on the calling thread when none can be started), and joins them all. If any
// worker throws, the first exception (lowest worker index) is rethrown once every worker finished.
template <typename Fn>
void run_workers(std::size_t workers, Fn&& fn) {
  if (workers == 0) return;
  std::vector<std::exception_ptr> errors(workers);
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  auto guarded = [&](std::size_t w) {
    try {
      fn(w);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  for (std::size_t w = 1; w < workers; ++w) {
    try {
      threads.emplace_back(guarded, w);
    } catch (const std::system_error&) {  // no thread available: do that worker's share here
      guarded(w);
    }
  }
  guarded(0);
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace chord::nn
