// chord/data/sampler.hpp: training examples for SASRec and Caser, seeded and thread-independent.
//
// Every random choice of one example comes from Rng::stream(seed, epoch, example), so a batch is the
// same whichever thread fills it and whatever else is in the batch; an epoch's order is a seeded
// shuffle. The fill functions are const and keep no state: threads may fill rows of one batch in
// parallel. Negatives are drawn uniformly from the items the user has NOT in their training items
// (training sees no valid/test item, so excluding those would leak them).
//
// SASRec (one row per user, length L = max_len, right-aligned, oldest left):
//   train t = [t0 .. t(n-1)]  ->  inputs    = t0 .. t(n-2)  left-padded with 0
//                                 positives = t1 .. t(n-1)  (the next item at each position)
//                                 negatives = one per non-padded position
//   Only the last L pairs are kept. Users with n < 2 have no pair and are not "trainable".
// Caser (one row per window, L inputs, T targets, N negatives per target; paper: L = 5, T = 3, N = 3):
//   a window for every split point e = 1 .. n-1 of a user's training items:
//     inputs  = t(e-L) .. t(e-1)   left-padded with 0 when e < L
//     targets = t(e) .. t(e+T-1)   right-padded with 0 when e + T > n (target 0 = no target: skip it
//                                  in the loss; its negatives are 0 too)
//   Why not only Caser's full windows (L + T real items): Beauty users have 5 events, 3 for training,
//   and would give no window at all; padded windows keep every user and every next-item pair.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/item_set.hpp"
#include "chord/data/rng.hpp"
#include "chord/data/split.hpp"

namespace chord::data {

// out: [len] = the last min(len, n) items of seq, right-aligned, 0 before them.
inline void left_pad_last(const std::vector<ItemId>& seq, std::int32_t len, ItemId* out) {
  const std::size_t keep = std::min(seq.size(), std::size_t(len));
  const std::size_t pad = std::size_t(len) - keep;
  std::fill(out, out + pad, 0);
  std::copy(seq.end() - std::ptrdiff_t(keep), seq.end(), out + pad);
}

namespace detail {
inline std::vector<ItemSet> train_sets(const LeaveOneOutSplit& split) {
  CHORD_CHECK(split.train.size() == std::size_t(split.num_users), "sampler: split has ", split.train.size(),
              " training sequences for ", split.num_users, " users");
  std::vector<ItemSet> sets;
  sets.reserve(split.train.size());
  for (const auto& t : split.train) sets.emplace_back(t, split.num_items);
  return sets;
}
}  // namespace detail

struct SasrecBatch {
  std::int32_t rows = 0, max_len = 0;
  std::vector<std::int32_t> users;  // [rows] user index
  std::vector<ItemId> inputs;       // [rows, max_len]
  std::vector<ItemId> positives;    // [rows, max_len], 0 at padded positions
  std::vector<ItemId> negatives;    // [rows, max_len], 0 at padded positions
};

// Keeps a pointer to `split`: the split must outlive the sampler.
class SasrecSampler {
 public:
  SasrecSampler(const LeaveOneOutSplit& split, std::int32_t max_len, std::uint64_t seed)
      : split_(&split), sets_(detail::train_sets(split)), max_len_(max_len), seed_(seed) {
    CHORD_CHECK(max_len >= 1, "SasrecSampler: max_len ", max_len, " must be at least 1");
    for (std::int32_t u = 0; u < split.num_users; ++u)
      if (split.train[std::size_t(u)].size() >= 2) trainable_.push_back(u);
  }

  std::int32_t max_len() const { return max_len_; }
  const std::vector<std::int32_t>& trainable_users() const { return trainable_; }

  // The trainable users in the seeded order of one epoch.
  std::vector<std::int32_t> epoch_order(std::uint64_t epoch) const {
    std::vector<std::int32_t> order = trainable_;
    Rng rng = Rng::stream(seed_, 0x5A5E0000u, epoch);
    data::shuffle(order, rng);
    return order;
  }

  // One row: inputs, positives, negatives each [max_len].
  void fill_row(std::int32_t user, std::uint64_t epoch, ItemId* inputs, ItemId* positives, ItemId* negatives) const {
    CHORD_CHECK(user >= 0 && user < split_->num_users, "SasrecSampler: user ", user, " is not in 0..",
                split_->num_users - 1);
    const auto& t = split_->train[std::size_t(user)];
    const std::size_t n = t.size();
    const std::size_t pairs = n < 2 ? 0 : std::min(n - 1, std::size_t(max_len_));
    const std::size_t pad = std::size_t(max_len_) - pairs;
    std::fill(inputs, inputs + pad, 0);
    std::fill(positives, positives + pad, 0);
    std::fill(negatives, negatives + pad, 0);
    Rng rng = Rng::stream(seed_, epoch, std::uint64_t(user));
    for (std::size_t p = 0; p < pairs; ++p) {
      const std::size_t next = n - pairs + p;  // index in t of the positive at position pad + p
      inputs[pad + p] = t[next - 1];
      positives[pad + p] = t[next];
      negatives[pad + p] = sample_negative(sets_[std::size_t(user)], rng, user);
    }
  }

  void fill(const std::vector<std::int32_t>& users, std::uint64_t epoch, SasrecBatch& batch) const {
    const std::size_t cells = users.size() * std::size_t(max_len_);
    batch.rows = static_cast<std::int32_t>(users.size());
    batch.max_len = max_len_;
    batch.users = users;
    batch.inputs.resize(cells);
    batch.positives.resize(cells);
    batch.negatives.resize(cells);
    for (std::size_t r = 0; r < users.size(); ++r) {
      const std::size_t at = r * std::size_t(max_len_);
      fill_row(users[r], epoch, &batch.inputs[at], &batch.positives[at], &batch.negatives[at]);
    }
  }

 private:
  const LeaveOneOutSplit* split_;
  std::vector<ItemSet> sets_;  // [num_users] training items of each user
  std::vector<std::int32_t> trainable_;
  std::int32_t max_len_;
  std::uint64_t seed_;
};

struct CaserOptions {
  std::int32_t inputs = 5;                // L: previous items the convolution sees
  std::int32_t targets = 3;               // T: next items predicted together
  std::int32_t negatives_per_target = 3;  // N
};

struct CaserBatch {
  std::int32_t rows = 0;
  CaserOptions shape;
  std::vector<std::int32_t> users;  // [rows] user index (Caser's user embedding)
  std::vector<ItemId> inputs;       // [rows, L]
  std::vector<ItemId> targets;      // [rows, T], 0 = no target
  std::vector<ItemId> negatives;    // [rows, T, N], 0 where the target is 0
};

// Keeps a pointer to `split`: the split must outlive the sampler.
class CaserSampler {
 public:
  struct Window {
    std::int32_t user;
    std::int32_t split_point;  // index e in the user's training items of the first target
  };

  CaserSampler(const LeaveOneOutSplit& split, const CaserOptions& options, std::uint64_t seed)
      : split_(&split), sets_(detail::train_sets(split)), options_(options), seed_(seed) {
    CHORD_CHECK(options.inputs >= 1 && options.targets >= 1 && options.negatives_per_target >= 0,
                "CaserSampler: need L >= 1, T >= 1, N >= 0 (got L = ", options.inputs, ", T = ", options.targets,
                ", N = ", options.negatives_per_target, ")");
    first_window_.assign(std::size_t(split.num_users) + 1, 0);
    for (std::size_t u = 0; u < std::size_t(split.num_users); ++u) {
      const std::size_t n = split.train[u].size();
      first_window_[u + 1] = first_window_[u] + (n >= 2 ? n - 1 : 0);
    }
  }

  const CaserOptions& options() const { return options_; }
  std::size_t num_windows() const { return first_window_.back(); }

  Window window(std::size_t index) const {
    CHORD_CHECK(index < num_windows(), "CaserSampler: window ", index, " of ", num_windows());
    const auto after = std::upper_bound(first_window_.begin(), first_window_.end(), index);
    const std::size_t user = std::size_t(after - first_window_.begin()) - 1;
    return {static_cast<std::int32_t>(user), static_cast<std::int32_t>(index - first_window_[user] + 1)};
  }

  // All window indices in the seeded order of one epoch.
  std::vector<std::size_t> epoch_order(std::uint64_t epoch) const {
    std::vector<std::size_t> order(num_windows());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    Rng rng = Rng::stream(seed_, 0xCA5E0000u, epoch);
    data::shuffle(order, rng);
    return order;
  }

  // inputs: [L], targets: [T], negatives: [T, N].
  void fill_row(std::size_t index, std::uint64_t epoch, std::int32_t& user, ItemId* inputs, ItemId* targets,
                ItemId* negatives) const {
    const Window w = window(index);
    user = w.user;
    const auto& t = split_->train[std::size_t(w.user)];
    const auto e = std::size_t(w.split_point);
    const auto L = std::size_t(options_.inputs), T = std::size_t(options_.targets);
    const auto N = std::size_t(options_.negatives_per_target);
    for (std::size_t i = 0; i < L; ++i) inputs[i] = e + i >= L ? t[e + i - L] : 0;  // t[e - L + i]
    Rng rng = Rng::stream(seed_, epoch, index);
    for (std::size_t j = 0; j < T; ++j) {
      const bool real = e + j < t.size();
      targets[j] = real ? t[e + j] : 0;
      for (std::size_t k = 0; k < N; ++k)
        negatives[j * N + k] = real ? sample_negative(sets_[std::size_t(w.user)], rng, w.user) : 0;
    }
  }

  void fill(const std::vector<std::size_t>& windows, std::uint64_t epoch, CaserBatch& batch) const {
    const auto L = std::size_t(options_.inputs), T = std::size_t(options_.targets);
    const auto N = std::size_t(options_.negatives_per_target);
    batch.rows = static_cast<std::int32_t>(windows.size());
    batch.shape = options_;
    batch.users.resize(windows.size());
    batch.inputs.resize(windows.size() * L);
    batch.targets.resize(windows.size() * T);
    batch.negatives.resize(windows.size() * T * N);
    for (std::size_t r = 0; r < windows.size(); ++r)
      fill_row(windows[r], epoch, batch.users[r], batch.inputs.data() + r * L, batch.targets.data() + r * T,
               batch.negatives.data() + r * T * N);
  }

 private:
  const LeaveOneOutSplit* split_;
  std::vector<ItemSet> sets_;
  CaserOptions options_;
  std::uint64_t seed_;
  std::vector<std::size_t> first_window_;  // [num_users + 1] prefix sums of windows per user
};

}  // namespace chord::data
