// chord/models/data_binding.hpp: which data a model file was trained on, and its id maps.
//
// A model's embedding rows are dense indices (data/dataset.hpp), which mean something only with the
// data they were numbered from. So a model file records, in its metadata (docs/models.md):
//   data.fingerprint  "0x" + 16 hex digits: FNV-1a 64 of the data's content (every user's file id and item
//                     file ids in order; hence of its leave-one-out split), not of its path; or "unknown"
//                     (imported models, files written before this key: absent = "unknown")
//   data.user_ids     the file's user id of each dense user index 0..U-1
//   data.item_ids     the file's item id of each dense item index 1..N
// Both maps are strictly increasing lists written as ranges, "1-3,7,9-12"; an absent map means the
// identity (the file's ids are the indices; models imported from PyTorch look like this). They are
// parsed strictly and bounded before anything is allocated: ids in 1..kMaxId, at most the model's
// item (user) count, and exactly that count for the items (and Caser's users).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/core/error.hpp"
#include "chord/data/dataset.hpp"
#include "chord/io/bytes.hpp"
#include "chord/models/config.hpp"

namespace chord::models {

inline constexpr const char* kDataFingerprintKey = "data.fingerprint";
inline constexpr const char* kDataUserIdsKey = "data.user_ids";
inline constexpr const char* kDataItemIdsKey = "data.item_ids";
inline constexpr const char* kUnknownData = "unknown";

// What a model file says about its data. Empty maps: the identity.
struct DataBinding {
  std::string fingerprint = kUnknownData;
  std::vector<std::int32_t> user_ids, item_ids;
  bool known() const { return fingerprint != kUnknownData; }
};

// The content fingerprint of a dataset (see the header comment), as "0x" + 16 hex digits.
inline std::string data_fingerprint(const data::Dataset& d) {
  std::uint64_t hash = fnv1a64(std::string_view("chord-data-v1"));
  const auto add = [&hash](std::int64_t v) {
    std::uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = std::uint8_t(std::uint64_t(v) >> (8 * i));
    hash = fnv1a64(b, 8, hash);
  };
  add(d.num_users);
  for (std::size_t u = 0; u < d.sequences.size(); ++u) {
    add(d.user_ids.at(u));
    add(std::int64_t(d.sequences[u].size()));
    for (data::ItemId item : d.sequences[u]) add(data::raw_item_id(d, item));
  }
  return bytes::hex64(hash);
}

// "1-3,7" for {1, 2, 3, 7}; `ids` strictly increasing.
inline std::string id_map_text(const std::vector<std::int32_t>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ids[i]);
    if (j > i) out += '-' + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

// Parses an id map of at most `max_count` ids; errors name `where` and `key`.
inline std::vector<std::int32_t> parse_id_map(const std::string& text, std::int64_t max_count, const std::string& where,
                                              const char* key) {
  std::vector<std::int32_t> ids;
  const char* p = text.data();
  const char* end = p + text.size();
  const auto number = [&](const char* what) {
    std::int64_t v = 0;
    const auto r = std::from_chars(p, end, v);
    CHORD_CHECK(r.ec == std::errc() && v >= 1 && v <= data::kMaxId, where, ": metadata '", key, "' at character ",
                p - text.data(), ": ", what, " is not an id in 1..", data::kMaxId);
    p = r.ptr;
    return std::int32_t(v);
  };
  CHORD_CHECK(!text.empty(), where, ": metadata '", key, "' is empty");
  while (p < end) {
    const std::int32_t first = number("a range's first id");
    std::int32_t last = first;
    if (p < end && *p == '-') ++p, last = number("a range's last id");
    CHORD_CHECK(last >= first && (ids.empty() || first > ids.back()), where, ": metadata '", key,
                "': ids are not strictly increasing at ", first);
    CHORD_CHECK(std::int64_t(ids.size()) + (std::int64_t(last) - first + 1) <= max_count, where, ": metadata '", key,
                "' holds more than ", max_count, " ids (the model's count)");
    for (std::int64_t v = first; v <= last; ++v) ids.push_back(std::int32_t(v));
    if (p < end) {
      CHORD_CHECK(*p == ',', where, ": metadata '", key, "' at character ", p - text.data(), ": expected ','");
      ++p;
      CHORD_CHECK(p < end, where, ": metadata '", key, "' ends with ','");
    }
  }
  return ids;
}

// The metadata entries that bind a model to `d`.
inline Metadata binding_metadata(const data::Dataset& d) {
  Metadata m{{kDataFingerprintKey, data_fingerprint(d)}, {kDataUserIdsKey, id_map_text(d.user_ids)}};
  std::vector<std::int32_t> items = d.item_ids;
  if (items.empty())
    for (std::int32_t i = 1; i <= d.num_items; ++i) items.push_back(i);
  m[kDataItemIdsKey] = id_map_text(items);
  return m;
}

// Reads the binding of a model with `num_items` items and (Caser) `num_users` users (-1: SASRec, any
// count up to InputLimits::max_users).
inline DataBinding binding_from(const Metadata& m, const std::string& where, std::int64_t num_items,
                                std::int64_t num_users, const InputLimits& limits = default_limits()) {
  DataBinding b;
  const auto fingerprint = m.find(kDataFingerprintKey);
  if (fingerprint != m.end()) {
    const std::string& f = fingerprint->second;
    bool hex = f.size() == 18 && f[0] == '0' && f[1] == 'x';
    for (std::size_t i = 2; hex && i < f.size(); ++i) hex = (f[i] >= '0' && f[i] <= '9') || (f[i] >= 'a' && f[i] <= 'f');
    CHORD_CHECK(hex || f == kUnknownData, where, ": metadata '", kDataFingerprintKey, "' = '", f,
                "' is neither 0x and 16 lowercase hex digits nor '", kUnknownData, "'");
    b.fingerprint = f;
  }
  const auto items = m.find(kDataItemIdsKey);
  if (items != m.end()) {
    b.item_ids = parse_id_map(items->second, num_items, where, kDataItemIdsKey);
    CHORD_CHECK(std::int64_t(b.item_ids.size()) == num_items, where, ": metadata '", kDataItemIdsKey, "' maps ",
                b.item_ids.size(), " items, the model has ", num_items);
  }
  const auto users = m.find(kDataUserIdsKey);
  if (users != m.end()) {
    b.user_ids = parse_id_map(users->second, num_users < 0 ? limits.max_users : num_users, where, kDataUserIdsKey);
    CHORD_CHECK(num_users < 0 || std::int64_t(b.user_ids.size()) == num_users, where, ": metadata '", kDataUserIdsKey,
                "' maps ", b.user_ids.size(), " users, the model has ", num_users);
  }
  return b;
}

// Refuses data other than the model's (both files named) unless `allow_other`; for a model of unknown
// data, prints a note on `notes` and goes on: its ids are taken as the data's indices.
inline void check_model_data(const DataBinding& model, const std::string& model_path, const data::Dataset& d,
                             bool allow_other, std::FILE* notes = stdout) {
  if (!model.known()) {
    std::fprintf(notes, "note: model '%s' does not record the data it was trained on (data.fingerprint unknown): "
                        "using '%s' as if it were\n", model_path.c_str(), d.name.c_str());
    return;
  }
  const std::string actual = data_fingerprint(d);
  if (actual == model.fingerprint) return;
  CHORD_CHECK(allow_other, "model '", model_path, "' was trained on other data than '", d.name,
              "' (data.fingerprint ", model.fingerprint, " in the model, ", actual,
              " for the data); pass --allow-other-data to use it anyway");
  std::fprintf(notes, "note: model '%s' was trained on other data than '%s' (--allow-other-data)\n",
               model_path.c_str(), d.name.c_str());
}

// `d` renumbered to the model's indices where the model carries id maps (an imported model's numbering
// may differ from the data's): every item (and user, with a user map) of the data must be in the
// model's map, else chord::Error names both. Without maps, the identity.
inline data::Dataset renumber_for_model(data::Dataset d, const DataBinding& model, const std::string& model_path) {
  if (!model.item_ids.empty()) {
    std::vector<data::ItemId> to_model(std::size_t(d.num_items) + 1, 0);
    for (data::ItemId i = 1; i <= d.num_items; ++i) {
      const std::int32_t raw = data::raw_item_id(d, i);
      const auto found = std::lower_bound(model.item_ids.begin(), model.item_ids.end(), raw);
      CHORD_CHECK(found != model.item_ids.end() && *found == raw, "'", d.name, "': item id ", raw,
                  " is not in the item map (data.item_ids) of model '", model_path, "'");
      to_model[std::size_t(i)] = data::ItemId(found - model.item_ids.begin()) + 1;
    }
    for (auto& sequence : d.sequences)
      for (data::ItemId& item : sequence) item = to_model[std::size_t(item)];
    d.item_ids = model.item_ids;
    d.num_items = std::int32_t(model.item_ids.size());
  }
  if (!model.user_ids.empty() && model.user_ids != d.user_ids) {
    // The model's user order; users of the model without data get an empty sequence are not allowed by
    // check_dataset, so the data must hold exactly the model's users.
    CHORD_CHECK(d.user_ids.size() == model.user_ids.size(), "'", d.name, "' has ", d.user_ids.size(),
                " users, model '", model_path, "' maps ", model.user_ids.size(), " (data.user_ids)");
    for (std::size_t u = 0; u < d.user_ids.size(); ++u)
      CHORD_CHECK(d.user_ids[u] == model.user_ids[u], "'", d.name, "': user id ", d.user_ids[u],
                  " is not user index ", u, " of model '", model_path, "' (data.user_ids has ", model.user_ids[u], ")");
  }
  data::check_dataset(d);
  return d;
}

}  // namespace chord::models
