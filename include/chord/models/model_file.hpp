// chord/models/model_file.hpp: SASRec / Caser models as safetensors files (io/safetensors.hpp).
//
// A model file holds every parameter under its registry name ("item_emb.weight", "blocks.0.attn.q.weight",
// ...) as an F32 tensor, and in "__metadata__":
//   format = "chord-model", format_version = "1", architecture = "sasrec" | "caser",
//   the architecture's hyperparameters ("sasrec.d", "caser.nh", ...; models/config.hpp),
//   anything the caller adds (dataset, seed, epochs, validation metrics: "train.*" by convention),
//   chord.crc32 (added by the writer).
// Loading rebuilds the model from the metadata and then insists that the tensors are exactly the
// model's parameters: no missing, no extra, every shape equal. Asked for one architecture, it refuses
// a file of the other. Errors name the file: "model 'm.safetensors': ...".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/io/safetensors.hpp"
#include "chord/models/caser.hpp"
#include "chord/models/config.hpp"
#include "chord/models/description.hpp"
#include "chord/models/sasrec.hpp"
#include "chord/nn/parameters.hpp"

namespace chord::models {

inline constexpr const char* kModelFormat = "chord-model";
inline constexpr const char* kModelFormatVersion = "1";

namespace detail {

inline SafetensorsFile parameters_file(const nn::Parameters& params, Metadata metadata) {
  metadata["format"] = kModelFormat;
  metadata["format_version"] = kModelFormatVersion;
  SafetensorsFile file;
  file.metadata = std::move(metadata);
  for (const nn::ParamInfo& info : params.infos()) {
    const float* v = params.value(params.id(info.name));
    file.tensors.push_back({info.name, info.shape, std::vector<float>(v, v + info.size)});
  }
  return file;
}

// Copies the file's tensors into params, insisting on the exact set of names and shapes.
inline void load_parameters(const SafetensorsFile& file, nn::Parameters& params, const std::string& where) {
  for (const nn::ParamInfo& info : params.infos()) {
    const SafeTensor* t = file.find(info.name);
    CHORD_CHECK(t != nullptr, where, ": tensor '", info.name, "' is missing");
    if (t->shape != info.shape) {
      std::string have, want;
      for (std::size_t d : t->shape) have += (have.empty() ? "" : ", ") + std::to_string(d);
      for (std::size_t d : info.shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
      throw Error(where + ": tensor '" + info.name + "' has shape [" + have + "], the architecture in the metadata needs [" +
                  want + "]");
    }
    std::copy(t->values.begin(), t->values.end(), params.value(params.id(info.name)));
  }
  for (const SafeTensor& t : file.tensors)
    CHORD_CHECK(params.find(t.name).has_value(), where, ": tensor '", t.name, "' is not a parameter of this architecture");
}

inline std::string architecture_of(const SafetensorsFile& file, const std::string& where) {
  const auto format = file.metadata.find("format");
  CHORD_CHECK(format != file.metadata.end() && format->second == kModelFormat, where,
              ": not a chord model (metadata 'format' is not '", kModelFormat, "')");
  const auto version = file.metadata.find("format_version");
  CHORD_CHECK(version != file.metadata.end() && version->second == kModelFormatVersion, where,
              ": unsupported model format version '", version == file.metadata.end() ? "" : version->second,
              "' (this build reads ", kModelFormatVersion, ")");
  const auto arch = file.metadata.find("architecture");
  CHORD_CHECK(arch != file.metadata.end(), where, ": metadata has no 'architecture'");
  CHORD_CHECK(arch->second == "sasrec" || arch->second == "caser", where, ": unknown architecture '", arch->second,
              "' (expected sasrec or caser)");
  return arch->second;
}

inline Metadata merged(Metadata base, const Metadata& extra) {
  for (const auto& [k, v] : extra)
    if (base.find(k) == base.end()) base[k] = v;  // the architecture's own keys cannot be overridden
  return base;
}

}  // namespace detail

// A loaded model: exactly one of sasrec / caser is set.
struct LoadedModel {
  std::string architecture;
  Metadata metadata;
  std::optional<SasrecModel> sasrec;
  std::optional<CaserModel> caser;
};

// The loaded model's description (models/description.hpp) and its parameters.
inline ModelDescription describe(const LoadedModel& model) {
  if (model.sasrec) return describe(model.sasrec->config());
  CHORD_CHECK(model.caser.has_value(), "model: the loaded model holds neither SASRec nor Caser");
  return describe(model.caser->config());
}
inline const nn::Parameters& parameters(const LoadedModel& model) {
  if (model.sasrec) return model.sasrec->params();
  CHORD_CHECK(model.caser.has_value(), "model: the loaded model holds neither SASRec nor Caser");
  return model.caser->params();
}

inline void save_model(const std::string& path, const SasrecModel& model, const Metadata& extra = {}) {
  save_safetensors(path, detail::parameters_file(model.params(), detail::merged(to_metadata(model.config()), extra)));
}
inline void save_model(const std::string& path, const CaserModel& model, const Metadata& extra = {}) {
  save_safetensors(path, detail::parameters_file(model.params(), detail::merged(to_metadata(model.config()), extra)));
}

// Builds the model a decoded file describes; `source` names it in errors. expected_architecture: ""
// accepts both. Before the model is built (allocated), its config is checked against `limits` and
// against the file's tensors: the embedding's shape, and the floats the config needs at least.
inline LoadedModel model_from_file(const SafetensorsFile& file, const std::string& source,
                                   const std::string& expected_architecture = "",
                                   const InputLimits& limits = default_limits()) {
  const std::string where = "model '" + source + "'";
  LoadedModel out;
  out.architecture = detail::architecture_of(file, where);
  CHORD_CHECK(expected_architecture.empty() || expected_architecture == out.architecture, where, ": architecture mismatch: the file holds a ",
              out.architecture, " model, a ", expected_architecture, " model was asked for");
  out.metadata = file.metadata;
  const auto check_against_tensors = [&](const auto& config, const std::string& prefix) {
    const std::vector<std::size_t> item_shape{std::size_t(config.num_items) + 1, std::size_t(config.d)};
    const SafeTensor* items = file.find("item_emb.weight");
    CHORD_CHECK(items != nullptr, where, ": tensor 'item_emb.weight' is missing");
    CHORD_CHECK(items->shape == item_shape, where, ": tensor 'item_emb.weight' has another shape than metadata '",
                prefix, ".num_items' = ", config.num_items, " and '", prefix, ".d' = ", config.d, " need");
    long double held = 0;
    for (const SafeTensor& t : file.tensors) held += static_cast<long double>(t.values.size());
    CHORD_CHECK(minimum_parameters(config) <= held, where, ": the metadata ('", prefix, ".*') asks for at least ",
                static_cast<double>(minimum_parameters(config)), " parameters, the file holds ",
                static_cast<double>(held));
  };
  if (out.architecture == "sasrec") {
    const SasrecConfig config = sasrec_config_from(file.metadata, where, limits);
    check_against_tensors(config, "sasrec");
    out.sasrec.emplace(config);
    detail::load_parameters(file, out.sasrec->params(), where);
  } else {
    const CaserConfig config = caser_config_from(file.metadata, where, limits);
    check_against_tensors(config, "caser");
    out.caser.emplace(config);
    detail::load_parameters(file, out.caser->params(), where);
  }
  return out;
}

// Decodes an in-memory file (checksum required); `source` names it in errors.
inline LoadedModel decode_model(const std::uint8_t* bytes, std::size_t size, const std::string& source,
                                const std::string& expected_architecture = "",
                                const InputLimits& limits = default_limits()) {
  return model_from_file(decode_safetensors(bytes, size, source, true, limits), source, expected_architecture, limits);
}

inline LoadedModel load_model(const std::string& path, const std::string& expected_architecture = "",
                              const InputLimits& limits = default_limits()) {
  const std::vector<std::uint8_t> bytes = read_file(path, limits);
  return decode_model(bytes.data(), bytes.size(), path, expected_architecture, limits);
}

}  // namespace chord::models
