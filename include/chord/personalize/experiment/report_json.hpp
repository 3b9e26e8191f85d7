// chord/personalize/experiment/report_json.hpp: the experiment report as JSON (nlohmann/json, header-only;
// Debian nlohmann-json3-dev), written atomically, and read back strictly.
//
// Layout (keys in the order written; metrics like `chord eval --report`'s: "hr@5", "ndcg@5", ...):
//   {"kind": "chord-experiment", "version": 1, "architecture", "random_architecture", "fingerprint",
//    "personalized_layers", "personalized_channels", "personalized_weights", "fp32_personalized_bytes",
//    "profile_dim", "profile_message_bytes", "hypernetworks", "budgets": [...], "palette": [4 widths],
//    "evaluation_users", "qat_users", "population_users", "threads", "seed", "qat_steps", "qat_lr",
//    "results": [{"method", "budget", "available", "note", "users", "sampled": {...}, "full": {...},
//                 "average_bits", "min_bits", "max_bits", "device_bytes", "bytes_sent", "bytes_uploaded",
//                 "packet_ratio", "adaptation_seconds", "device_seconds", "device_seconds_mean",
//                 "mean_best_step", "latency_us"}, ...]}
// Per-user metrics stay in memory (MethodResult::per_user); the file holds the means. Numbers are
// written with nlohmann's shortest round-trip form, so reading a report back gives the same doubles.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "chord/core/error.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/personalize/experiment/report.hpp"

namespace chord::personalize {

inline nlohmann::ordered_json ranking_json(const UserRanking& r) {
  return {{"hr@5", r.hr5}, {"ndcg@5", r.ndcg5}, {"hr@10", r.hr10}, {"ndcg@10", r.ndcg10}};
}

inline nlohmann::ordered_json experiment_json(const ExperimentReport& report) {
  nlohmann::ordered_json j;
  j["kind"] = "chord-experiment";
  j["version"] = 1;
  j["architecture"] = report.architecture;
  j["random_architecture"] = report.random_architecture;
  j["fingerprint"] = report.fingerprint;
  j["personalized_layers"] = report.personalized_layers;
  j["personalized_channels"] = report.personalized_channels;
  j["personalized_weights"] = report.personalized_weights;
  j["fp32_personalized_bytes"] = report.fp32_personalized_bytes;
  j["profile_dim"] = report.profile_dim;
  j["profile_message_bytes"] = report.profile_message_bytes;
  j["hypernetworks"] = report.hypernetworks;
  j["budgets"] = report.budgets;
  j["palette"] = {report.palette[0], report.palette[1], report.palette[2], report.palette[3]};
  j["evaluation_users"] = report.evaluation_users;
  j["qat_users"] = report.qat_users;
  j["population_users"] = report.population_users;
  j["threads"] = report.threads;
  j["seed"] = report.seed;
  j["qat_steps"] = report.qat_steps;
  j["qat_lr"] = report.qat_lr;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const MethodResult& r : report.results) {
    results.push_back({{"method", r.method},
                       {"budget", r.budget},
                       {"available", r.available},
                       {"note", r.note},
                       {"users", r.users},
                       {"sampled", ranking_json(r.sampled)},
                       {"full", ranking_json(r.full)},
                       {"average_bits", r.average_bits},
                       {"min_bits", r.min_bits},
                       {"max_bits", r.max_bits},
                       {"device_bytes", r.device_bytes},
                       {"bytes_sent", r.bytes_sent},
                       {"bytes_uploaded", r.bytes_uploaded},
                       {"packet_ratio", r.packet_ratio},
                       {"adaptation_seconds", r.adaptation_seconds},
                       {"device_seconds", r.device_seconds},
                       {"device_seconds_mean", r.device_seconds_mean},
                       {"mean_best_step", r.mean_best_step},
                       {"latency_us", r.latency_us}});
  }
  j["results"] = std::move(results);
  return j;
}

inline std::string experiment_json_text(const ExperimentReport& report) { return experiment_json(report).dump(2) + "\n"; }

// Atomic write (io/atomic_file.hpp): a crash never leaves half a report.
inline void write_experiment_report(const std::string& path, const ExperimentReport& report) {
  const std::string text = experiment_json_text(report);
  write_file_atomic(path, text.data(), text.size());
}

namespace detail {

template <typename T>
struct is_integer_vector : std::false_type {};
template <typename T>
struct is_integer_vector<std::vector<T>> : std::bool_constant<std::is_integral_v<T> && !std::is_same_v<T, bool>> {};

// v as the integer type T, or chord::Error naming `what`. nlohmann converts -3 to a size_t
// 18446744073709551613, 2^32 + 1 to an int 1, and 9e22 (a float: too big for any integer) to an int by
// undefined behaviour, all without complaint: the value must be an integer of T's range.
template <typename T>
T json_integer(const nlohmann::json& v, const std::string& what) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  const bool integer = v.is_number_unsigned() || (v.is_number_integer() && std::is_signed_v<T>);
  CHORD_CHECK(integer, what, " has the wrong type (", v.dump(), " is not ",
              std::is_signed_v<T> ? "an integer" : "a non-negative integer", ")");
  const bool in_range = v.is_number_unsigned()
                            ? v.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<T>::max())
                            : v.get<std::int64_t>() >= std::int64_t(std::numeric_limits<T>::min()) &&
                                  v.get<std::int64_t>() <= std::int64_t(std::numeric_limits<T>::max());
  CHORD_CHECK(in_range, what, " has the wrong type (", v.dump(), " is out of range for a ", 8 * sizeof(T), "-bit ",
              std::is_signed_v<T> ? "integer" : "unsigned integer", ")");
  return std::is_signed_v<T> ? T(v.get<std::int64_t>()) : T(v.get<std::uint64_t>());
}

// j[key] as T, or chord::Error naming the source and the key's path.
template <typename T>
T json_field(const nlohmann::json& j, const char* key, const std::string& where) {
  CHORD_CHECK(j.is_object(), where, ": expected an object");
  const auto found = j.find(key);
  CHORD_CHECK(found != j.end(), where, ": no '", key, "'");
  const std::string what = where + ": '" + key + "'";
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return json_integer<T>(*found, what);
  } else if constexpr (is_integer_vector<T>::value) {
    CHORD_CHECK(found->is_array(), what, " has the wrong type (", found->dump(), " is not an array)");
    T out;
    for (std::size_t i = 0; i < found->size(); ++i)
      out.push_back(json_integer<typename T::value_type>((*found)[i], what + "[" + std::to_string(i) + "]"));
    return out;
  } else {
    try {
      return found->get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw Error(what + " has the wrong type (" + e.what() + ")");
    }
  }
}

inline UserRanking ranking_from_json(const nlohmann::json& j, const char* key, const std::string& where) {
  const std::string at = where + "." + key;
  const nlohmann::json metrics = json_field<nlohmann::json>(j, key, where);
  UserRanking r;
  r.hr5 = json_field<double>(metrics, "hr@5", at), r.ndcg5 = json_field<double>(metrics, "ndcg@5", at);
  r.hr10 = json_field<double>(metrics, "hr@10", at), r.ndcg10 = json_field<double>(metrics, "ndcg@10", at);
  return r;
}

}  // namespace detail

// Parses a report written by experiment_json_text; `source` names it in errors.
inline ExperimentReport parse_experiment_report(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error("experiment report '" + source + "': not JSON (" + e.what() + ")");
  }
  const std::string where = "experiment report '" + source + "'";
  using detail::json_field;
  CHORD_CHECK(json_field<std::string>(j, "kind", where) == "chord-experiment", where, ": kind is not 'chord-experiment'");
  CHORD_CHECK(json_field<int>(j, "version", where) == 1, where, ": version is not 1");
  ExperimentReport r;
  r.architecture = json_field<std::string>(j, "architecture", where);
  r.random_architecture = json_field<std::string>(j, "random_architecture", where);
  r.fingerprint = json_field<std::string>(j, "fingerprint", where);
  r.personalized_layers = json_field<std::size_t>(j, "personalized_layers", where);
  r.personalized_channels = json_field<std::size_t>(j, "personalized_channels", where);
  r.personalized_weights = json_field<double>(j, "personalized_weights", where);
  r.fp32_personalized_bytes = json_field<double>(j, "fp32_personalized_bytes", where);
  r.profile_dim = json_field<std::size_t>(j, "profile_dim", where);
  r.profile_message_bytes = json_field<std::size_t>(j, "profile_message_bytes", where);
  r.hypernetworks = json_field<std::string>(j, "hypernetworks", where);
  r.budgets = json_field<std::vector<double>>(j, "budgets", where);
  const auto palette = json_field<std::vector<int>>(j, "palette", where);
  CHORD_CHECK(palette.size() == 4, where, ": palette has ", palette.size(), " widths, expected 4");
  for (std::size_t k = 0; k < 4; ++k) {
    CHORD_CHECK(palette[k] >= 0 && palette[k] <= 8, where, ": palette width ", palette[k], " is not in 0..8");
    r.palette[k] = std::uint8_t(palette[k]);
  }
  check_palette(r.palette, where);
  r.evaluation_users = json_field<std::size_t>(j, "evaluation_users", where);
  r.qat_users = json_field<std::size_t>(j, "qat_users", where);
  r.population_users = json_field<std::size_t>(j, "population_users", where);
  r.threads = json_field<std::size_t>(j, "threads", where);
  r.seed = json_field<std::uint64_t>(j, "seed", where);
  r.qat_steps = json_field<std::size_t>(j, "qat_steps", where);
  r.qat_lr = json_field<double>(j, "qat_lr", where);
  const nlohmann::json results = json_field<nlohmann::json>(j, "results", where);
  CHORD_CHECK(results.is_array(), where, ": 'results' is not an array");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const nlohmann::json& e = results[i];
    const std::string at = where + ": results[" + std::to_string(i) + "]";
    MethodResult m;
    m.method = json_field<std::string>(e, "method", at);
    m.budget = json_field<double>(e, "budget", at);
    m.available = json_field<bool>(e, "available", at);
    m.note = json_field<std::string>(e, "note", at);
    m.users = json_field<std::size_t>(e, "users", at);
    m.sampled = detail::ranking_from_json(e, "sampled", at);
    m.full = detail::ranking_from_json(e, "full", at);
    m.average_bits = json_field<double>(e, "average_bits", at);
    m.min_bits = json_field<double>(e, "min_bits", at);
    m.max_bits = json_field<double>(e, "max_bits", at);
    m.device_bytes = json_field<double>(e, "device_bytes", at);
    m.bytes_sent = json_field<double>(e, "bytes_sent", at);
    m.bytes_uploaded = json_field<double>(e, "bytes_uploaded", at);
    m.packet_ratio = json_field<double>(e, "packet_ratio", at);
    m.adaptation_seconds = json_field<double>(e, "adaptation_seconds", at);
    m.device_seconds = json_field<double>(e, "device_seconds", at);
    m.device_seconds_mean = json_field<double>(e, "device_seconds_mean", at);
    m.mean_best_step = json_field<double>(e, "mean_best_step", at);
    m.latency_us = json_field<double>(e, "latency_us", at);
    r.results.push_back(std::move(m));
  }
  return r;
}

}  // namespace chord::personalize
