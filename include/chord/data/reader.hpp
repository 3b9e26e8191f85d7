// chord/data/reader.hpp: reads the dataset files of ../shared/data (see SOURCES.md) into a Dataset.
//
// Formats (auto-detected from the content, with the file name as a hint):
//   A  user_item        "<user> <item>" per line, lines grouped by user, in time order (ml-1m.txt)
//   B  user_sequence    "<user> <item1> <item2> ..." one line per user, in time order (Beauty, Yelp, LastFM)
//   C  movielens_udata  "<user>\t<item>\t<rating>\t<timestamp>", rows in any order (ml-100k/u.data)
//   D  ratings_dat      "<user>::<item>::<rating>::<timestamp>", rows in any order (GroupLens ratings.dat)
// In C and D a user's sequence is their rows sorted by (timestamp, row order in the file).
//
// Strictness (every rejection is a chord::Error naming the source, the line and, for a bad value, the
// field and column): non-numeric or partly numeric tokens, ids <= 0, ids above kMaxId or above the
// caller's limits, a wrong number of fields, a B line inside an A file (and the reverse), the lines of
// one A user not being consecutive, two B lines for one user, a (user, item) rated twice in C or D
// (unless allowed), and a file without any interaction. Tolerated: CRLF line ends, a missing final
// newline, blank lines, spaces or tabs between A and B fields, items repeated within a user in A and
// B (Yelp has 11,830). Users may come in any order and their ids may have gaps (see dataset.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/limits.hpp"
#include "chord/data/dataset.hpp"
#include "chord/data/text.hpp"
#include "chord/io/atomic_file.hpp"

namespace chord::data {

enum class Format { automatic, user_item, user_sequence, movielens_udata, ratings_dat };

inline const char* format_name(Format f) {
  switch (f) {
    case Format::automatic: return "automatic";
    case Format::user_item: return "'user item' lines (format A)";
    case Format::user_sequence: return "'user item1 item2 ...' lines (format B)";
    case Format::movielens_udata: return "MovieLens u.data (format C)";
    case Format::ratings_dat: return "GroupLens ratings.dat (format D)";
  }
  return "?";
}

struct ReadOptions {
  Format format = Format::automatic;
  std::int32_t max_user_id = kMaxId;     // larger user ids are an error
  std::int32_t max_item_id = kMaxId;     // larger item ids are an error (e.g. a known catalogue size)
  bool allow_repeated_ratings = false;   // C, D: accept a second row for the same (user, item)
  std::int64_t max_distinct_ids = default_limits().max_distinct_ids;  // distinct users, distinct items
};

namespace detail {

[[noreturn]] inline void fail_empty(std::string_view source, std::size_t lines) {
  throw Error(::chord::detail::error_message(source, ": empty file: no interactions in its ", lines, " line(s)"));
}

// One user's items as parsed: items [begin, end) of a flat array, `line` = first line of the user.
struct UserGroup {
  std::int32_t user = 0;
  std::size_t line = 0;
  std::size_t begin = 0, end = 0;
};

// Sorts groups by user id, refuses a user seen twice, and copies the items out in user order, each
// renumbered to its dense index (dataset.hpp). `twice` explains the refusal for the format at hand.
inline Dataset assemble(std::string_view source, std::vector<UserGroup>& groups, const std::vector<ItemId>& items,
                        const char* twice, const ReadOptions& opt) {
  const auto by_user_then_line = [](const UserGroup& a, const UserGroup& b) {
    return a.user != b.user ? a.user < b.user : a.line < b.line;
  };
  if (!std::is_sorted(groups.begin(), groups.end(), by_user_then_line))
    std::sort(groups.begin(), groups.end(), by_user_then_line);
  for (std::size_t g = 1; g < groups.size(); ++g)
    if (groups[g].user == groups[g - 1].user)
      fail_line(Where{source, groups[g].line}, "user ", groups[g].user, " was already on line ", groups[g - 1].line,
                ": ", twice);
  CHORD_CHECK(std::int64_t(groups.size()) <= opt.max_distinct_ids, source, ": ", groups.size(),
              " distinct user ids exceed the limit of ", opt.max_distinct_ids, " (ReadOptions::max_distinct_ids)");
  Dataset d;
  d.name = std::string(source);
  d.item_ids = items;
  std::sort(d.item_ids.begin(), d.item_ids.end());
  d.item_ids.erase(std::unique(d.item_ids.begin(), d.item_ids.end()), d.item_ids.end());
  CHORD_CHECK(std::int64_t(d.item_ids.size()) <= opt.max_distinct_ids, source, ": ", d.item_ids.size(),
              " distinct item ids exceed the limit of ", opt.max_distinct_ids, " (ReadOptions::max_distinct_ids)");
  d.num_items = static_cast<std::int32_t>(d.item_ids.size());
  d.num_users = static_cast<std::int32_t>(groups.size());
  d.sequences.resize(groups.size());
  d.user_ids.resize(groups.size());
  const auto dense = [&](ItemId raw) {
    return ItemId(std::lower_bound(d.item_ids.begin(), d.item_ids.end(), raw) - d.item_ids.begin()) + 1;
  };
  for (std::size_t g = 0; g < groups.size(); ++g) {
    d.user_ids[g] = groups[g].user;
    d.sequences[g].reserve(groups[g].end - groups[g].begin);
    for (std::size_t i = groups[g].begin; i < groups[g].end; ++i) d.sequences[g].push_back(dense(items[i]));
  }
  return d;
}

// Formats A and B (and "automatic", which decides between them from what the lines contain).
inline Dataset parse_user_lines(std::string_view text, std::string_view source, const ReadOptions& opt,
                                Format format) {
  std::vector<ItemId> items;
  items.reserve(text.size() / 6);
  std::vector<UserGroup> groups;
  std::vector<Field> fields;
  std::size_t first_multi_line = 0, first_multi_count = 0;  // a line with >= 2 items: the B trait
  std::size_t first_continued_line = 0;                      // a line continuing the user above: the A trait
  LineReader lines(text);
  std::string_view line;
  while (lines.next(line)) {
    const Where w{source, lines.line_number()};
    split_blank_separated(line, fields);
    if (fields.empty()) continue;
    const std::int32_t user = parse_id(fields[0], "user id", opt.max_user_id, "ReadOptions::max_user_id", w, 1);
    const std::size_t count = fields.size() - 1;
    if (count == 0)
      fail_line(w, "user ", user, " has no item: expected ",
                format == Format::user_sequence ? "'user item1 item2 ...'"
                : format == Format::user_item   ? "'user item'"
                                                : "'user item' or 'user item1 item2 ...'");
    if (format == Format::user_item && count > 1)
      fail_field(w, 3, fields[2].column, "unexpected field ", printable(fields[2].text),
                 ": a 'user item' (format A) line has exactly 2 fields");
    const std::size_t begin = items.size();
    for (std::size_t f = 1; f < fields.size(); ++f)
      items.push_back(parse_id(fields[f], "item id", opt.max_item_id, "ReadOptions::max_item_id", w, f + 1));
    if (count >= 2 && first_multi_line == 0) first_multi_line = w.line, first_multi_count = count;
    const bool continues = !groups.empty() && groups.back().user == user;
    if (continues) {
      if (format == Format::user_sequence)
        fail_line(w, "user ", user, " already has line ", groups.back().line,
                  ": a 'user item1 item2 ...' (format B) file has one line per user");
      if (first_continued_line == 0) first_continued_line = w.line;
      groups.back().end = items.size();
    } else {
      groups.push_back({user, w.line, begin, items.size()});
    }
    if (first_multi_line != 0 && first_continued_line != 0)
      fail_line(w, "the file mixes two formats: line ", first_continued_line,
                " continues the user of the line above ('user item' lines, format A), but line ", first_multi_line,
                " has ", first_multi_count, " items ('user item1 item2 ...', format B)");
  }
  if (groups.empty()) fail_empty(source, lines.line_number());
  const bool one_line_per_user = format == Format::user_sequence || first_multi_line != 0;
  return assemble(source, groups, items,
                  one_line_per_user ? "a 'user item1 item2 ...' (format B) file has one line per user"
                                    : "the lines of one user must be consecutive ('user item' format A)",
                  opt);
}

// Formats C and D: rating logs, sorted here into sequences.
inline Dataset parse_rating_log(std::string_view text, std::string_view source, const ReadOptions& opt,
                                Format format) {
  struct Row {
    std::int32_t user, item;
    std::int64_t time;
    std::size_t line;  // also the row order that breaks timestamp ties
  };
  const bool udata = format == Format::movielens_udata;
  const std::string_view separator = udata ? "\t" : "::";
  const char* layout = udata ? "4 tab-separated fields 'user item rating timestamp' (MovieLens u.data)"
                             : "4 fields 'user::item::rating::timestamp' (GroupLens ratings.dat)";
  std::vector<Row> rows;
  rows.reserve(text.size() / 20);
  std::vector<Field> fields;
  LineReader lines(text);
  std::string_view line;
  while (lines.next(line)) {
    const Where w{source, lines.line_number()};
    if (is_blank_line(line)) continue;
    split_exact(line, separator, fields);
    if (fields.size() != 4) fail_line(w, "expected ", layout, ", found ", fields.size(), " field(s)");
    Row r;
    r.user = parse_id(fields[0], "user id", opt.max_user_id, "ReadOptions::max_user_id", w, 1);
    r.item = parse_id(fields[1], "item id", opt.max_item_id, "ReadOptions::max_item_id", w, 2);
    check_rating(fields[2], w, 3);
    r.time = parse_timestamp(fields[3], w, 4);
    r.line = w.line;
    rows.push_back(r);
  }
  if (rows.empty()) fail_empty(source, lines.line_number());
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.user != b.user) return a.user < b.user;
    return a.time != b.time ? a.time < b.time : a.line < b.line;
  });
  std::vector<ItemId> items(rows.size());
  std::vector<UserGroup> groups;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    items[r] = rows[r].item;
    if (groups.empty() || groups.back().user != rows[r].user) groups.push_back({rows[r].user, rows[r].line, r, r});
    groups.back().end = r + 1;
    groups.back().line = std::min(groups.back().line, rows[r].line);
  }
  if (!opt.allow_repeated_ratings) {
    std::vector<std::pair<ItemId, std::size_t>> seen;  // (item, line) of one user
    for (const UserGroup& g : groups) {
      seen.clear();
      for (std::size_t r = g.begin; r < g.end; ++r) seen.push_back({rows[r].item, rows[r].line});
      std::sort(seen.begin(), seen.end());
      for (std::size_t i = 1; i < seen.size(); ++i)
        if (seen[i].first == seen[i - 1].first)
          fail_line(Where{source, seen[i].second}, "user ", g.user, " rated item ", seen[i].first,
                    " again (first on line ", seen[i - 1].second,
                    "); set ReadOptions::allow_repeated_ratings to keep repeats");
    }
  }
  return assemble(source, groups, items, "internal: rows of one user were not merged", opt);
}

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace detail

// The format of a buffer. The first non-blank line decides between the rating logs ("::" -> D, four
// tab-separated fields -> C) and the id lists (A or B, told apart while parsing). A name ending in
// ".data" or ".dat" asks for C or D even when the content does not look like it, so that a u.data
// saved with spaces is rejected with line numbers instead of being read as B.
inline Format detect_format(std::string_view text, std::string_view source) {
  if (detail::ends_with(source, ".data")) return Format::movielens_udata;
  if (detail::ends_with(source, ".dat")) return Format::ratings_dat;
  detail::LineReader lines(text);
  std::string_view line;
  while (lines.next(line)) {
    if (detail::is_blank_line(line)) continue;
    if (line.find("::") != std::string_view::npos) return Format::ratings_dat;
    if (std::count(line.begin(), line.end(), '\t') == 3) return Format::movielens_udata;
    return Format::automatic;  // A or B
  }
  detail::fail_empty(source, lines.line_number());
}

// Parses a whole buffer; `source` names it in the Dataset and in every error message.
inline Dataset parse_dataset(std::string_view text, std::string_view source, const ReadOptions& opt = {}) {
  CHORD_CHECK(opt.max_user_id >= 1 && opt.max_user_id <= kMaxId && opt.max_item_id >= 1 && opt.max_item_id <= kMaxId,
              source, ": ReadOptions id limits must be in 1..", kMaxId);
  const Format format = opt.format == Format::automatic ? detect_format(text, source) : opt.format;
  switch (format) {
    case Format::automatic:
    case Format::user_item:
    case Format::user_sequence: return detail::parse_user_lines(text, source, opt, format);
    case Format::movielens_udata:
    case Format::ratings_dat: return detail::parse_rating_log(text, source, opt, format);
  }
  throw Error("parse_dataset: unknown format");
}

// The whole content of a file (binary, no newline translation): a regular file of bounded size
// (io/atomic_file.hpp read_regular_file: a FIFO or /dev/zero is refused).
inline std::string read_file_bytes(const std::string& path, const InputLimits& limits = default_limits()) {
  std::string bytes;
  ::chord::detail::read_regular_file(path, limits.max_input_bytes, bytes);
  return bytes;
}

// Reads and parses a dataset file; errors name the path as given.
inline Dataset read_dataset(const std::string& path, const ReadOptions& opt = {}) {
  return parse_dataset(read_file_bytes(path), path, opt);
}

}  // namespace chord::data
