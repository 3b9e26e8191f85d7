// chord/data/synthetic.hpp: seeded synthetic sequences with structure a sequential model can learn.
//
// The fallback when no dataset is given, and the data of the tests. Generative story:
//  - K clusters of users. Cluster c owns a *region* of the catalogue: `region_overlap * num_items / K`
//    consecutive ids starting at c * num_items / K (wrapping around), so neighbouring clusters share
//    part of their regions and each item lies in about `region_overlap` regions.
//  - Each cluster has its own sparse item-transition matrix over its region: every region item has
//    `successors` distinct next items in the region, with weights halving from the first to the last
//    (4:2:1 for three), so the most likely successor has probability > 1/2.
//  - A user draws a cluster and a length in [min_length, max_length], starts at a uniform item of the
//    region and walks the cluster's chain. With probability `noise` a step is instead a popularity draw
//    from the whole catalogue (Zipf, weight ~ 1/rank, over a seeded permutation of the ids); from an
//    item outside the region the walk re-enters the region at a uniform item.
// What a model can exploit:
//  - item-to-item transitions (a first-order Markov model already beats popularity by far);
//  - user-specific structure: in the shared part of two regions the same item has different
//    successors for the two clusters, so the next item depends on *who* the user is, which only a
//    model that reads the user's history (or a user embedding) can resolve; and since each cluster
//    lives in its own region, different users exercise different rows of the item embedding and
//    different channels of the layers above it: the situation per-user bit-width strategies target.
// Everything uses Rng (rng.hpp) and integer weights: the same seed gives the same data everywhere.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/dataset.hpp"
#include "chord/data/rng.hpp"

namespace chord::data {

struct SyntheticOptions {
  std::int32_t num_users = 1000;
  std::int32_t num_items = 1000;
  std::int32_t num_clusters = 8;    // K
  std::int32_t region_overlap = 2;  // a region spans region_overlap / K of the catalogue
  std::int32_t successors = 3;      // next-item choices per item per cluster (1..16)
  std::int32_t min_length = 10, max_length = 50;
  double noise = 0.1;  // probability of a popularity step
  std::uint64_t seed = 1;
};

struct SyntheticData {
  Dataset dataset;
  std::vector<std::int32_t> cluster;  // [num_users] the cluster each user was drawn from
};

inline SyntheticData make_synthetic(const SyntheticOptions& o) {
  CHORD_CHECK(o.num_users >= 1, "synthetic: num_users ", o.num_users, " must be at least 1");
  CHORD_CHECK(o.num_items >= 2 && o.num_items <= (1 << 24), "synthetic: num_items ", o.num_items,
              " must be in 2..2^24");
  CHORD_CHECK(o.num_clusters >= 1 && o.num_clusters <= o.num_items / 2, "synthetic: num_clusters ", o.num_clusters,
              " must be in 1..num_items/2");
  CHORD_CHECK(o.region_overlap >= 1 && o.region_overlap <= o.num_clusters, "synthetic: region_overlap ",
              o.region_overlap, " must be in 1..num_clusters");
  CHORD_CHECK(o.successors >= 1 && o.successors <= 16, "synthetic: successors ", o.successors, " must be in 1..16");
  CHORD_CHECK(o.min_length >= 1 && o.min_length <= o.max_length, "synthetic: lengths [", o.min_length, ", ",
              o.max_length, "] are not a range of positive lengths");
  CHORD_CHECK(o.noise >= 0.0 && o.noise <= 1.0, "synthetic: noise ", o.noise, " is not a probability");

  const std::int64_t n = o.num_items, k = o.num_clusters;
  const auto width = static_cast<std::int32_t>(std::min<std::int64_t>(n, o.region_overlap * (n / k)));
  const std::int32_t succ = std::min(o.successors, width - 1);  // successors are distinct and not the item itself
  Rng rng(mix64(o.seed ^ 0x53594E5448ull));

  // region item p of cluster c (p in 0..width-1) is id region_item(c, p).
  const auto region_start = [&](std::int64_t c) { return c * n / k; };
  const auto region_item = [&](std::int64_t c, std::int64_t p) { return ItemId((region_start(c) + p) % n + 1); };

  // successor[(c * width + p) * succ + s]: the s-th next item (as a region position) of position p.
  std::vector<std::int32_t> successor(std::size_t(k * width * succ));
  std::vector<std::int32_t> choice;
  for (std::int64_t c = 0; c < k; ++c)
    for (std::int32_t p = 0; p < width; ++p) {
      choice.clear();
      while (std::int32_t(choice.size()) < succ) {
        const auto q = std::int32_t(rng.below(std::uint32_t(width)));
        if (q != p && std::find(choice.begin(), choice.end(), q) == choice.end()) choice.push_back(q);
      }
      std::copy(choice.begin(), choice.end(), successor.begin() + std::ptrdiff_t((c * width + p) * succ));
    }

  // Popularity: rank r has weight floor(2^24 / (r + 1)); ranks go to items through a permutation.
  std::vector<ItemId> by_rank(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) by_rank[std::size_t(i)] = ItemId(i + 1);
  data::shuffle(by_rank, rng);
  std::vector<std::uint64_t> cumulative(static_cast<std::size_t>(n));
  std::uint64_t total = 0;
  for (std::int64_t r = 0; r < n; ++r) cumulative[std::size_t(r)] = total += (1ull << 24) / std::uint64_t(r + 1);
  const auto popular_item = [&](Rng& g) {
    const std::uint64_t x = g.below64(total);
    const auto r = std::upper_bound(cumulative.begin(), cumulative.end(), x) - cumulative.begin();
    return by_rank[std::size_t(r)];
  };
  // Successor s has weight 2^(succ-1-s): draw x < 2^succ - 1, the highest set bit picks s.
  const auto pick_successor = [&](Rng& g) {
    const std::uint32_t x = g.below((1u << succ) - 1u) + 1u;  // 1 .. 2^succ - 1
    std::int32_t top = 0;
    while ((x >> (top + 1)) != 0) ++top;
    return succ - 1 - top;
  };

  SyntheticData out;
  Dataset& d = out.dataset;
  d.name = "synthetic(seed=" + std::to_string(o.seed) + ")";
  d.num_users = o.num_users;
  d.num_items = o.num_items;
  d.sequences.resize(std::size_t(o.num_users));
  d.user_ids.resize(std::size_t(o.num_users));
  out.cluster.resize(std::size_t(o.num_users));
  for (std::int32_t u = 0; u < o.num_users; ++u) {
    Rng g = Rng::stream(o.seed, 0x5E0, std::uint64_t(u));  // per user: users can be generated independently
    const auto c = std::int64_t(g.below(std::uint32_t(k)));
    const auto length = o.min_length + std::int32_t(g.below(std::uint32_t(o.max_length - o.min_length + 1)));
    auto& seq = d.sequences[std::size_t(u)];
    seq.reserve(std::size_t(length));
    std::int64_t pos = g.below(std::uint32_t(width));  // region position, or -1 after leaving the region
    seq.push_back(region_item(c, pos));
    while (std::int32_t(seq.size()) < length) {
      if (g.uniform01() < o.noise) {
        const ItemId item = popular_item(g);
        const std::int64_t p = ((item - 1) - region_start(c) + n) % n;
        pos = p < width ? p : -1;
        seq.push_back(item);
        continue;
      }
      if (pos < 0) {
        pos = g.below(std::uint32_t(width));
      } else {
        pos = successor[std::size_t((c * width + pos) * succ + pick_successor(g))];
      }
      seq.push_back(region_item(c, pos));
    }
    d.user_ids[std::size_t(u)] = u + 1;
    out.cluster[std::size_t(u)] = std::int32_t(c);
  }
  return out;
}

}  // namespace chord::data
