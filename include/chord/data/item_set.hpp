// chord/data/item_set.hpp: a user's items as a sorted set, and uniform sampling of items outside it.
//
// Why not rejection sampling: a heavy user of a small catalogue (an ml-1m user has rated 2,277 of
// 3,416 movies) makes "draw until not seen" slow and its running time seed-dependent. Instead the
// k-th id of 1..num_items missing from the set is found by binary search over the sorted set, so one
// draw `below(missing_count)` gives an exact uniform negative in O(log n), with no loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/dataset.hpp"
#include "chord/data/rng.hpp"

namespace chord::data {

class ItemSet {
 public:
  ItemSet() = default;

  // items: any order, repeats allowed, each in 1..num_items.
  ItemSet(std::vector<ItemId> items, std::int32_t num_items) : items_(std::move(items)), num_items_(num_items) {
    std::sort(items_.begin(), items_.end());
    items_.erase(std::unique(items_.begin(), items_.end()), items_.end());
    CHORD_CHECK(items_.empty() || (items_.front() >= 1 && items_.back() <= num_items), "ItemSet: item ",
                items_.empty() ? 0 : (items_.front() < 1 ? items_.front() : items_.back()), " is outside 1..",
                num_items);
  }

  bool contains(ItemId item) const { return std::binary_search(items_.begin(), items_.end(), item); }
  std::size_t size() const { return items_.size(); }
  std::int32_t num_items() const { return num_items_; }
  const std::vector<ItemId>& items() const { return items_; }

  // How many ids of 1..num_items are not in the set.
  std::int64_t missing_count() const { return std::int64_t(num_items_) - std::int64_t(items_.size()); }

  // The k-th (0-based, increasing order) id of 1..num_items that is not in the set; k < missing_count().
  // Below items_[j] there are items_[j] - 1 - j missing ids, a non-decreasing function of j: the answer
  // is k + 1 + (number of set items below it) = k + 1 + first j whose missing count exceeds k.
  ItemId nth_missing(std::int64_t k) const {
    CHORD_CHECK(k >= 0 && k < missing_count(), "ItemSet::nth_missing: ", k, " is not below ", missing_count());
    std::size_t lo = 0, hi = items_.size();
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (std::int64_t(items_[mid]) - 1 - std::int64_t(mid) > k)
        hi = mid;
      else
        lo = mid + 1;
    }
    return static_cast<ItemId>(k + 1 + std::int64_t(lo));
  }

 private:
  std::vector<ItemId> items_;  // sorted, unique
  std::int32_t num_items_ = 0;
};

// One uniform item of 1..num_items outside `exclude`. `who` names the user in the error.
inline ItemId sample_negative(const ItemSet& exclude, Rng& rng, std::int32_t who = -1) {
  const std::int64_t missing = exclude.missing_count();
  CHORD_CHECK(missing > 0, "sample_negative: user ", who, " has interacted with all ", exclude.num_items(),
              " items, no negative is left");
  return exclude.nth_missing(rng.below(static_cast<std::uint32_t>(missing)));
}

// `count` distinct uniform items outside `exclude`, in increasing order (Floyd's subset sampling over
// the ranks of the missing ids: `count` draws, whatever the catalogue size).
inline std::vector<ItemId> sample_distinct_negatives(const ItemSet& exclude, std::int32_t count, Rng& rng,
                                                     std::int32_t who = -1) {
  const std::int64_t missing = exclude.missing_count();
  CHORD_CHECK(count >= 0 && count <= missing, "sample_distinct_negatives: user ", who, " has only ", missing,
              " items outside their history, ", count, " distinct negatives were asked for");
  std::vector<std::int64_t> ranks;
  ranks.reserve(std::size_t(count));
  for (std::int64_t j = missing - count; j < missing; ++j) {
    const std::int64_t t = rng.below(static_cast<std::uint32_t>(j + 1));
    ranks.push_back(std::find(ranks.begin(), ranks.end(), t) == ranks.end() ? t : j);
  }
  std::sort(ranks.begin(), ranks.end());
  std::vector<ItemId> items(ranks.size());
  for (std::size_t i = 0; i < ranks.size(); ++i) items[i] = exclude.nth_missing(ranks[i]);
  return items;
}

}  // namespace chord::data
