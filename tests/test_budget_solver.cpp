// Budget solver: the budget is met to within one channel, more important channels never get fewer bits,
// results are deterministic and nested in the budget, and bad problems are refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "chord/personalize/cloud/budget_solver.hpp"

using namespace chord;
using namespace chord::personalize;

namespace {
BudgetProblem random_problem(std::uint32_t seed, double budget) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> channels(1, 70), fan_in(1, 200), layers(1, 6);
  std::lognormal_distribution<double> importance(0.0, 2.0);
  BudgetProblem p;
  p.budget_bits = budget;
  const int count = layers(rng);
  for (int l = 0; l < count; ++l) {
    p.layers.push_back({"layer" + std::to_string(l), std::uint32_t(channels(rng)), std::uint32_t(fan_in(rng))});
    std::vector<double> c(p.layers.back().channels);
    for (double& v : c) v = importance(rng);
    p.importance.push_back(c);
  }
  return p;
}

double largest_step_bits(const BudgetProblem& p) {
  double step = 0.0, total = 0.0;
  for (const auto& l : p.layers) {
    for (int lv = 0; lv + 1 < kLevels; ++lv)
      step = std::max(step, double(l.fan_in) * (p.palette[lv + 1] - p.palette[lv]));
    total += double(l.fan_in) * l.channels;
  }
  return step / total;
}
}  // namespace

TEST_CASE("budget solver meets the budget to within one channel, from below", "[personalize][solver]") {
  for (std::uint32_t seed = 0; seed < 60; ++seed)
    for (double budget : {0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.5, 8.0}) {
      const BudgetProblem p = random_problem(seed, budget);
      const BudgetSolution s = solve_budget(p);
      INFO("seed " << seed << " budget " << budget << " achieved " << s.average_bits);
      REQUIRE(s.average_bits == Approx(average_bits(s.strategy, p.layers, p.palette)).epsilon(1e-12));
      REQUIRE(s.average_bits <= budget + 1e-9);
      REQUIRE(budget - s.average_bits <= largest_step_bits(p) + 1e-9);
    }
}

TEST_CASE("budget solver is monotone in importance", "[personalize][solver]") {
  for (std::uint32_t seed = 0; seed < 40; ++seed)
    for (double budget : {1.5, 3.0, 4.0, 6.0}) {
      BudgetProblem p = random_problem(seed, budget);
      for (auto& layer : p.layers) layer.fan_in = 64;  // equal costs: importance alone decides
      const BudgetSolution s = solve_budget(p);
      for (std::size_t l1 = 0; l1 < p.layers.size(); ++l1)
        for (std::size_t l2 = 0; l2 < p.layers.size(); ++l2)
          for (std::size_t a = 0; a < p.layers[l1].channels; ++a)
            for (std::size_t b = 0; b < p.layers[l2].channels; ++b)
              if (p.importance[l1][a] > p.importance[l2][b])
                REQUIRE(s.strategy.levels[l1][a] >= s.strategy.levels[l2][b]);
    }
}

TEST_CASE("budget solver is deterministic and nested in the budget", "[personalize][solver]") {
  for (std::uint32_t seed = 0; seed < 30; ++seed) {
    std::vector<std::vector<std::uint8_t>> previous;
    for (double budget : {0.5, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0}) {
      const BudgetProblem p = random_problem(seed, budget);
      const BudgetSolution s = solve_budget(p);
      REQUIRE(solve_budget(p).strategy.levels == s.strategy.levels);
      if (!previous.empty())  // a bigger budget only adds upgrades
        for (std::size_t l = 0; l < previous.size(); ++l)
          for (std::size_t c = 0; c < previous[l].size(); ++c) REQUIRE(s.strategy.levels[l][c] >= previous[l][c]);
      previous = s.strategy.levels;
    }
  }
  // Ties (all importances equal) are broken by index: the earliest channels are upgraded first.
  BudgetProblem tie;
  tie.layers = {{"a", 10, 16}};
  tie.importance = {std::vector<double>(10, 1.0)};
  tie.budget_bits = 2.4;  // 8 bits of budget above 2 bits per channel: 2 channels 2 -> 4
  const BudgetSolution s = solve_budget(tie);
  REQUIRE(s.strategy.levels[0] == std::vector<std::uint8_t>{2, 2, 1, 1, 1, 1, 1, 1, 1, 1});
}

TEST_CASE("budget solver follows the error curves and the palette", "[personalize][solver]") {
  BudgetProblem p;
  p.layers = {{"x", 2, 10}};
  p.importance = {{1.0, 1.0}};
  // Channel 1 is already exact at 2 bits (e.g. a ternary channel): upgrading it buys nothing.
  p.errors = {{LevelErrors{1.0, 0.1, 0.01, 0.001}, LevelErrors{1.0, 0.0, 0.0, 0.0}}};
  p.budget_bits = 5.0;
  BudgetSolution s = solve_budget(p);
  REQUIRE(s.strategy.levels[0][0] == 3);
  REQUIRE(s.strategy.levels[0][1] == 1);
  // A palette without pruning ({2, 2, 4, 8}): level 0 -> 1 is free, so no channel stays at level 0.
  BudgetProblem q = random_problem(5, 2.0);
  q.palette = {2, 2, 4, 8};
  s = solve_budget(q);
  for (const auto& layer : s.strategy.levels)
    for (auto level : layer) REQUIRE(level >= 1);
  REQUIRE(s.average_bits == Approx(2.0));
}

TEST_CASE("budget solver refuses malformed problems", "[personalize][solver]") {
  BudgetProblem p = random_problem(1, 3.0);
  BudgetProblem bad = p;
  bad.importance[0][0] = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(solve_budget(bad), Catch::Contains("channel 0: importance"));
  bad = p;
  bad.importance[0][0] = -1.0;
  REQUIRE_THROWS_AS(solve_budget(bad), chord::Error);
  bad = p;
  bad.importance[0].pop_back();
  REQUIRE_THROWS_WITH(solve_budget(bad), Catch::Contains("importances for"));
  bad = p;
  bad.budget_bits = 9.0;
  REQUIRE_THROWS_WITH(solve_budget(bad), Catch::Contains("not in [0, 8]"));
  bad = p;
  bad.palette = {4, 2, 4, 8};
  REQUIRE_THROWS_AS(solve_budget(bad), chord::Error);
}
