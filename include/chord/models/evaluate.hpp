// chord/models/evaluate.hpp: HR@5/10 and NDCG@5/10 of a model, sampled and full-ranking (docs/design.md#evaluation).
//
// Works with any inference graph ("engine") that offers
//   Scratch make_scratch() const;                 std::size_t state_size() const;
//   std::int32_t num_items() const;
//   void encode(user, const int32_t* history, size_t len, Scratch&, float* state) const;
//   void score(const float* state, const int32_t* items, size_t m, float* out, Scratch&) const;
//   void score_all(const float* state, float* out /* [num_items + 1] */, Scratch&) const;
// (SasrecInference and CaserInference do.) Each evaluated user is encoded once; its state is then
// scored for both protocols:
//   sampled: the target and 100 distinct negatives the user never interacted with, seeded per
//            (seed, phase, user) (data/candidates.hpp);
//   full:    every item but the padding id and the phase's history (the target stays a candidate).
// Ties count against the model (data/metrics.hpp). Users are split statically over the threads and
// the per-thread accumulators merge exactly, so the result does not depend on the thread count.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/candidates.hpp"
#include "chord/data/metrics.hpp"
#include "chord/data/split.hpp"
#include "chord/nn/batch_parallel.hpp"

namespace chord::models {

enum class Protocol { sampled, full, both };

struct EvalOptions {
  data::Phase phase = data::Phase::validation;
  Protocol protocol = Protocol::sampled;
  std::uint64_t seed = 42;        // sampled negatives
  std::size_t threads = 1;
  bool sequential_workers = false;  // run the thread shares one after the other (same result)
  std::size_t max_users = 0;      // evaluate only the first max_users evaluated users (0 = all)
};

struct EvalResult {
  data::RankingMetrics sampled, full;  // users = 0 for a protocol that was not run
  double seconds = 0.0;
};

// What rank_user needs besides the engine's scratch (reused across users).
struct RankBuffers {
  std::vector<float> state, scores, all;
  std::vector<std::int32_t> candidates;
  std::vector<std::uint8_t> excluded;
};

// One evaluated user's ranks (0 = best) under the two protocols; -1 for a protocol not run.
struct UserRanks {
  std::int64_t sampled = -1, full = -1;
};

// The per-user step of evaluate(): encode user u's history once, rank its target under the requested
// protocols. Public so that callers ranking one user at a time (personalize/experiment/evaluator.hpp) share it.
template <typename Engine>
UserRanks rank_user(const Engine& engine, const data::LeaveOneOutSplit& split, std::int32_t u, data::Phase phase,
                    std::uint64_t seed, bool sampled, bool full, typename Engine::Scratch& scratch, RankBuffers& b) {
  UserRanks ranks;
  const std::vector<data::ItemId> history = split.history(u, phase);
  const data::ItemId target = split.target(u, phase);
  CHORD_CHECK(target != 0, "evaluate: user ", u, " has no target (fewer than 3 events)");
  b.state.resize(engine.state_size());
  engine.encode(u, history.data(), history.size(), scratch, b.state.data());
  if (sampled) {
    b.candidates = data::sampled_negatives(split, u, phase, seed);
    b.candidates.insert(b.candidates.begin(), target);
    b.scores.resize(b.candidates.size());
    engine.score(b.state.data(), b.candidates.data(), b.candidates.size(), b.scores.data(), scratch);
    ranks.sampled = data::rank_among(b.scores[0], b.scores.data() + 1, b.scores.size() - 1);
  }
  if (full) {
    b.all.resize(std::size_t(engine.num_items()) + 1);
    engine.score_all(b.state.data(), b.all.data(), scratch);
    data::full_ranking_exclusions(split, u, phase, b.excluded);
    ranks.full = data::rank_full(b.all.data(), split.num_items, target, b.excluded.data());
  }
  return ranks;
}

template <typename Engine>
EvalResult evaluate(const Engine& engine, const data::LeaveOneOutSplit& split, const EvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  CHORD_CHECK(split.num_items <= engine.num_items(), "evaluate: the data has items up to ", split.num_items,
              ", the model knows only 1..", engine.num_items(), " (a model trained on other data?)");
  std::vector<std::int32_t> users = split.evaluated_users();
  if (options.max_users > 0 && users.size() > options.max_users) users.resize(options.max_users);
  const bool sampled = options.protocol != Protocol::full, full = options.protocol != Protocol::sampled;
  const std::size_t workers = options.threads == 0 ? 1 : options.threads;
  std::vector<data::RankingAccumulator> acc_sampled(workers), acc_full(workers);
  auto work = [&](std::size_t w) {
    auto scratch = engine.make_scratch();
    RankBuffers buffers;
    for (std::size_t i = w; i < users.size(); i += workers) {
      const UserRanks ranks = rank_user(engine, split, users[i], options.phase, options.seed, sampled, full, scratch, buffers);
      if (sampled) acc_sampled[w].add(ranks.sampled);
      if (full) acc_full[w].add(ranks.full);
    }
  };
  if (options.sequential_workers)
    for (std::size_t w = 0; w < workers; ++w) work(w);
  else
    nn::run_workers(workers, work);
  for (std::size_t w = 1; w < workers; ++w) acc_sampled[0].merge(acc_sampled[w]), acc_full[0].merge(acc_full[w]);
  EvalResult result;
  if (sampled) result.sampled = acc_sampled[0].result();
  if (full) result.full = acc_full[0].result();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace chord::models
