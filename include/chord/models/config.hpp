// chord/models/config.hpp: the architectures' hyperparameters, and their text form for model files.
//
// A model file (io/safetensors.hpp, models/model_file.hpp) stores the architecture and every
// hyperparameter as a string map in its "__metadata__", so that a file can be rebuilt without guessing
// and a file of another architecture (or of the same one with other shapes) is refused with a message
// that names the field. Defaults follow docs/design.md#models and the papers:
//   SASRec (Kang & McAuley 2018): d = 50, 2 blocks, 1 head, max length 200 (MovieLens) / 50 (sparse),
//     dropout 0.2 (MovieLens) / 0.5 (sparse), layernorm eps 1e-8 (the reference implementations'), FFN
//     width = d, an output projection in attention (torch's nn.MultiheadAttention, as SASRec.pytorch).
//   Caser (Tang & Wang 2018): d = 50, L = 5, T = 3, nh = 16, nv = 4, 3 negatives per target, dropout 0.5.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <system_error>

#include "chord/core/error.hpp"
#include "chord/core/limits.hpp"

namespace chord::models {

using Metadata = std::map<std::string, std::string>;

// The block arrangement of SASRec (docs/models.md, "Graph variants"). chord: the default (below); the
// others are the graphs SASRec.pytorch has shipped, so that its checkpoints run here exactly
// (docs/interop.md). Stored as metadata "sasrec.variant"; absent means chord.
//   chord      q = LN_a(x); x1 = q + MHA(q, x, x); f = LN_f(x1); x = f + FFN(f); padded positions skipped
//   legacy     the same blocks, but the left-padded positions run too (zero-embedded, not masked as keys)
//   norm_first x1 = x + MHA(a, a, a) with a = LN_a(x); x = x1 + FFN(LN_f(x1)); padded positions run
//   post_ln    x1 = LN_a(x + MHA(x, x, x)); x = LN_f(x1 + FFN(x1)); padded positions run
enum class SasrecVariant { chord, legacy, norm_first, post_ln };

inline const char* variant_name(SasrecVariant v) {
  switch (v) {
    case SasrecVariant::legacy: return "legacy";
    case SasrecVariant::norm_first: return "norm-first";
    case SasrecVariant::post_ln: return "post-ln";
    default: return "chord";
  }
}

// `where` names the source in the error.
inline SasrecVariant parse_sasrec_variant(const std::string& name, const std::string& where) {
  for (SasrecVariant v : {SasrecVariant::chord, SasrecVariant::legacy, SasrecVariant::norm_first, SasrecVariant::post_ln})
    if (name == variant_name(v)) return v;
  throw Error(where + ": unknown SASRec variant '" + name + "' (expected chord, legacy, norm-first or post-ln)");
}

struct SasrecConfig {
  std::int32_t num_items = 0;  // catalogue: ids 1..num_items (0 is padding)
  std::int32_t d = 50;
  std::int32_t blocks = 2;
  std::int32_t heads = 1;
  std::int32_t max_len = 200;
  std::int32_t hidden = 50;  // FFN width
  float dropout = 0.2f;
  float layernorm_eps = 1e-8f;
  bool output_projection = true;
  SasrecVariant variant = SasrecVariant::chord;

  // Whether the left-padded positions of a history run through the blocks (every variant but chord's).
  bool runs_padding() const { return variant != SasrecVariant::chord; }

  void validate() const {
    CHORD_CHECK(num_items >= 1, "sasrec: num_items must be at least 1, got ", num_items);
    CHORD_CHECK(d >= 1 && blocks >= 1 && heads >= 1 && max_len >= 1 && hidden >= 1,
                "sasrec: d, blocks, heads, max_len and hidden must be positive (d ", d, ", blocks ", blocks,
                ", heads ", heads, ", max_len ", max_len, ", hidden ", hidden, ")");
    CHORD_CHECK(d % heads == 0, "sasrec: d = ", d, " is not divisible by heads = ", heads);
    CHORD_CHECK(dropout >= 0.0f && dropout < 1.0f, "sasrec: dropout ", dropout, " is not in [0, 1)");
    CHORD_CHECK(layernorm_eps > 0.0f && std::isfinite(layernorm_eps), "sasrec: layernorm eps must be positive");
  }
};

struct CaserConfig {
  std::int32_t num_items = 0;  // ids 1..num_items
  std::int32_t num_users = 0;  // user indices 0..num_users-1 (the dataset's dense numbering)
  std::int32_t d = 50;
  std::int32_t L = 5;   // inputs: the last L items
  std::int32_t T = 3;   // targets predicted together in training
  std::int32_t nh = 16; // horizontal filters per height 1..L
  std::int32_t nv = 4;  // vertical filters
  std::int32_t negatives = 3;  // per target, in training
  float dropout = 0.5f;
  // The padding id 0 of a short window: chord's zero row (false), or, as caser_pytorch computes it, item
  // embedding row 0 as a learned row like any other (true; nn.Embedding without padding_idx). Stored as
  // metadata "caser.variant" = "caser-pytorch"; absent means chord's.
  bool learned_padding_row = false;

  // fc1's fan-in; validate() ensures it fits an int32 (46341 * 46341 does not).
  std::int32_t conv_features() const { return std::int32_t(std::int64_t(nv) * d + std::int64_t(L) * nh); }

  void validate() const {
    CHORD_CHECK(num_items >= 1 && num_users >= 1, "caser: num_items and num_users must be positive (", num_items,
                ", ", num_users, ")");
    CHORD_CHECK(d >= 1 && L >= 1 && T >= 1 && nh >= 1 && nv >= 1 && negatives >= 1,
                "caser: d, L, T, nh, nv and negatives must be positive (d ", d, ", L ", L, ", T ", T, ", nh ", nh,
                ", nv ", nv, ", negatives ", negatives, ")");
    CHORD_CHECK(dropout >= 0.0f && dropout < 1.0f, "caser: dropout ", dropout, " is not in [0, 1)");
    const std::int64_t features = std::int64_t(nv) * d + std::int64_t(L) * nh;
    CHORD_CHECK(features <= 2147483647, "caser: nv * d + L * nh = ", features, " convolution features overflow an int32");
  }
};

namespace detail {

// Shortest text that reads back to the same float, independent of the C locale (never "0,5").
inline std::string float_text(float v) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

inline const std::string& meta_text(const Metadata& m, const std::string& key, const std::string& where) {
  const auto it = m.find(key);
  CHORD_CHECK(it != m.end(), where, ": metadata has no '", key, "'");
  return it->second;
}

// Reads metadata[key] as an integer in [low, high] (whole text, decimal, no spaces or sign '+');
// `where` names the file, `limit_name` the bound, in errors.
inline std::int32_t meta_int(const Metadata& m, const std::string& key, const std::string& where,
                             std::int64_t low = -2147483647, std::int64_t high = 2147483647,
                             const char* limit_name = "int32") {
  const std::string& s = meta_text(m, key, where);
  long long v = 0;
  const auto result = std::from_chars(s.data(), s.data() + s.size(), v);
  CHORD_CHECK(result.ec != std::errc::invalid_argument && result.ptr == s.data() + s.size() && !s.empty(), where,
              ": metadata '", key, "' = '", s, "' is not an integer");
  CHORD_CHECK(result.ec != std::errc::result_out_of_range && v >= low && v <= high, where, ": metadata '", key,
              "' = '", s, "' is outside ", low, "..", high, " (", limit_name, ")");
  return static_cast<std::int32_t>(v);
}
// Reads metadata[key] as a finite float, in the C locale's format whatever the process's locale.
inline float meta_float(const Metadata& m, const std::string& key, const std::string& where) {
  const std::string& s = meta_text(m, key, where);
  float v = 0.0f;
  const auto result = std::from_chars(s.data(), s.data() + s.size(), v);
  CHORD_CHECK(result.ec == std::errc() && result.ptr == s.data() + s.size() && !s.empty() && std::isfinite(v), where,
              ": metadata '", key, "' = '", s, "' is not a finite number");
  return v;
}

// Throws if `count` floats (a lower bound of what the config allocates) pass the limit.
inline void check_parameter_count(long double count, const InputLimits& limits, const std::string& where) {
  CHORD_CHECK(count <= static_cast<long double>(limits.max_parameters), where, ": the metadata asks for at least ",
              static_cast<double>(count), " parameters, above the limit of ", limits.max_parameters,
              " (InputLimits::max_parameters)");
}

}  // namespace detail

// A lower bound of the floats the model of a config registers (within a small factor of the exact
// count), computed without overflow: checked against InputLimits::max_parameters and against the
// floats a model file holds before the model is built.
inline long double minimum_parameters(const SasrecConfig& c) {
  const long double d = c.d;  // embeddings; per block the q/k/v projections and the two FFN matrices
  return (c.num_items + 1.0L + c.max_len + 1.0L) * d + c.blocks * (3 * d * d + 2 * d * c.hidden);
}
inline long double minimum_parameters(const CaserConfig& c) {
  const long double d = c.d, L = c.L;  // item, output (2d) and user embeddings, fc1, the filters
  return (c.num_items + 1.0L) * 3 * d + (c.num_users + 1.0L) * d + (c.nv * d + L * c.nh) * d +
         c.nh * L * (L + 1) / 2 * d + c.nv * L;
}

inline Metadata to_metadata(const SasrecConfig& c) {
  Metadata m = {{"architecture", "sasrec"},
          {"sasrec.num_items", std::to_string(c.num_items)},
          {"sasrec.d", std::to_string(c.d)},
          {"sasrec.blocks", std::to_string(c.blocks)},
          {"sasrec.heads", std::to_string(c.heads)},
          {"sasrec.max_len", std::to_string(c.max_len)},
          {"sasrec.hidden", std::to_string(c.hidden)},
          {"sasrec.dropout", detail::float_text(c.dropout)},
          {"sasrec.layernorm_eps", detail::float_text(c.layernorm_eps)},
          {"sasrec.output_projection", c.output_projection ? "1" : "0"}};
  if (c.variant != SasrecVariant::chord) m["sasrec.variant"] = variant_name(c.variant);  // absent = chord
  return m;
}

// Reads and validates the config, every field against `limits` (core/limits.hpp): nothing is allocated
// here, so a crafted file is refused before the model is built.
inline SasrecConfig sasrec_config_from(const Metadata& m, const std::string& where,
                                       const InputLimits& limits = default_limits()) {
  SasrecConfig c;
  c.num_items = detail::meta_int(m, "sasrec.num_items", where, 1, limits.max_items, "InputLimits::max_items");
  c.d = detail::meta_int(m, "sasrec.d", where, 1, limits.max_width, "InputLimits::max_width");
  c.blocks = detail::meta_int(m, "sasrec.blocks", where, 1, limits.max_blocks, "InputLimits::max_blocks");
  c.heads = detail::meta_int(m, "sasrec.heads", where, 1, c.d, "at most d");
  c.max_len = detail::meta_int(m, "sasrec.max_len", where, 1, limits.max_sequence, "InputLimits::max_sequence");
  c.hidden = detail::meta_int(m, "sasrec.hidden", where, 1, limits.max_width, "InputLimits::max_width");
  c.dropout = detail::meta_float(m, "sasrec.dropout", where);
  c.layernorm_eps = detail::meta_float(m, "sasrec.layernorm_eps", where);
  const std::int32_t projection = detail::meta_int(m, "sasrec.output_projection", where);
  CHORD_CHECK(projection == 0 || projection == 1, where, ": metadata 'sasrec.output_projection' must be 0 or 1");
  c.output_projection = projection == 1;
  const auto variant = m.find("sasrec.variant");
  if (variant != m.end()) c.variant = parse_sasrec_variant(variant->second, where + ": metadata 'sasrec.variant'");
  detail::check_parameter_count(minimum_parameters(c), limits, where);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return c;
}

inline Metadata to_metadata(const CaserConfig& c) {
  Metadata m = {{"architecture", "caser"},
          {"caser.num_items", std::to_string(c.num_items)},
          {"caser.num_users", std::to_string(c.num_users)},
          {"caser.d", std::to_string(c.d)},
          {"caser.L", std::to_string(c.L)},
          {"caser.T", std::to_string(c.T)},
          {"caser.nh", std::to_string(c.nh)},
          {"caser.nv", std::to_string(c.nv)},
          {"caser.negatives", std::to_string(c.negatives)},
          {"caser.dropout", detail::float_text(c.dropout)}};
  if (c.learned_padding_row) m["caser.variant"] = "caser-pytorch";  // absent = chord
  return m;
}

inline CaserConfig caser_config_from(const Metadata& m, const std::string& where,
                                     const InputLimits& limits = default_limits()) {
  CaserConfig c;
  c.num_items = detail::meta_int(m, "caser.num_items", where, 1, limits.max_items, "InputLimits::max_items");
  c.num_users = detail::meta_int(m, "caser.num_users", where, 1, limits.max_users, "InputLimits::max_users");
  c.d = detail::meta_int(m, "caser.d", where, 1, limits.max_width, "InputLimits::max_width");
  c.L = detail::meta_int(m, "caser.L", where, 1, limits.max_sequence, "InputLimits::max_sequence");
  c.T = detail::meta_int(m, "caser.T", where, 1, limits.max_sequence, "InputLimits::max_sequence");
  c.nh = detail::meta_int(m, "caser.nh", where, 1, limits.max_width, "InputLimits::max_width");
  c.nv = detail::meta_int(m, "caser.nv", where, 1, limits.max_width, "InputLimits::max_width");
  c.negatives = detail::meta_int(m, "caser.negatives", where, 1, limits.max_negatives, "InputLimits::max_negatives");
  c.dropout = detail::meta_float(m, "caser.dropout", where);
  const auto variant = m.find("caser.variant");
  if (variant != m.end()) {
    CHORD_CHECK(variant->second == "caser-pytorch" || variant->second == "chord", where, ": metadata 'caser.variant' = '",
                variant->second, "' is not a Caser variant (expected chord or caser-pytorch)");
    c.learned_padding_row = variant->second == "caser-pytorch";
  }
  detail::check_parameter_count(minimum_parameters(c), limits, where);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return c;
}

}  // namespace chord::models
