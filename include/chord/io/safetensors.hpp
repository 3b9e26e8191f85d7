// chord/io/safetensors.hpp: fp32 tensors + a string map in the safetensors format, strictly validated.
//
// The format (huggingface/safetensors, readable by its Python/Rust libraries and PyTorch tooling):
//   bytes 0..7     N: unsigned 64-bit little-endian, the size of the header
//   bytes 8..8+N   a UTF-8 JSON object: for every tensor  "name": {"dtype": "F32", "shape": [d0, d1, ...],
//                  "data_offsets": [begin, end]}  (offsets in bytes, relative to the data section), and an
//                  optional "__metadata__": {"key": "value", ...} of strings only. The writer pads the
//                  header with spaces so that the data starts on an 8-byte boundary (the spec allows it).
//   bytes 8+N..    the data: every tensor little-endian, row-major, back to back, no holes.
// Our files add one metadata entry, "chord.crc32": the CRC-32 (8 hex digits) of a canonical form of
// everything else (the other metadata entries sorted by key, each tensor's name, dtype, shape and
// offsets sorted by name, then the data bytes), so a flipped byte anywhere, header or data, is caught
// even where the JSON would still parse. Only dtype F32 is read or written (the models are fp32).
//
// The reader trusts nothing: header length within the file and below 100 MB, JSON syntax (a small
// strict parser, io/safetensors_json.hpp), duplicate keys, dtypes, shapes, offsets in range, sizes matching the
// shapes, the data covered exactly once, the checksum, and every value finite and within
// InputLimits::max_magnitude (core/limits.hpp: a NaN weight would otherwise print "score nan"). Every error is a chord::Error of the form
//   safetensors '<source>': <what is wrong>
// Files are written with write_file_atomic (io/atomic_file.hpp): a crash never leaves half a file.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/core/error.hpp"
#include "chord/core/limits.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/safetensors_json.hpp"

namespace chord {

inline constexpr const char* kSafetensorsChecksumKey = "chord.crc32";
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100u * 1000u * 1000u;  // the spec's limit

struct SafeTensor {
  std::string name;
  std::vector<std::size_t> shape;
  std::vector<float> values;  // row-major, product(shape) values
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<SafeTensor> tensors;  // file order (data order)

  const SafeTensor* find(const std::string& name) const {
    for (const SafeTensor& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

namespace safetensors_detail {

inline void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  out += '"';
}

// One tensor's entry as the header describes it.
struct Entry {
  std::string name, dtype;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

inline void put_u64(std::uint32_t& crc, std::uint64_t v) {
  std::uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = std::uint8_t(v >> (8 * i));
  crc = crc32(b, 8, crc);
}
inline void put_text(std::uint32_t& crc, const std::string& s) {
  put_u64(crc, s.size());
  crc = crc32(s.data(), s.size(), crc);
}

// The canonical checksum (see the header comment). entries: any order; data: the data section.
inline std::uint32_t canonical_crc(const std::map<std::string, std::string>& metadata, std::vector<Entry> entries,
                                   const std::uint8_t* data, std::size_t size) {
  std::uint32_t crc = 0;
  for (const auto& [key, value] : metadata) {
    if (key == kSafetensorsChecksumKey) continue;
    put_text(crc, key);
    put_text(crc, value);
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const Entry& e : entries) {
    put_text(crc, e.name);
    put_text(crc, e.dtype);
    put_u64(crc, e.shape.size());
    for (std::uint64_t dim : e.shape) put_u64(crc, dim);
    put_u64(crc, e.begin);
    put_u64(crc, e.end);
  }
  return crc32(data, size, crc);
}

inline std::string hex8(std::uint32_t v) {
  char buffer[9];
  static const char* hex = "0123456789abcdef";
  for (int i = 7; i >= 0; --i, v >>= 4) buffer[i] = hex[v & 15];
  buffer[8] = 0;
  return buffer;
}

inline std::uint64_t read_u64_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace safetensors_detail

// The file's bytes. Metadata keys and tensor names must be unique and non-empty; the checksum entry
// is (re)computed. Tensor values must have product(shape) elements.
inline std::vector<std::uint8_t> encode_safetensors(const SafetensorsFile& file, const std::string& source = "(memory)") {
  namespace sd = safetensors_detail;
  std::vector<sd::Entry> entries;
  std::uint64_t offset = 0;
  for (const SafeTensor& t : file.tensors) {
    if (t.name.empty() || t.name == "__metadata__") sd::fail(source, "tensor name '" + t.name + "' is not allowed");
    for (const sd::Entry& e : entries)
      if (e.name == t.name) sd::fail(source, "tensor '" + t.name + "' appears twice");
    std::uint64_t count = 1;
    for (std::size_t dim : t.shape) count *= dim;
    if (count != t.values.size())
      sd::fail(source, "tensor '" + t.name + "' has " + std::to_string(t.values.size()) + " values for its shape");
    sd::Entry e;
    e.name = t.name, e.dtype = "F32";
    e.shape.assign(t.shape.begin(), t.shape.end());
    e.begin = offset, e.end = offset + count * 4;
    offset = e.end;
    entries.push_back(std::move(e));
  }
  std::vector<std::uint8_t> data(offset);
  std::size_t at = 0;
  for (const SafeTensor& t : file.tensors)
    for (float v : t.values) {
      std::uint32_t u;
      std::memcpy(&u, &v, 4);
      for (int i = 0; i < 4; ++i) data[at++] = std::uint8_t(u >> (8 * i));  // little-endian on any host
    }
  std::map<std::string, std::string> metadata = file.metadata;
  metadata[kSafetensorsChecksumKey] = sd::hex8(sd::canonical_crc(metadata, entries, data.data(), data.size()));

  std::string header = "{\"__metadata__\":{";
  bool first = true;
  for (const auto& [key, value] : metadata) {
    if (!first) header += ',';
    first = false;
    sd::append_json_string(header, key);
    header += ':';
    sd::append_json_string(header, value);
  }
  header += '}';
  for (const sd::Entry& e : entries) {
    header += ',';
    sd::append_json_string(header, e.name);
    header += ":{\"dtype\":\"F32\",\"shape\":[";
    for (std::size_t i = 0; i < e.shape.size(); ++i) header += (i ? "," : "") + std::to_string(e.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(e.begin) + "," + std::to_string(e.end) + "]}";
  }
  header += '}';
  while ((8 + header.size()) % 8 != 0) header += ' ';

  std::vector<std::uint8_t> out(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out[std::size_t(i)] = std::uint8_t(std::uint64_t(header.size()) >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

// Parses and validates a whole file (see the header comment). require_checksum: refuse files without
// "chord.crc32" (files of other writers have none; pass false to read them).
inline SafetensorsFile decode_safetensors(const std::uint8_t* bytes, std::size_t size, const std::string& source,
                                          bool require_checksum = true, const InputLimits& limits = default_limits()) {
  namespace sd = safetensors_detail;
  if (size < 8) sd::fail(source, "file of " + std::to_string(size) + " bytes is too short for the 8-byte header length");
  const std::uint64_t n = sd::read_u64_le(bytes);
  if (n > kSafetensorsMaxHeader) sd::fail(source, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n > size - 8)
    sd::fail(source, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
                         " bytes): truncated?");
  if (n < 2 || bytes[8] != '{') sd::fail(source, "header does not start with '{'");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  sd::JsonReader json(text, std::size_t(n), source);

  SafetensorsFile file;
  std::vector<sd::Entry> entries;
  bool have_metadata = false;
  json.expect('{', "at the start of the header");
  if (!json.consume('}')) {
    do {
      const std::string key = json.string("tensor name");
      if (key == "__metadata__") {
        if (have_metadata) json.fail_here("'__metadata__' appears twice");
        have_metadata = true;
        json.expect(':', "after '__metadata__'");
        json.expect('{', "after '__metadata__':");
        if (!json.consume('}')) {
          do {
            const std::string k = json.string("metadata key");
            json.expect(':', "after a metadata key");
            const std::string v = json.string("metadata value (metadata values must be strings)");
            if (!file.metadata.emplace(k, v).second) json.fail_here("metadata key '" + k + "' appears twice");
          } while (json.consume(','));
          json.expect('}', "at the end of '__metadata__'");
        }
        continue;
      }
      if (key.empty()) json.fail_here("empty tensor name");
      for (const sd::Entry& e : entries)
        if (e.name == key) json.fail_here("tensor '" + key + "' appears twice");
      json.expect(':', "after a tensor name");
      json.expect('{', "for tensor '" + key + "'");
      sd::Entry e;
      e.name = key;
      bool have_dtype = false, have_shape = false, have_offsets = false;
      do {
        const std::string field = json.string("tensor field");
        json.expect(':', "after a tensor field");
        if (field == "dtype" && !have_dtype) {
          e.dtype = json.string("dtype"), have_dtype = true;
        } else if (field == "shape" && !have_shape) {
          e.shape = json.integer_array("shape"), have_shape = true;
        } else if (field == "data_offsets" && !have_offsets) {
          const std::vector<std::uint64_t> o = json.integer_array("data_offsets");
          if (o.size() != 2) json.fail_here("tensor '" + key + "': data_offsets must be [begin, end]");
          e.begin = o[0], e.end = o[1], have_offsets = true;
        } else {
          json.fail_here("tensor '" + key + "': unexpected or repeated field '" + field + "'");
        }
      } while (json.consume(','));
      json.expect('}', "at the end of tensor '" + key + "'");
      if (!have_dtype || !have_shape || !have_offsets)
        sd::fail(source, "tensor '" + key + "' lacks dtype, shape or data_offsets");
      entries.push_back(std::move(e));
    } while (json.consume(','));
    json.expect('}', "at the end of the header");
  }
  json.finish();

  const std::uint8_t* data = bytes + 8 + n;
  const std::uint64_t data_size = size - 8 - n;
  for (const sd::Entry& e : entries) {
    if (e.dtype != "F32") sd::fail(source, "tensor '" + e.name + "': dtype '" + e.dtype + "' is not supported (only F32)");
    std::uint64_t count = 1;
    for (std::uint64_t dim : e.shape) {
      if (dim != 0 && count > (~std::uint64_t(0) / 4) / dim) sd::fail(source, "tensor '" + e.name + "': shape overflows");
      count *= dim;
    }
    if (e.begin > e.end || e.end > data_size)
      sd::fail(source, "tensor '" + e.name + "': data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                           "] are outside the " + std::to_string(data_size) + "-byte data section (truncated?)");
    if (e.end - e.begin != count * 4)
      sd::fail(source, "tensor '" + e.name + "': " + std::to_string(e.end - e.begin) + " bytes for a shape of " +
                           std::to_string(count) + " F32 values");
  }
  // The data must be covered exactly: sorted by begin, each tensor starts where the previous ended.
  std::vector<const sd::Entry*> by_offset;
  for (const sd::Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const sd::Entry* a, const sd::Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t covered = 0;
  for (const sd::Entry* e : by_offset) {
    if (e->begin != covered)
      sd::fail(source, "tensor '" + e->name + "' starts at data byte " + std::to_string(e->begin) + ", expected " +
                           std::to_string(covered) + " (overlap or hole in the data)");
    covered = e->end;
  }
  if (covered != data_size)
    sd::fail(source, "the data section has " + std::to_string(data_size - covered) + " bytes no tensor describes");

  const auto checksum = file.metadata.find(kSafetensorsChecksumKey);
  if (checksum == file.metadata.end()) {
    if (require_checksum) sd::fail(source, "no '" + std::string(kSafetensorsChecksumKey) + "' checksum in the metadata");
  } else {
    const std::string actual = sd::hex8(sd::canonical_crc(file.metadata, entries, data, std::size_t(data_size)));
    if (checksum->second != actual)
      sd::fail(source, "checksum mismatch: the file says " + checksum->second + ", its contents give " + actual +
                           " (corrupted file)");
  }

  for (const sd::Entry* e : by_offset) {  // data order, as written
    SafeTensor t;
    t.name = e->name;
    t.shape.assign(e->shape.begin(), e->shape.end());
    t.values.resize(std::size_t((e->end - e->begin) / 4));
    const std::uint8_t* p = data + e->begin;
    for (std::size_t i = 0; i < t.values.size(); ++i, p += 4) {
      const std::uint32_t u = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                              std::uint32_t(p[3]) << 24;
      std::memcpy(&t.values[i], &u, 4);
      if (!(std::fabs(t.values[i]) <= limits.max_magnitude))  // also NaN
        sd::fail(source, "tensor '" + t.name + "': value " + std::to_string(i) + " (" + std::to_string(t.values[i]) +
                             ") is not finite or beyond " + std::to_string(limits.max_magnitude) +
                             " in magnitude (InputLimits::max_magnitude)");
    }
    file.tensors.push_back(std::move(t));
  }
  return file;
}

inline void save_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_file_atomic(path, encode_safetensors(file, path));
}

inline SafetensorsFile load_safetensors(const std::string& path, bool require_checksum = true,
                                        const InputLimits& limits = default_limits()) {
  const std::vector<std::uint8_t> bytes = read_file(path, limits);
  return decode_safetensors(bytes.data(), bytes.size(), path, require_checksum, limits);
}

}  // namespace chord
