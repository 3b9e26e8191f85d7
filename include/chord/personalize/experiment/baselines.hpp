// chord/personalize/experiment/baselines.hpp: the strategies CHORD is compared with, at the same average bits.
//
// docs/design.md#evaluation. Every mixed baseline goes through the SAME solver as CHORD (cloud/personalizer.hpp
// solve_strategy, per-channel error curves included), so at one budget they differ only in the
// importances they rank channels by:
//   population    the mean of the trained hypernetworks' importance over the training users: the best
//                 one strategy for everybody that CHORD's own nets can give ("user-agnostic");
//   q2_energy     ||W_c - Q_2(W_c)||^2: the classic data-free criterion (every weight equally sensitive);
//   random        seeded uniform importances: a mixed strategy with no information ("random mixed");
//   uniform       every channel at one width, when the budget is a width of the palette (no solver).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/importance.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"

namespace chord::personalize {

using Importances = std::vector<std::vector<double>>;  // [layer][channel]

// profiles: the training users' profile vectors, each [profile_dim].
inline Importances population_importance(const Hypernetworks& nets, const QuantizationCache& cache,
                                         const std::vector<std::vector<float>>& profiles) {
  CHORD_CHECK(!profiles.empty(), "population_importance: no profiles");
  Importances mean(cache.layer_count());
  for (std::size_t l = 0; l < cache.layer_count(); ++l) mean[l].assign(cache.layer(l).channels, 0.0);
  for (const std::vector<float>& u : profiles) {
    CHORD_CHECK(u.size() == nets.config().profile_dim, "population_importance: profile of ", u.size(),
                " values, the hypernetworks take ", nets.config().profile_dim);
    const Importances c = channel_importance(nets, cache, u.data());
    for (std::size_t l = 0; l < c.size(); ++l)
      for (std::size_t i = 0; i < c[l].size(); ++i) mean[l][i] += c[l][i] / double(profiles.size());
  }
  return mean;
}

inline Importances q2_energy_importance(const QuantizationCache& cache) {
  Importances c(cache.layer_count());
  for (std::size_t l = 0; l < cache.layer_count(); ++l)
    for (const auto& errors : cache.layer(l).error2) c[l].push_back(errors[width_index(2)]);
  return c;
}

inline Importances random_importance(const QuantizationCache& cache, std::uint64_t seed) {
  nn::Rng rng(seed, 0x72616e646f6dull);  // "random"
  Importances c(cache.layer_count());
  for (std::size_t l = 0; l < cache.layer_count(); ++l)
    for (std::size_t i = 0; i < cache.layer(l).channels; ++i) c[l].push_back(double(rng.uniform()));
  return c;
}

// Every channel at the highest level whose width equals the budget; the budget must be a width of the
// palette (uniform 2/4/8-bit PTQ in the standard palette).
inline Strategy uniform_strategy(const std::vector<LayerShape>& layers, double budget, const Palette& palette) {
  check_palette(palette, "uniform_strategy");
  int level = -1;
  for (int k = 0; k < kLevels; ++k)
    if (double(palette[k]) == budget) level = k;
  CHORD_CHECK(level >= 0, "uniform_strategy: budget ", budget, " bits is not a width of the palette {",
              int(palette[0]), ", ", int(palette[1]), ", ", int(palette[2]), ", ", int(palette[3]), "}");
  Strategy s;
  for (const LayerShape& l : layers) s.levels.emplace_back(l.channels, std::uint8_t(level));
  return s;
}

}  // namespace chord::personalize
