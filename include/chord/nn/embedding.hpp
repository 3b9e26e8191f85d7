// chord/nn/embedding.hpp: table lookup (gather) forward, scatter-add backward.
//
// Id 0 is padding everywhere in CHORD (item ids are 1-based; SASRec left-pads sequences with 0): it
// looks up a zero vector whatever row 0 of the table holds, and receives no gradient, so row 0 stays
// what init made it (zero). SASRec scales item embeddings by sqrt(d): `scale` does that in the same
// pass (and scales the gradient alike).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "chord/core/error.hpp"
#include "chord/nn/init.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::nn {

inline constexpr std::uint32_t kPaddingId = 0;

// Throws unless every ids[i] < rows; called before anything is written (ids come from data files).
inline void check_embedding_ids(const std::uint32_t* ids, std::size_t m, std::size_t rows) {
  for (std::size_t i = 0; i < m; ++i)
    CHORD_CHECK(ids[i] < rows, "embedding: id ", ids[i], " at position ", i, " is out of range (table has ", rows,
                " rows)");
}

// ids: [m] in [0, rows), table: [rows, d]  ->  out: [m, d] = scale * table[ids[i]] (0 for padding).
// An id out of range throws chord::Error naming the position, and nothing is written.
// zero_padding = false: id 0 reads row 0 like any other id (a learned padding row, caser_pytorch's).
inline void embedding_forward(const std::uint32_t* ids, std::size_t m, const float* table, std::size_t rows,
                              std::size_t d, float scale, float* out, bool zero_padding = true) {
  check_embedding_ids(ids, m, rows);
  for (std::size_t i = 0; i < m; ++i) {
    float* o = out + i * d;
    if (zero_padding && ids[i] == kPaddingId) {
      for (std::size_t j = 0; j < d; ++j) o[j] = 0.0f;
      continue;
    }
    const float* row = table + std::size_t(ids[i]) * d;
    for (std::size_t j = 0; j < d; ++j) o[j] = scale * row[j];
  }
}

// ids: [m], dout: [m, d]  ->  dtable: [rows, d], dtable[ids[i]] += scale * dout[i] (padding skipped).
inline void embedding_backward(const std::uint32_t* ids, std::size_t m, const float* dout, std::size_t rows,
                               std::size_t d, float scale, float* dtable, bool zero_padding = true) {
  check_embedding_ids(ids, m, rows);
  for (std::size_t i = 0; i < m; ++i) {
    if (zero_padding && ids[i] == kPaddingId) continue;
    float* row = dtable + std::size_t(ids[i]) * d;
    const float* g = dout + i * d;
    for (std::size_t j = 0; j < d; ++j) row[j] += scale * g[j];
  }
}

// An embedding table "<name>.weight" [rows, d].
struct Embedding {
  std::size_t rows = 0, d = 0;
  ParamId weight = 0;
  bool zero_padding = true;  // false: row 0 is a learned row (see embedding_forward)

  static Embedding create(Parameters& p, const std::string& name, std::size_t rows, std::size_t d) {
    CHORD_CHECK(rows > 0 && d > 0, "Embedding '", name, "': zero dimension (rows ", rows, ", d ", d, ")");
    Embedding e;
    e.rows = rows, e.d = d;
    e.weight = p.add(name + ".weight", {rows, d});
    return e;
  }

  // nn.Embedding's N(0, 1), then the padding row zeroed (nn.Embedding(padding_idx=0) does the same).
  void init(Parameters& p, Rng& rng) const {
    fill_normal(p.value(weight), rows * d, 0.0f, 1.0f, rng);
    zero_padding_row(p);
  }
  // After any other initialization (xavier_normal on the whole table, as the SASRec reference does).
  void zero_padding_row(Parameters& p) const { fill_constant(p.value(weight), d, 0.0f); }

  // ids: [m] -> out: [m, d]
  void forward(const Parameters& p, const std::uint32_t* ids, std::size_t m, float* out, float scale = 1.0f) const {
    embedding_forward(ids, m, p.value(weight), rows, d, scale, out, zero_padding);
  }
  // ids: [m], dout: [m, d] -> g[weight] +=
  void backward(GradientBuffer& g, const std::uint32_t* ids, std::size_t m, const float* dout,
                float scale = 1.0f) const {
    embedding_backward(ids, m, dout, rows, d, scale, g.of(weight), zero_padding);
  }
};

}  // namespace chord::nn
