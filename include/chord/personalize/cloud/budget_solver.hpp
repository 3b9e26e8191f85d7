// chord/personalize/cloud/budget_solver.hpp: channel importances + a bits budget -> one 2-bit level per channel.
//
// The cloud's last step (docs/design.md#chord-solver). Given, for every personalized channel, an importance
// c >= 0 (how much this user's loss grows when the channel is quantized coarsely) and a target average
// bits per weight B, choose levels 0..3 (bits = palette[level]) that
//   minimize   sum_i c_i * r_i(level_i)     subject to   sum_i fan_in_i * bits_i <= B * sum_i fan_in_i
// where r_i(level) is the channel's relative quantization error at that level (default: the textbook
// 4^-b law of a b-bit uniform quantizer, r(0) = 1 for a pruned channel). Each upgrade of a channel by one
// level buys an error reduction c_i * (r(l) - r(l+1)) for fan_in_i * (palette[l+1] - palette[l]) bits.
// With convex error curves the greedy that always takes the best reduction per bit next is the
// Lagrangian (convex-hull) optimum, and it is what we run:
//   - a priority queue over channels keyed by the gain per bit of each channel's NEXT upgrade, so a
//     channel's upgrades always happen in order: O(C log C) for C channels;
//   - it stops at the first upgrade that no longer fits: the average bits then meet the budget to within
//     one channel's upgrade (at most 8 * max fan-in bits), from below;
//   - ties are broken by (layer, channel) index, so the result is deterministic across platforms;
//   - with equal error curves and fan-ins, a more important channel never gets a lower level (monotone).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"

namespace chord::personalize {

// Relative error of each level: errors[level], non-increasing in the level, errors[0] for the lowest.
using LevelErrors = std::array<double, kLevels>;

// The 4^-b law for a palette: the squared error of a b-bit quantizer shrinks 4x per extra bit; a
// pruned channel (b = 0) loses its whole energy (error 1).
inline LevelErrors default_level_errors(const Palette& palette) {
  LevelErrors e{};
  for (int l = 0; l < kLevels; ++l) e[l] = std::ldexp(1.0, -2 * palette[l]);
  return e;
}

struct BudgetProblem {
  std::vector<LayerShape> layers;                 // channels and fan-in of each personalized layer
  std::vector<std::vector<double>> importance;    // [layer][channel], >= 0
  std::vector<std::vector<LevelErrors>> errors;   // optional [layer][channel]; empty -> default law
  double budget_bits = 3.0;                       // target average bits per weight
  Palette palette = kStandardPalette;
};

struct BudgetSolution {
  Strategy strategy;
  double average_bits = 0.0;  // achieved, <= budget_bits (unless the lowest level alone exceeds it)
};

inline BudgetSolution solve_budget(const BudgetProblem& p) {
  check_palette(p.palette, "solve_budget");
  CHORD_CHECK(std::isfinite(p.budget_bits) && p.budget_bits >= 0.0 && p.budget_bits <= 8.0,
              "solve_budget: budget ", p.budget_bits, " bits is not in [0, 8]");
  CHORD_CHECK(p.importance.size() == p.layers.size(), "solve_budget: importance has ", p.importance.size(),
              " layers, the model has ", p.layers.size());
  CHORD_CHECK(p.errors.empty() || p.errors.size() == p.layers.size(), "solve_budget: errors has ",
              p.errors.size(), " layers, the model has ", p.layers.size());
  const LevelErrors default_errors = default_level_errors(p.palette);

  BudgetSolution out;
  out.strategy.levels.resize(p.layers.size());
  double total_weights = 0.0, used_bits = 0.0;
  for (std::size_t l = 0; l < p.layers.size(); ++l) {
    const LayerShape& layer = p.layers[l];
    CHORD_CHECK(p.importance[l].size() == layer.channels, "solve_budget: layer ", l, " (", layer.name,
                ") has ", p.importance[l].size(), " importances for ", layer.channels, " channels");
    CHORD_CHECK(p.errors.empty() || p.errors[l].size() == layer.channels, "solve_budget: layer ", l,
                " has ", p.errors[l].size(), " error curves for ", layer.channels, " channels");
    for (std::size_t c = 0; c < layer.channels; ++c)
      CHORD_CHECK(std::isfinite(p.importance[l][c]) && p.importance[l][c] >= 0.0, "solve_budget: layer ", l,
                  " (", layer.name, ") channel ", c, ": importance ", p.importance[l][c], " is not finite and >= 0");
    out.strategy.levels[l].assign(layer.channels, 0);
    total_weights += double(layer.channels) * layer.fan_in;
    used_bits += double(layer.channels) * layer.fan_in * p.palette[0];
  }
  const double budget_total = p.budget_bits * total_weights;

  struct Upgrade {
    double gain_per_bit;  // error reduction per bit of the channel's next upgrade
    std::uint32_t layer, channel;
    // Priority: larger gain first; on ties the smaller (layer, channel) first.
    bool operator<(const Upgrade& o) const {
      if (gain_per_bit != o.gain_per_bit) return gain_per_bit < o.gain_per_bit;
      if (layer != o.layer) return layer > o.layer;
      return channel > o.channel;
    }
  };
  const auto curve = [&](std::size_t l, std::size_t c) -> const LevelErrors& {
    return p.errors.empty() ? default_errors : p.errors[l][c];
  };
  // Gain per bit of moving (l, c) from `level` to level + 1; free upgrades (equal widths) come first.
  const auto next_upgrade = [&](std::size_t l, std::size_t c, int level) {
    const double bits = double(p.layers[l].fan_in) * (p.palette[level + 1] - p.palette[level]);
    const double gain = p.importance[l][c] * std::fmax(0.0, curve(l, c)[level] - curve(l, c)[level + 1]);
    const double per_bit = bits == 0.0 ? HUGE_VAL : gain / bits;
    return Upgrade{per_bit, static_cast<std::uint32_t>(l), static_cast<std::uint32_t>(c)};
  };

  std::priority_queue<Upgrade> queue;
  for (std::size_t l = 0; l < p.layers.size(); ++l)
    for (std::size_t c = 0; c < p.layers[l].channels; ++c) queue.push(next_upgrade(l, c, 0));
  while (!queue.empty()) {
    const Upgrade u = queue.top();
    std::uint8_t& level = out.strategy.levels[u.layer][u.channel];
    const double cost = double(p.layers[u.layer].fan_in) * (p.palette[level + 1] - p.palette[level]);
    if (used_bits + cost > budget_total * (1.0 + 1e-12)) break;  // the first upgrade that does not fit
    queue.pop();
    used_bits += cost;
    ++level;
    if (level + 1 < kLevels) queue.push(next_upgrade(u.layer, u.channel, level));
  }
  out.average_bits = total_weights == 0.0 ? 0.0 : used_bits / total_weights;
  return out;
}

}  // namespace chord::personalize
