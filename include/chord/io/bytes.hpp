// chord/io/bytes.hpp: little-endian field writers and a strict, bounds-checked field reader.
//
// Shared by the small binary messages of the library (io/strategy_packet.hpp, the cloud's answer;
// io/profile_message.hpp, the device's request). Both are little-endian whatever the host,
// and both report every problem as a chord::Error of one form:
//   <kind> '<source>': byte <offset> (<field>): <what is wrong>
// so that a device log says which message, which byte and which field, without a hex dump.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <locale>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chord/core/error.hpp"

namespace chord::bytes {

inline void put_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(std::uint8_t(v >> (8 * i)));
}
inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(std::uint8_t(v >> (8 * i)));
}
inline void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(std::uint8_t(v >> (8 * i)));
}

// The IEEE-754 bits of a float and back (memcpy: no aliasing questions, NaN payloads kept).
inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}
inline float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}
inline void put_f32(std::vector<std::uint8_t>& out, float v) { put_u32(out, float_bits(v)); }

inline std::string hex64(std::uint64_t value) {
  std::ostringstream out;
  out.imbue(std::locale::classic());  // file contents: never a locale's digit grouping
  out << "0x" << std::hex << std::setw(16) << std::setfill('0') << value;
  return out.str();
}
inline std::string hex32(std::uint32_t value) {
  std::ostringstream out;
  out.imbue(std::locale::classic());  // file contents: never a locale's digit grouping
  out << "0x" << std::hex << std::setw(8) << std::setfill('0') << value;
  return out.str();
}
// "de ad be ef": for messages that show the bytes found where something else was expected.
inline std::string hex_bytes(const std::uint8_t* bytes, std::size_t n) {
  std::ostringstream out;
  out << std::hex << std::setfill('0');
  for (std::size_t i = 0; i < n; ++i) out << (i ? " " : "") << std::setw(2) << int(bytes[i]);
  return out.str();
}

// Walks a message field by field; every read is bounds-checked and every error names the message kind,
// its source, the byte offset and the field.
class Reader {
 public:
  // kind: "strategy packet", "profile message", ...; source: a file name or "(network)".
  Reader(const std::uint8_t* data, std::size_t size, std::string kind, std::string source)
      : data_(data), size_(size), kind_(std::move(kind)), source_(std::move(source)) {
    // "the packet has 3 left": the last word of the kind reads better inside a sentence.
    const auto space = kind_.find_last_of(' ');
    noun_ = space == std::string::npos ? kind_ : kind_.substr(space + 1);
  }

  template <typename... Parts>
  [[noreturn]] void fail(std::size_t offset, std::string_view field, const Parts&... parts) const {
    throw Error(detail::error_message(kind_, " '", source_, "': byte ", offset, " (", field, "): ", parts...));
  }

  // Ensures `bytes` more bytes exist for `field`; a short message is reported at the field it cuts.
  void need(std::size_t bytes, std::string_view field) const {
    const std::size_t left = size_ - offset_;
    if (bytes > left)
      fail(offset_, field, "truncated: the field needs ", bytes, " bytes, the ", noun_, " has ", left,
           " left (", noun_, " size ", size_, ")");
  }
  std::uint64_t read_le(std::size_t bytes, std::string_view field) {
    need(bytes, field);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v |= std::uint64_t(data_[offset_ + i]) << (8 * i);
    offset_ += bytes;
    return v;
  }
  float read_f32(std::string_view field) { return bits_float(std::uint32_t(read_le(4, field))); }
  const std::uint8_t* take(std::size_t bytes, std::string_view field) {
    need(bytes, field);
    const std::uint8_t* p = data_ + offset_;
    offset_ += bytes;
    return p;
  }
  std::size_t offset() const { return offset_; }
  std::size_t size() const { return size_; }
  std::size_t left() const { return size_ - offset_; }
  const std::string& noun() const { return noun_; }  // "packet", "message"

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
  std::string kind_, source_, noun_;
};

}  // namespace chord::bytes
