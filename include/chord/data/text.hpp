// chord/data/text.hpp: the pieces the dataset readers share: lines, fields, strict numbers, and error
// messages that name the source, the line, the field and the column.
//
// Why by hand: the readers must take a 9 MB file in a few tens of milliseconds and must reject, with a
// precise place, everything that is not exactly a number. iostream extraction is slow per token and
// accepts "+5", " 5" and "5x" (stopping silently), so tokens are cut here and handed to
// std::from_chars only after every byte was checked.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/dataset.hpp"

namespace chord::data::detail {

// A printable excerpt of untrusted bytes: at most `max_bytes`, others shown as \xNN, quoted.
inline std::string printable(std::string_view s, std::size_t max_bytes = 24) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
      out += char(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max_bytes) out += "...";
  out += "'";
  return out;
}

// The place a reader is at, for error messages ("ml-1m.txt: line 12, field 2 (column 4): ...").
struct Where {
  std::string_view source;
  std::size_t line = 0;
};

template <typename... Parts>
[[noreturn]] void fail_line(const Where& w, const Parts&... parts) {
  throw Error(::chord::detail::error_message(w.source, ": line ", w.line, ": ", parts...));
}

template <typename... Parts>
[[noreturn]] void fail_field(const Where& w, std::size_t field, std::size_t column, const Parts&... parts) {
  throw Error(::chord::detail::error_message(w.source, ": line ", w.line, ", field ", field, " (column ", column,
                                             "): ", parts...));
}

// One field of a line: its text and its 1-based byte column.
struct Field {
  std::string_view text;
  std::size_t column = 0;
};

// Walks a buffer line by line. A line ends at "\n"; one "\r" right before it (or before the end of
// the buffer) is dropped, so CRLF files read like LF files. A last line without "\n" still counts.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}

  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    std::size_t end = text_.find('\n', pos_);
    const std::size_t after = end == std::string_view::npos ? text_.size() : end + 1;
    if (end == std::string_view::npos) end = text_.size();
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = after;
    ++line_number_;
    return true;
  }

  std::size_t line_number() const { return line_number_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t line_number_ = 0;
};

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }

inline bool is_blank_line(std::string_view line) {
  for (char c : line)
    if (!is_blank(c)) return false;
  return true;
}

// Fields separated by runs of spaces or tabs (formats A and B); leading and trailing blanks ignored.
inline void split_blank_separated(std::string_view line, std::vector<Field>& fields) {
  fields.clear();
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i == line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && !is_blank(line[i])) ++i;
    fields.push_back({line.substr(start, i - start), start + 1});
  }
}

// Fields separated by exactly one separator string ("\t" for u.data, "::" for ratings.dat); empty
// fields are kept so that "1\t\t3" is reported as an empty field, not as a missing one.
inline void split_exact(std::string_view line, std::string_view separator, std::vector<Field>& fields) {
  fields.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = separator.size() == 1 ? line.find(separator[0], start) : line.find(separator, start);
    if (at == std::string_view::npos) {
      fields.push_back({line.substr(start), start + 1});
      return;
    }
    fields.push_back({line.substr(start, at - start), start + 1});
    start = at + separator.size();
  }
}

inline bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// A user or item id: decimal digits only, 1..limit (limit <= kMaxId). `what` names it ("item id").
inline std::int32_t parse_id(const Field& f, const char* what, std::int32_t limit, const char* limit_name,
                             const Where& w, std::size_t field_index) {
  const std::string_view t = f.text;
  if (t.empty()) fail_field(w, field_index, f.column, "empty ", what);
  if (!all_digits(t)) {
    if (t[0] == '-' && all_digits(t.substr(1)))
      fail_field(w, field_index, f.column, "negative ", what, " ", printable(t), ": ids start at 1");
    if (t[0] >= '0' && t[0] <= '9')
      fail_field(w, field_index, f.column, what, " ", printable(t), " has trailing characters after the number");
    fail_field(w, field_index, f.column, what, " ", printable(t), " is not a number");
  }
  std::int64_t value = 0;
  const auto result = std::from_chars(t.data(), t.data() + t.size(), value);
  if (result.ec == std::errc::result_out_of_range || value > kMaxId)
    fail_field(w, field_index, f.column, what, " ", printable(t), " is too large: ids must be at most ", kMaxId);
  if (value == 0)
    fail_field(w, field_index, f.column, what, " 0: ids start at 1 (item 0 is reserved for padding)");
  if (value > limit)
    fail_field(w, field_index, f.column, what, " ", value, " exceeds the limit ", limit, " (", limit_name, ")");
  return static_cast<std::int32_t>(value);
}

// A timestamp: decimal digits, fits int64 (seconds since 1970 in the GroupLens files).
inline std::int64_t parse_timestamp(const Field& f, const Where& w, std::size_t field_index) {
  const std::string_view t = f.text;
  if (t.empty()) fail_field(w, field_index, f.column, "empty timestamp");
  if (!all_digits(t)) fail_field(w, field_index, f.column, "timestamp ", printable(t), " is not a non-negative integer");
  std::int64_t value = 0;
  const auto result = std::from_chars(t.data(), t.data() + t.size(), value);
  if (result.ec != std::errc()) fail_field(w, field_index, f.column, "timestamp ", printable(t), " does not fit 64 bits");
  return value;
}

// A rating: digits with an optional decimal fraction ("4", "3.5"). Its value is not used (ratings are
// implicit feedback), but it must be a number, so that a shifted column is caught.
inline void check_rating(const Field& f, const Where& w, std::size_t field_index) {
  const std::string_view t = f.text;
  const std::size_t dot = t.find('.');
  const bool ok = dot == std::string_view::npos ? all_digits(t)
                                                : all_digits(t.substr(0, dot)) && all_digits(t.substr(dot + 1));
  if (!ok) fail_field(w, field_index, f.column, "rating ", printable(t), " is not a number like 4 or 3.5");
}

}  // namespace chord::data::detail
