// chord/data/metrics.hpp: HR@K and NDCG@K from the rank of the held-out item.
//
// rank (0 = best) = number of candidates scoring strictly higher than the target + number of
// candidates scoring exactly the same. Ties count against the model (pessimistic): a model that gives
// every item the same score gets rank = #candidates, not a lucky hit, so a collapsed or fully pruned
// model cannot look good. NaN scores are an error (they would make the rank meaningless); +-inf are fine.
//   HR@K   = 1 if rank < K, else 0
//   NDCG@K = 1 / log2(rank + 2) if rank < K, else 0   (one relevant item, so the ideal DCG is 1)
// Aggregates are means over users. The accumulator keeps a histogram of ranks below the largest K, so
// merging per-thread accumulators in any order gives bit-identical results.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/dataset.hpp"

namespace chord::data {

// Sampled protocol. positive: the target's score; negatives: [count] scores of the other candidates.
inline std::int64_t rank_among(float positive, const float* negatives, std::size_t count) {
  CHORD_CHECK(!std::isnan(positive), "rank_among: the target's score is NaN");
  std::int64_t rank = 0;
  for (std::size_t i = 0; i < count; ++i) {
    CHORD_CHECK(!std::isnan(negatives[i]), "rank_among: candidate ", i, " has a NaN score");
    rank += negatives[i] >= positive ? 1 : 0;
  }
  return rank;
}

inline std::int64_t rank_among(float positive, const std::vector<float>& negatives) {
  return rank_among(positive, negatives.data(), negatives.size());
}

// Full ranking. scores: [num_items + 1] indexed by item id (scores[0], the padding id, is ignored);
// excluded: [num_items + 1] or null, nonzero = not a candidate (candidates.hpp); target in 1..num_items.
inline std::int64_t rank_full(const float* scores, std::int32_t num_items, ItemId target,
                              const std::uint8_t* excluded) {
  CHORD_CHECK(target >= 1 && target <= num_items, "rank_full: target ", target, " is outside 1..", num_items);
  CHORD_CHECK(excluded == nullptr || excluded[target] == 0, "rank_full: the target ", target, " is excluded");
  const float positive = scores[target];
  CHORD_CHECK(!std::isnan(positive), "rank_full: the target's score (item ", target, ") is NaN");
  std::int64_t rank = 0;
  for (std::int32_t i = 1; i <= num_items; ++i) {
    CHORD_CHECK(!std::isnan(scores[i]), "rank_full: item ", i, " has a NaN score");
    if (i == target || (excluded != nullptr && excluded[i] != 0)) continue;
    rank += scores[i] >= positive ? 1 : 0;
  }
  return rank;
}

inline double hit_at(std::int64_t rank, int k) { return rank < k ? 1.0 : 0.0; }
inline double ndcg_at(std::int64_t rank, int k) { return rank < k ? 1.0 / std::log2(double(rank) + 2.0) : 0.0; }

struct RankingMetrics {
  std::int64_t users = 0;
  double hr_5 = 0, ndcg_5 = 0, hr_10 = 0, ndcg_10 = 0;
};

class RankingAccumulator {
 public:
  static constexpr int kMaxK = 10;

  void add(std::int64_t rank) {
    CHORD_CHECK(rank >= 0, "RankingAccumulator: negative rank ", rank);
    ++users_;
    if (rank < kMaxK) ++top_[std::size_t(rank)];
  }

  void merge(const RankingAccumulator& other) {
    users_ += other.users_;
    for (std::size_t r = 0; r < top_.size(); ++r) top_[r] += other.top_[r];
  }

  std::int64_t users() const { return users_; }

  // Mean HR@k over the added users (0 when none); k in 1..kMaxK.
  double hit_rate(int k) const { return mean(k, [](std::int64_t r, int kk) { return hit_at(r, kk); }); }
  double ndcg(int k) const { return mean(k, [](std::int64_t r, int kk) { return ndcg_at(r, kk); }); }

  RankingMetrics result() const { return {users_, hit_rate(5), ndcg(5), hit_rate(10), ndcg(10)}; }

 private:
  template <typename Gain>
  double mean(int k, Gain gain) const {
    CHORD_CHECK(k >= 1 && k <= kMaxK, "RankingAccumulator: K = ", k, " is not in 1..", kMaxK);
    if (users_ == 0) return 0.0;
    double sum = 0.0;
    for (int r = 0; r < k; ++r) sum += double(top_[std::size_t(r)]) * gain(r, k);
    return sum / double(users_);
  }

  std::int64_t users_ = 0;
  std::array<std::int64_t, kMaxK> top_{};  // top_[r] = users whose target had rank r
};

}  // namespace chord::data
