// chord/data/dataset.hpp: a sequential-recommendation dataset: one time-ordered item sequence per user.
//
// Id conventions (every reader, the split, the samplers and the models share them):
//  - items are renumbered densely too: item index i = 1..num_items in increasing order of the file's
//    item id, which `item_ids[i - 1]` keeps. Tables are thus sized by the number of distinct items, not
//    by the largest id (one item id of 30,000,000 in a 2 KB file asked for 2.8 GB); in the standard files
//    every id 1..N occurs, so the numbering is the file's. An empty `item_ids` means the identity
//    (generated data). Item 0 is never a real item: it is the padding id that SASRec and Caser put in
//    front of short sequences (its embedding row stays zero).
//  - users are renumbered densely: user index u = 0..num_users-1 is the position in `sequences`, in
//    increasing order of the file's user id, which `user_ids[u]` keeps (for messages and for mapping
//    results back). In the standard files ids are 1..N, so user_ids[u] == u + 1. Renumbering rather
//    than refusing gaps lets a filtered file (users dropped) load without a rewrite.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "chord/core/error.hpp"

namespace chord::data {

using ItemId = std::int32_t;

// Largest id a reader accepts: num_items + 1 embedding rows (padding included) must still fit int32.
inline constexpr std::int32_t kMaxId = std::numeric_limits<std::int32_t>::max() - 1;

struct Dataset {
  std::string name;                            // where it came from: file name or "synthetic(...)"
  std::int32_t num_users = 0;                  // == sequences.size()
  std::int32_t num_items = 0;                  // distinct items; valid item indices are 1..num_items
  std::vector<std::vector<ItemId>> sequences;  // [num_users][length], oldest first
  std::vector<std::int32_t> user_ids;          // [num_users], the file's id of each user
  std::vector<std::int32_t> item_ids;          // [num_items] (or empty: identity), the file's id of item i + 1
};

// The file's id of item index `item` (1..num_items).
inline std::int32_t raw_item_id(const Dataset& d, ItemId item) {
  return d.item_ids.empty() ? item : d.item_ids.at(std::size_t(item) - 1);
}

// Throws unless the dataset keeps the conventions above (sizes agree, items in 1..num_items).
inline void check_dataset(const Dataset& d) {
  CHORD_CHECK(d.num_users >= 0 && d.num_items >= 0, d.name, ": negative user or item count");
  CHORD_CHECK(d.sequences.size() == std::size_t(d.num_users), d.name, ": ", d.sequences.size(),
              " sequences for ", d.num_users, " users");
  CHORD_CHECK(d.user_ids.size() == std::size_t(d.num_users), d.name, ": ", d.user_ids.size(),
              " user ids for ", d.num_users, " users");
  CHORD_CHECK(d.item_ids.empty() || d.item_ids.size() == std::size_t(d.num_items), d.name, ": ", d.item_ids.size(),
              " item ids for ", d.num_items, " items");
  for (std::size_t i = 1; i < d.item_ids.size(); ++i)
    CHORD_CHECK(d.item_ids[i - 1] < d.item_ids[i], d.name, ": item ids not strictly increasing at index ", i + 1);
  for (std::size_t u = 0; u < d.sequences.size(); ++u)
    for (std::size_t t = 0; t < d.sequences[u].size(); ++t) {
      const ItemId item = d.sequences[u][t];
      CHORD_CHECK(item >= 1 && item <= d.num_items, d.name, ": user ", d.user_ids[u], " event ", t,
                  ": item ", item, " is outside 1..", d.num_items);
    }
}

// The numbers SOURCES.md tabulates for each file.
struct DatasetStats {
  std::int64_t users = 0;
  std::int64_t items = 0;           // num_items (largest id)
  std::int64_t distinct_items = 0;  // ids that occur at least once
  std::int64_t interactions = 0;
  std::int64_t min_length = 0, max_length = 0;
  double mean_length = 0.0;
  std::int64_t repeats = 0;  // sum over users of (length - distinct items of that user)
};

inline DatasetStats compute_stats(const Dataset& d) {
  DatasetStats s;
  s.users = d.num_users;
  s.items = d.num_items;
  std::vector<bool> seen(std::size_t(d.num_items) + 1, false);
  std::vector<ItemId> sorted;
  bool first = true;
  for (const auto& seq : d.sequences) {
    const auto n = std::int64_t(seq.size());
    s.interactions += n;
    s.min_length = first ? n : std::min(s.min_length, n);
    s.max_length = first ? n : std::max(s.max_length, n);
    first = false;
    sorted.assign(seq.begin(), seq.end());
    std::sort(sorted.begin(), sorted.end());
    s.repeats += n - (std::unique(sorted.begin(), sorted.end()) - sorted.begin());
    for (ItemId item : seq)
      if (item >= 0 && item <= d.num_items) seen[std::size_t(item)] = true;
  }
  for (std::size_t i = 1; i < seen.size(); ++i) s.distinct_items += seen[i] ? 1 : 0;
  s.mean_length = d.num_users > 0 ? double(s.interactions) / double(d.num_users) : 0.0;
  return s;
}

}  // namespace chord::data
