// chord/personalize/evaluator.hpp: ranking metrics of one user under a given set of personalized weights.
//
// The experiment runner (experiment.hpp) compares strategies by what a device would measure: HR@5/10 and
// NDCG@5/10 of the user's held-out test item, under both protocols (100 sampled negatives, full ranking;
// DESIGN section 8). A backbone's adapter implements this next to its PersonalizableBackbone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace chord::personalize {
struct UserRanking { double hr5 = 0, hr10 = 0, ndcg5 = 0, ndcg10 = 0; };            // one user, one protocol
struct UserEvaluation { UserRanking sampled, full; };
// Evaluates one user's test item with a model whose personalized layers use `weights` (one pointer per
// PersonalizedLayer, [channels, fan_in]) quantized per channel at bits[layer][channel] in {0,2,4,8}
// (empty bits = fp32), non-personalized layers at the device embedding width (fp32 when bits is empty).
class DeviceEvaluator {
 public:
  struct Scratch { virtual ~Scratch() = default; };
  virtual ~DeviceEvaluator() = default;
  virtual std::unique_ptr<Scratch> make_scratch() const = 0;
  virtual UserEvaluation evaluate(std::size_t user, const std::vector<const float*>& weights,
                                  const std::vector<std::vector<std::uint8_t>>& bits, Scratch&) const = 0;
  virtual std::size_t user_count() const = 0;
};
}
