// chord/data/candidates.hpp: what a model ranks at evaluation time, for both protocols of docs/design.md#evaluation.
//
// Sampled (SASRec protocol): the target plus `count` (100) distinct negatives, none of which the user
//   ever interacted with (train, valid or test), uniform over the rest of the catalogue. They are drawn
//   from Rng::stream(seed, phase, user): the same for a user whatever the thread or the order of users.
// Full ranking: every item 1..num_items is a candidate except the padding id 0 and the items of the
//   user's history for the phase (split.hpp). The target itself is never excluded, even when it also
//   occurs in the history (Yelp users review a business again): excluding it would make a correct
//   repeat prediction impossible.
#pragma once

#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/item_set.hpp"
#include "chord/data/rng.hpp"
#include "chord/data/split.hpp"

namespace chord::data {

inline constexpr std::int32_t kSampledNegatives = 100;

// `count` distinct negatives of an evaluated user, in increasing id order.
inline std::vector<ItemId> sampled_negatives(const LeaveOneOutSplit& split, std::int32_t user, Phase phase,
                                             std::uint64_t seed, std::int32_t count = kSampledNegatives) {
  CHORD_CHECK(user >= 0 && user < split.num_users, "sampled_negatives: user ", user, " is not in 0..",
              split.num_users - 1);
  CHORD_CHECK(split.evaluated(user), "sampled_negatives: user ", user, " has fewer than 3 events and no target");
  const ItemSet seen(split.all_items(user), split.num_items);
  Rng rng = Rng::stream(seed, phase == Phase::test ? 2 : 1, std::uint64_t(user));
  return sample_distinct_negatives(seen, count, rng, user);
}

// excluded: [num_items + 1], 1 for ids that are not candidates in full ranking (see above), else 0.
// Reuses the caller's buffer: full ranking runs once per user.
inline void full_ranking_exclusions(const LeaveOneOutSplit& split, std::int32_t user, Phase phase,
                                    std::vector<std::uint8_t>& excluded) {
  CHORD_CHECK(user >= 0 && user < split.num_users, "full_ranking_exclusions: user ", user, " is not in 0..",
              split.num_users - 1);
  excluded.assign(std::size_t(split.num_items) + 1, 0);
  excluded[0] = 1;
  for (ItemId item : split.train[std::size_t(user)]) excluded[std::size_t(item)] = 1;
  if (phase == Phase::test && split.evaluated(user)) excluded[std::size_t(split.valid[std::size_t(user)])] = 1;
  const ItemId target = split.target(user, phase);
  if (target != 0) excluded[std::size_t(target)] = 0;
}

inline std::vector<std::uint8_t> full_ranking_exclusions(const LeaveOneOutSplit& split, std::int32_t user,
                                                         Phase phase) {
  std::vector<std::uint8_t> excluded;
  full_ranking_exclusions(split, user, phase, excluded);
  return excluded;
}

}  // namespace chord::data
