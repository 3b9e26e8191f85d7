// chord/models/evaluate.hpp: HR@5/10 and NDCG@5/10 of a model, sampled and full-ranking (DESIGN section 8).
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
    std::vector<float> state(engine.state_size()), scores, all(std::size_t(engine.num_items()) + 1);
    std::vector<std::int32_t> candidates;
    std::vector<std::uint8_t> excluded;
    for (std::size_t i = w; i < users.size(); i += workers) {
      const std::int32_t u = users[i];
      const std::vector<data::ItemId> history = split.history(u, options.phase);
      const data::ItemId target = split.target(u, options.phase);
      engine.encode(u, history.data(), history.size(), scratch, state.data());
      if (sampled) {
        candidates = data::sampled_negatives(split, u, options.phase, options.seed);
        candidates.insert(candidates.begin(), target);
        scores.resize(candidates.size());
        engine.score(state.data(), candidates.data(), candidates.size(), scores.data(), scratch);
        acc_sampled[w].add(data::rank_among(scores[0], scores.data() + 1, scores.size() - 1));
      }
      if (full) {
        engine.score_all(state.data(), all.data(), scratch);
        data::full_ranking_exclusions(split, u, options.phase, excluded);
        acc_full[w].add(data::rank_full(all.data(), split.num_items, target, excluded.data()));
      }
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
