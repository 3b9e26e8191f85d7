// chord/io/file_kind.hpp: what kind of file this is, from its first bytes, to say so when it is the
// wrong one ("'u.data' is not a model file (it looks like a text dataset)") instead of letting a
// strict reader fail on bytes that mean something else (a dataset's first 8 characters read as a
// safetensors header length of 662649484684441905).
//
// Sniffing only names the kind; the file's own reader still validates everything. The signs:
//   safetensors   u64 little-endian header length N, N + 8 <= file size, byte 8 = '{'; then, in the
//                 header's text: "chord-model" (io/model_file.hpp: format) -> model file,
//                 "hypernetworks" (personalize/cloud/hypernet_file.hpp: chord.kind) -> hypernetwork file,
//                 anything else -> another safetensors file
//   "CHRS"        strategy packet (io/strategy_packet.hpp);  "CHRP" profile message (io/profile_message.hpp)
//   text          printable ASCII, tabs and line breaks only: '{' or '[' first -> JSON report, else a
//                 text dataset (data/reader.hpp formats)
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/envelope.hpp"

namespace chord {

enum class FileKind {
  empty,
  model,            // safetensors, a chord model (chord train)
  hypernetworks,    // safetensors, CHORD's hypernetworks (chord hypertrain)
  safetensors,      // safetensors written by something else
  strategy_packet,  // CHRS
  profile_message,  // CHRP
  text_dataset,
  json_report,
  unknown,
};

// "a model file", "a text dataset", ...: the kind as a sentence names it.
inline std::string_view file_kind_phrase(FileKind kind) {
  switch (kind) {
    case FileKind::empty: return "an empty file";
    case FileKind::model: return "a model file";
    case FileKind::hypernetworks: return "a hypernetwork file";
    case FileKind::safetensors: return "a safetensors file that is not a chord model";
    case FileKind::strategy_packet: return "a strategy packet";
    case FileKind::profile_message: return "a profile message";
    case FileKind::text_dataset: return "a text dataset";
    case FileKind::json_report: return "a JSON report";
    case FileKind::unknown: return "a binary file of unknown kind";
  }
  return "a file of unknown kind";
}

inline constexpr std::size_t kSniffBytes = 64 * 1024;  // enough for a chord safetensors header

// The kind of a file whose first bytes are `head` (at most kSniffBytes of them) and whose size is
// `file_size`.
inline FileKind sniff_file_kind(const std::uint8_t* head, std::size_t size, std::uint64_t file_size) {
  if (file_size == 0 || size == 0) return FileKind::empty;
  if (size >= 4 && std::memcmp(head, kStrategyFormat.magic, 4) == 0) return FileKind::strategy_packet;
  if (size >= 4 && std::memcmp(head, kProfileFormat.magic, 4) == 0) return FileKind::profile_message;
  if (size >= 9 && head[8] == '{') {
    std::uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = header << 8 | head[i];
    if (header >= 2 && header <= file_size - 8) {
      const std::string_view text(reinterpret_cast<const char*>(head + 8),
                                  std::size_t(std::min<std::uint64_t>(header, size - 8)));
      if (text.find("\"chord-model\"") != std::string_view::npos) return FileKind::model;
      if (text.find("\"hypernetworks\"") != std::string_view::npos) return FileKind::hypernetworks;
      return FileKind::safetensors;
    }
  }
  std::size_t first = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const std::uint8_t c = head[i];
    if (!(c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7f))) return FileKind::unknown;
  }
  while (first < size && (head[first] == ' ' || head[first] == '\t' || head[first] == '\n' || head[first] == '\r'))
    ++first;
  if (first < size && (head[first] == '{' || head[first] == '[')) return FileKind::json_report;
  return first < size ? FileKind::text_dataset : FileKind::empty;
}

// The kind of the file at `path` (its first kSniffBytes). Throws chord::Error when it cannot be read,
// or is not a regular file (a FIFO would block, /dev/zero never end: io/atomic_file.hpp).
inline FileKind sniff_file_kind(const std::string& path) {
  std::uint64_t file_size = 0;
  const std::vector<std::uint8_t> head = read_file_head(path, kSniffBytes, file_size);
  return sniff_file_kind(head.data(), head.size(), file_size);
}

// Throws "<what> '<path>': this is not <expected> (it looks like <found>)" unless the file at `path`
// is of kind `expected`. `what` names the role in the user's terms ("--model", "model file").
// `also_accept`: a kind let through to the file's own reader too (a text dataset with a non-ASCII byte
// sniffs as unknown: its reader says what is wrong with it).
inline void expect_file_kind(const std::string& path, FileKind expected, std::string_view what,
                             FileKind also_accept = FileKind::empty) {
  const FileKind found = sniff_file_kind(path);
  if (found == expected || (found == also_accept && found != FileKind::empty)) return;
  std::string phrase(file_kind_phrase(expected));
  throw Error(std::string(what) + " '" + path + "': this is not " + phrase + " (it looks like " +
              std::string(file_kind_phrase(found)) + ")");
}

}  // namespace chord
