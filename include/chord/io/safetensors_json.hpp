// chord/io/safetensors_json.hpp: the strict JSON reader of a safetensors header (io/safetensors.hpp).
//
// No dependency: objects, arrays, strings and non-negative integers, which is all a safetensors header
// holds; the literals true/false/null and other numbers are refused. Errors read
//   safetensors '<source>': <what is wrong>
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"

namespace chord::safetensors_detail {

[[noreturn]] inline void fail(const std::string& source, const std::string& what) {
  throw Error("safetensors '" + source + "': " + what);
}

// A strict JSON reader for the header: objects, arrays, strings, non-negative integers; the literals
// true/false/null and other numbers are syntax this header never needs, and are refused.
class JsonReader {
 public:
  JsonReader(const char* text, std::size_t size, const std::string& source)
      : begin_(text), p_(text), end_(text + size), source_(source) {}

  void expect(char c, const std::string& what) {
    skip_space();
    if (p_ >= end_ || *p_ != c) fail_here(std::string("expected '") + c + "' " + what);
    ++p_;
  }
  bool peek(char c) {
    skip_space();
    return p_ < end_ && *p_ == c;
  }
  bool consume(char c) {
    if (!peek(c)) return false;
    ++p_;
    return true;
  }
  void finish() {
    skip_space();
    if (p_ != end_) fail_here("unexpected bytes after the header object");
  }

  std::string string(const char* what) {
    skip_space();
    if (p_ >= end_ || *p_ != '"') fail_here(std::string("expected a string (") + what + ")");
    ++p_;
    std::string out;
    while (true) {
      if (p_ >= end_) fail_here("unterminated string");
      const unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') break;
      if (c < 0x20) fail_here("control character in a string");
      if (c != '\\') {
        out += char(c);
        continue;
      }
      if (p_ >= end_) fail_here("unterminated escape");
      const char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_utf8(out, hex4()); break;
        default: fail_here(std::string("bad escape '\\") + e + "'");
      }
    }
    return out;
  }

  std::uint64_t integer(const char* what) {
    skip_space();
    const char* start = p_;
    std::uint64_t v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      const std::uint64_t digit = std::uint64_t(*p_ - '0');
      if (v > (~std::uint64_t(0) - digit) / 10) fail_here(std::string(what) + " does not fit 64 bits");
      v = v * 10 + digit;
      ++p_;
    }
    if (p_ == start) fail_here(std::string("expected a non-negative integer (") + what + ")");
    if (p_ - start > 1 && *start == '0') fail_here(std::string("leading zero in ") + what);
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) fail_here(std::string(what) + " is not an integer");
    return v;
  }

  std::vector<std::uint64_t> integer_array(const char* what) {
    std::vector<std::uint64_t> out;
    expect('[', what);
    if (consume(']')) return out;
    do {
      out.push_back(integer(what));
      if (out.size() > 64) fail_here(std::string(what) + " has more than 64 entries");
    } while (consume(','));
    expect(']', what);
    return out;
  }

  std::size_t offset() const { return std::size_t(p_ - begin_); }

  [[noreturn]] void fail_here(const std::string& what) const {
    fail(source_, "header byte " + std::to_string(offset()) + ": " + what);
  }

 private:
  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  unsigned hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      if (p_ >= end_) fail_here("truncated \\u escape");
      const char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else fail_here("bad \\u escape");
    }
    return v;
  }
  void append_utf8(std::string& out, unsigned cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) {  // a surrogate pair
      if (cp > 0xDBFF || end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') fail_here("lone surrogate in \\u escape");
      p_ += 2;
      const unsigned low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail_here("bad surrogate pair");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    }
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  const std::string& source_;
};

}  // namespace chord::safetensors_detail
