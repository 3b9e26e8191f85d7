// chord/personalize/cloud/personalizer.hpp: the request/answer path between device and cloud (docs/design.md#chord).
//
//   device: profile u, budget, palette --encode_profile--> bytes ---------------------------------+
//   cloud:  decode_profile (strict) -> hypernetworks(u) -> importance c -> solve_strategy(c, budget,  |
//           palette) -> Strategy -> encode_strategy --> bytes ------------------------------------+
//   device: device/adaptation.hpp: decode_for_device (strict) -> widths -> cached codes -> install -> run
//
// solve_strategy is THE solver of every strategy we compare (CHORD and the baselines of baselines.hpp):
// budget_solver.hpp with each channel's own error curve from the quantization cache, so strategies at
// the same budget differ only in the importances they were given.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/personalize/cloud/budget_solver.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/importance.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"

namespace chord::personalize {

// importance: [layer][channel] >= 0; budget: average bits per weight; palette: the device's.
inline BudgetSolution solve_strategy(const QuantizationCache& cache, std::vector<std::vector<double>> importance,
                                     double budget, const Palette& palette) {
  BudgetProblem problem;
  problem.layers = cache.shapes();
  problem.importance = std::move(importance);
  problem.errors = cache.level_errors(palette);
  problem.budget_bits = budget;
  problem.palette = palette;
  return solve_budget(problem);
}

// The cloud service for one frozen backbone and its trained hypernetworks. Stateless per request, and
// const: one instance may serve concurrent requests.
class CloudPersonalizer {
 public:
  CloudPersonalizer(const Hypernetworks& nets, const QuantizationCache& cache, std::uint64_t fingerprint)
      : nets_(nets), cache_(cache), fingerprint_(fingerprint) {
    CHORD_CHECK(nets.layers().size() == cache.layer_count(), "CloudPersonalizer: hypernetworks for ",
                nets.layers().size(), " layers, quantization cache of ", cache.layer_count());
  }

  ProfileExpectation expectation() const { return {fingerprint_, nets_.config().profile_dim}; }

  // u: [profile_dim] -> c: [layer][channel]
  std::vector<std::vector<double>> importance(const std::vector<float>& u) const {
    CHORD_CHECK(u.size() == nets_.config().profile_dim, "CloudPersonalizer: profile of ", u.size(),
                " values, the hypernetworks take ", nets_.config().profile_dim);
    return channel_importance(nets_, cache_, u.data());
  }

  BudgetSolution strategy(const std::vector<float>& u, double budget, const Palette& palette) const {
    return solve_strategy(cache_, importance(u), budget, palette);
  }

  // The answer to a decoded profile: the levels for the device's budget and palette.
  StrategyPacket respond(const ProfileMessage& message) const {
    CHORD_CHECK(message.fingerprint == fingerprint_, "CloudPersonalizer: profile for model ",
                bytes::hex64(message.fingerprint), ", this cloud serves ", bytes::hex64(fingerprint_));
    StrategyPacket packet;
    packet.fingerprint = fingerprint_;
    packet.budget = message.budget;
    packet.palette = message.palette;
    packet.strategy = strategy(message.profile, message.budget, message.palette).strategy;
    return packet;
  }

  // Bytes in, bytes out: a profile message strictly decoded, a strategy packet encoded.
  std::vector<std::uint8_t> respond(const std::uint8_t* request, std::size_t size, const std::string& source) const {
    return encode_strategy(respond(decode_profile(request, size, expectation(), source)));
  }

 private:
  const Hypernetworks& nets_;
  const QuantizationCache& cache_;
  std::uint64_t fingerprint_;
};

// The cloud's view of what the device will run: the cached fake-quantized rows at the strategy's
// widths, [layer][channels * fan_in] (equal, bit for bit, to the device's FrozenChannelCodes::select
// dequantized: tested).
inline std::vector<std::vector<float>> strategy_weights(const QuantizationCache& cache, const Strategy& strategy,
                                                        const Palette& palette) {
  check_strategy_shape(strategy, cache.shapes());
  const auto bits = strategy_bits(strategy, palette);
  std::vector<std::vector<float>> out(cache.layer_count());
  for (std::size_t l = 0; l < cache.layer_count(); ++l) {
    const QuantizedLayer& layer = cache.layer(l);
    out[l].assign(layer.channels * layer.fan_in, 0.0f);
    for (std::size_t c = 0; c < layer.channels; ++c)
      if (const float* q = layer.row(bits[l][c], c))
        std::copy(q, q + layer.fan_in, out[l].begin() + std::ptrdiff_t(c * layer.fan_in));
  }
  return out;
}

}  // namespace chord::personalize
