// chord/personalize/experiment/evaluator.hpp: one user's test metrics on the device model a strategy produces.
//
// The experiment runner compares strategies (CHORD, the baselines of baselines.hpp, uniform PTQ, fp32)
// user by user: for each user it has one weight matrix per personalized layer (the frozen fp32 weights,
// or a variant of them) and per-channel bit-widths, and wants the ranking metrics of the model the
// device would run. DeviceEvaluator is that question as an interface, so the runner stays independent
// of the backbone; SasrecEvaluator and CaserEvaluator (sasrec_backbone.hpp, caser_backbone.hpp) answer it.
//
// The contract:
//   user      a dense user index 0 .. user_count() - 1 (the dataset's numbering, the same as the
//             backbone adapter's); a user without a test target (fewer than 3 events) is an error.
//   history   train + validation items; target: the test item (docs/design.md#evaluation, data/split.hpp).
//   weights   one pointer per PersonalizedLayer of the backbone, [channels, fan_in] row-major; they
//             replace the model's own matrices for this evaluation (the frozen weights themselves
//             give the plain model).
//   bits      bits[layer][channel] in {0, 2, 4, 8}, one vector per personalized layer: each channel is
//             quantized per channel (core/quantizer.hpp) at its width and the model runs W-A8 through
//             &chord::best_kernels(), the non-personalized layers quantized at the evaluator's uniform
//             device embedding width; EMPTY bits = the whole model fp32 (the reference).
//   protocols sampled (the target + 100 seeded negatives, data/candidates.hpp) and full ranking (every
//             item but the history), metrics from data/metrics.hpp (ties count against the model).
//   threads   evaluate() is const and thread-safe as long as each thread has its own Scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "chord/data/metrics.hpp"

namespace chord::personalize {

struct UserRanking {
  double hr5 = 0, hr10 = 0, ndcg5 = 0, ndcg10 = 0;  // one user, one protocol: 0 / 1 hits, NDCG in [0, 1]
};

struct UserEvaluation {
  UserRanking sampled, full;
};

// The metrics of one user whose target has `rank` (0 = best; data/metrics.hpp's definitions).
inline UserRanking user_ranking(std::int64_t rank) {
  UserRanking r;
  r.hr5 = data::hit_at(rank, 5), r.hr10 = data::hit_at(rank, 10);
  r.ndcg5 = data::ndcg_at(rank, 5), r.ndcg10 = data::ndcg_at(rank, 10);
  return r;
}

class DeviceEvaluator {
 public:
  // Per-thread buffers (the inference graph's scratch, score vectors).
  struct Scratch {
    virtual ~Scratch() = default;
  };

  virtual ~DeviceEvaluator() = default;
  virtual std::unique_ptr<Scratch> make_scratch() const = 0;
  // weights: one pointer per personalized layer, [channels, fan_in]; bits: empty (fp32) or
  // [layer][channel] in {0, 2, 4, 8}.
  virtual UserEvaluation evaluate(std::size_t user, const std::vector<const float*>& weights,
                                  const std::vector<std::vector<std::uint8_t>>& bits, Scratch& scratch) const = 0;
  virtual std::size_t user_count() const = 0;
};

}  // namespace chord::personalize
