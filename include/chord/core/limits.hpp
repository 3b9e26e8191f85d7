// chord/core/limits.hpp: the bounds on every count, size and value read from a file, in one place.
//
// A file is read from outside: a CRC stops corruption, not a crafted file with a valid checksum. So
// every number that sizes an allocation or a loop is checked against these bounds BEFORE anything is
// allocated, and every message names the file, the field and the limit. The defaults are far above
// any model or dataset the project targets (MovieLens-1M: 3,706 items, d = 50; the largest public
// sequential-recommendation sets have ~10^7 items) and far below what a 2-core, few-GB machine can be
// asked for. A caller who knows better passes its own InputLimits (every reader takes one, defaulted).
#pragma once

#include <cstddef>
#include <cstdint>

namespace chord {

struct InputLimits {
  // Bytes of one input file (read_file, read_dataset): 4 GiB; /dev/zero or a FIFO is refused anyway.
  std::uint64_t max_input_bytes = std::uint64_t(4) << 30;
  // Model files (models/config.hpp, models/model_file.hpp).
  std::int64_t max_items = std::int64_t(1) << 25;      // catalogue size (sasrec/caser num_items)
  std::int64_t max_users = std::int64_t(1) << 25;      // caser num_users
  std::int64_t max_width = std::int64_t(1) << 14;      // d, FFN hidden width, Caser filters nh / nv
  std::int64_t max_blocks = 256;                       // SASRec blocks; heads <= d anyway
  std::int64_t max_sequence = std::int64_t(1) << 16;   // SASRec max_len, Caser L and T
  std::int64_t max_negatives = std::int64_t(1) << 16;  // Caser negatives per target
  std::int64_t max_parameters = std::int64_t(1) << 30; // floats in one model (4 GiB as fp32)
  // Hypernetwork files (personalize/cloud/hypernet_file.hpp): the widths the CLI's hypertrain accepts.
  std::int64_t max_hypernet_width = 4096;              // chord.hidden, chord.rank
  // |value| of a stored weight or profile value. Squares (layer norm, importance, attention dots)
  // of anything below 2^50 summed over 2^20 terms stay below FLT_MAX (2^128).
  float max_magnitude = 1.125899906842624e15f;         // 2^50
  // Dataset readers (data/reader.hpp): distinct user / item ids, mapped to dense indices.
  std::int64_t max_distinct_ids = std::int64_t(1) << 25;
};

// The defaults, for callers that do not override them.
inline const InputLimits& default_limits() {
  static const InputLimits limits{};
  return limits;
}

}  // namespace chord
