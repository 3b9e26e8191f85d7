// examples/chord/common.hpp: what the `chord` subcommands share: data loading (a file, or the synthetic
// generator when no --data is given), the training progress display, and small output helpers.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

#include "chord/core/error.hpp"
#include "chord/data/dataset.hpp"
#include "chord/data/reader.hpp"
#include "chord/data/synthetic.hpp"
#include "chord/io/file_kind.hpp"
#include "chord/models/config.hpp"
#include "chord/models/data_binding.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/trainer.hpp"

namespace chord::cli {

// The synthetic data used when no --data is given (data/synthetic.hpp): small enough to train in seconds.
inline data::SyntheticOptions default_synthetic(std::uint64_t seed) {
  data::SyntheticOptions o;
  o.num_users = 1000;
  o.num_items = 500;
  o.seed = seed;
  return o;
}

struct LoadedData {
  data::Dataset dataset;
  models::Metadata source;  // "data.*" entries recorded in a model file, to find the same data again
};

// `path` empty: the synthetic generator (said on stdout). Otherwise the file, any supported format.
inline LoadedData load_data(const std::string& path, std::uint64_t synthetic_seed) {
  LoadedData out;
  if (path.empty()) {
    const data::SyntheticOptions o = default_synthetic(synthetic_seed);
    std::printf("no --data given: using synthetic data (%d users, %d items, seed %llu; see docs/data.md)\n",
                o.num_users, o.num_items, static_cast<unsigned long long>(o.seed));
    out.dataset = data::make_synthetic(o).dataset;
    out.source = {{"data.source", "synthetic"}, {"data.synthetic_seed", std::to_string(o.seed)}};
  } else {
    expect_file_kind(path, FileKind::text_dataset, "--data", FileKind::unknown);
    out.dataset = data::read_dataset(path);
    out.source = {{"data.source", path}};
  }
  for (const auto& [key, value] : models::binding_metadata(out.dataset)) out.source[key] = value;
  const data::DatasetStats s = data::compute_stats(out.dataset);
  std::printf("data: %s: %lld users, %lld items, %lld interactions (%.1f per user)\n", out.dataset.name.c_str(),
              static_cast<long long>(s.users), static_cast<long long>(s.items), static_cast<long long>(s.interactions),
              s.mean_length);
  return out;
}

// The data a model was trained on, when the user gives no --data: synthetic data is regenerated from
// the recorded seed; a file must be named again.
inline LoadedData load_data_like(const std::string& path, const models::Metadata& model_metadata) {
  if (!path.empty()) return load_data(path, 0);
  const auto source = model_metadata.find("data.source");
  if (source != model_metadata.end() && source->second == "synthetic") {
    const auto seed = model_metadata.find("data.synthetic_seed");
    std::uint64_t value = 1;
    if (seed != model_metadata.end()) {
      const std::string& t = seed->second;
      const auto r = std::from_chars(t.data(), t.data() + t.size(), value);
      CHORD_CHECK(r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty(),
                  "model: metadata 'data.synthetic_seed' = '", t, "' is not an unsigned integer");
    }
    return load_data("", value);
  }
  throw Error("no --data given, and the model was trained on '" +
              (source == model_metadata.end() ? std::string("unknown data") : source->second) +
              "': pass --data with that file");
}

// The data for a loaded model (load_data_like), checked against the data the model records
// (models/data_binding.hpp: refused unless allow_other_data) and renumbered to the model's id maps.
inline LoadedData load_data_for(const std::string& path, const models::LoadedModel& model,
                                const std::string& model_path, bool allow_other_data) {
  LoadedData out = load_data_like(path, model.metadata);
  const std::int64_t items = model.sasrec ? model.sasrec->config().num_items : model.caser->config().num_items;
  const std::int64_t users = model.sasrec ? -1 : model.caser->config().num_users;
  const models::DataBinding binding = models::binding_from(model.metadata, "model '" + model_path + "'", items, users);
  models::check_model_data(binding, model_path, out.dataset, allow_other_data);
  out.dataset = models::renumber_for_model(std::move(out.dataset), binding, model_path);
  CHORD_CHECK(out.dataset.num_items <= items && (users < 0 || out.dataset.num_users <= users), "'", out.dataset.name,
              "' has ", out.dataset.num_items, " items and ", out.dataset.num_users, " users, model '", model_path,
              "' knows ", items, " items", users < 0 ? "" : " and " + std::to_string(users) + " users");
  return out;
}

// The dense index of the user whose id in the data file is `user_id` (what --user takes).
inline std::int32_t user_index_of(const data::Dataset& d, long long user_id) {
  const auto found = std::lower_bound(d.user_ids.begin(), d.user_ids.end(), user_id);
  CHORD_CHECK(found != d.user_ids.end() && *found == user_id, "--user ", user_id, ": no user with this id in '", d.name,
              "' (its ids run from ", d.user_ids.front(), " to ", d.user_ids.back(), ")");
  return std::int32_t(found - d.user_ids.begin());
}

inline bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

// Training progress: a bar redrawn in place on a terminal; one line per epoch otherwise (logs).
class Progress {
 public:
  explicit Progress(bool terminal) : terminal_(terminal) {}

  void batch(const models::BatchProgress& p) {
    if (!terminal_) return;
    const int width = 24;
    const int filled = p.steps ? int(double(width) * double(p.step) / double(p.steps)) : width;
    std::string bar(std::size_t(filled), '#');
    bar.resize(std::size_t(width), '.');
    std::fprintf(stderr, "\r  epoch %d/%d [%s] %zu/%zu  loss %.4f  %.0f ex/s   ", p.epoch, p.epochs, bar.c_str(), p.step,
                 p.steps, p.loss, p.examples_per_second);
    std::fflush(stderr);
  }

  void epoch(const models::EpochReport& r) {
    if (terminal_) std::fprintf(stderr, "\r%*s\r", 90, "");
    std::printf("epoch %3d  loss %.4f  %.2f s  %.0f ex/s", r.epoch, r.loss, r.seconds, r.examples_per_second);
    if (r.evaluated)
      std::printf("  | valid HR@10 %.4f NDCG@10 %.4f (%.1f s)%s", r.valid.hr_10, r.valid.ndcg_10, r.eval_seconds,
                  r.best ? "  *best" : "");
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  bool terminal_;
};

// JSON string literal (for the reports).
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += char(c);
    else if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else out += char(c);
  }
  return out + "\"";
}

// 6 significant digits, '.' whatever the locale (printf's %g would write "0,5" under de_DE): for
// metadata and reports.
inline std::string number_text(double v) {
  char buffer[64];
  const auto r = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::general, 6);
  return std::string(buffer, r.ptr);
}

inline std::string json_number(double v) { return std::isfinite(v) ? number_text(v) : "null"; }

}  // namespace chord::cli
