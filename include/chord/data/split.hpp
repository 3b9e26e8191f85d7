// chord/data/split.hpp: the leave-one-out split of SASRec, S3-Rec and ICLRec.
//
// Per user with n >= 3 events: the last item is the test target, the one before it the validation
// target, the first n - 2 are training. Users with fewer than 3 events keep all of them in training
// and are not evaluated (valid = test = 0, the padding id, which is never a real item).
// What a model may look at before predicting a target (its history):
//   validation: train;   test: train + valid   (the test target is never seen before the test).
#pragma once

#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/dataset.hpp"

namespace chord::data {

enum class Phase { validation, test };

struct LeaveOneOutSplit {
  std::int32_t num_users = 0;
  std::int32_t num_items = 0;
  std::vector<std::vector<ItemId>> train;  // [num_users][n - 2] (or all n events when n < 3)
  std::vector<ItemId> valid;               // [num_users], 0 when the user is not evaluated
  std::vector<ItemId> test;                // [num_users], 0 when the user is not evaluated

  bool evaluated(std::int32_t user) const { return test.at(std::size_t(user)) != 0; }

  // The held-out item of a phase (0 when the user is not evaluated).
  ItemId target(std::int32_t user, Phase phase) const {
    return phase == Phase::test ? test.at(std::size_t(user)) : valid.at(std::size_t(user));
  }

  // The items before the target, oldest first: train (validation) or train + valid (test).
  std::vector<ItemId> history(std::int32_t user, Phase phase) const {
    std::vector<ItemId> h = train.at(std::size_t(user));
    if (phase == Phase::test && evaluated(user)) h.push_back(valid[std::size_t(user)]);
    return h;
  }

  // Every item of the user: train, valid and test (what sampled negatives must avoid).
  std::vector<ItemId> all_items(std::int32_t user) const {
    std::vector<ItemId> h = train.at(std::size_t(user));
    if (evaluated(user)) {
      h.push_back(valid[std::size_t(user)]);
      h.push_back(test[std::size_t(user)]);
    }
    return h;
  }

  // Users with a test target, in increasing index order.
  std::vector<std::int32_t> evaluated_users() const {
    std::vector<std::int32_t> users;
    for (std::int32_t u = 0; u < num_users; ++u)
      if (test[std::size_t(u)] != 0) users.push_back(u);
    return users;
  }
};

inline LeaveOneOutSplit leave_one_out(const Dataset& d) {
  check_dataset(d);
  LeaveOneOutSplit s;
  s.num_users = d.num_users;
  s.num_items = d.num_items;
  s.train.resize(std::size_t(d.num_users));
  s.valid.assign(std::size_t(d.num_users), 0);
  s.test.assign(std::size_t(d.num_users), 0);
  for (std::size_t u = 0; u < d.sequences.size(); ++u) {
    const auto& seq = d.sequences[u];
    if (seq.size() < 3) {
      s.train[u] = seq;
      continue;
    }
    s.train[u].assign(seq.begin(), seq.end() - 2);
    s.valid[u] = seq[seq.size() - 2];
    s.test[u] = seq.back();
  }
  return s;
}

}  // namespace chord::data
