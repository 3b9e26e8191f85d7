// chord/ref/embedding.hpp: reference embedding gather (dense fp32 table or quantized table).
//
// Ids come from data files and from users' sequences: they are validated before anything is written,
// so a bad id gives a chord::Error naming its position and value, and never an out-of-bounds read (and
// the output is left untouched, not half written).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "chord/core/error.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"

namespace chord::ref {

namespace detail {
// Throws unless every ids[i] is in [0, rows).
template <typename Id>
void check_ids(const Id* ids, std::size_t m, std::size_t rows, const char* where) {
  static_assert(std::is_integral_v<Id>, "embedding ids must be integers");
  for (std::size_t i = 0; i < m; ++i) {
    bool in_range = true;
    if constexpr (std::is_signed_v<Id>) in_range = ids[i] >= 0;
    in_range = in_range && static_cast<std::uint64_t>(ids[i]) < static_cast<std::uint64_t>(rows);
    // +ids[i] prints a char-sized id as a number, not as a character.
    CHORD_CHECK(in_range, where, ": id ", +ids[i], " at position ", i, " is out of range (table has ", rows,
                " rows)");
  }
}
}  // namespace detail

// out[i] = table[ids[i]].  table: [rows, d], ids: [m] (any integer type), out: [m, d].
template <typename Id>
void embedding_gather(const float* table, std::size_t rows, std::size_t d, const Id* ids, std::size_t m,
                      float* out) {
  detail::check_ids(ids, m, rows, "embedding_gather");
  for (std::size_t i = 0; i < m; ++i) {
    const float* row = table + static_cast<std::size_t>(ids[i]) * d;
    for (std::size_t j = 0; j < d; ++j) out[i * d + j] = row[j];
  }
}

// A quantized table: each row is one channel, dequantized on the way out: out[i][j] = q[id][j] * s[id].
// table: [rows, d] as a MixedMatrix, ids: [m], out: [m, table.cols()]. A pruned row (0 bits) reads zeros.
template <typename Id>
void embedding_gather(const MixedMatrix& table, const Id* ids, std::size_t m, float* out) {
  detail::check_ids(ids, m, table.rows(), "embedding_gather (quantized table)");
  const std::size_t d = table.cols();
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t id = static_cast<std::size_t>(ids[i]);
    const float scale = table.scale(id);
    for (std::size_t j = 0; j < d; ++j)
      out[i * d + j] = dequantize(static_cast<std::int8_t>(table.code(id, j)), scale);
  }
}

}  // namespace chord::ref
