// examples/chord/personalize_common.hpp: what the CHORD subcommands (hypertrain, profile, strategy, infer)
// share: list and palette options, the cloud's view of a model's personalized layers, hypernetwork files
// whose shape (hidden width, rank) is read from their metadata, and the backbone adapter of a model.
#pragma once

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/data/split.hpp"
#include "chord/io/file_kind.hpp"
#include "chord/io/safetensors.hpp"
#include "chord/models/model_file.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"
#include "chord/personalize/device/device_model.hpp"
#include "chord/personalize/training/backbone.hpp"
#include "chord/personalize/training/caser_backbone.hpp"
#include "chord/personalize/training/sasrec_backbone.hpp"

namespace chord::cli {

// "2,3,4,6" -> {2, 3, 4, 6}; `what` names the option in errors.
inline std::vector<double> parse_numbers(const std::string& text, const std::string& what) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double v = 0.0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    CHORD_CHECK(!item.empty() && used == item.size(), what, ": '", item, "' is not a number");
    out.push_back(v);
  }
  CHORD_CHECK(!out.empty(), what, ": empty list");
  return out;
}

// "0,2,4,8" -> a palette (four widths from {0, 2, 4, 8}, non-decreasing).
inline Palette parse_palette(const std::string& text) {
  const std::vector<double> v = parse_numbers(text, "--palette");
  CHORD_CHECK(v.size() == 4, "--palette: ", v.size(), " widths given, a palette has 4 (one per level)");
  Palette p{};
  for (std::size_t i = 0; i < 4; ++i) {
    CHORD_CHECK(v[i] == 0 || v[i] == 2 || v[i] == 4 || v[i] == 8, "--palette: width ", v[i], " is not 0, 2, 4 or 8");
    p[i] = std::uint8_t(v[i]);
  }
  CHORD_CHECK(is_valid_palette(p), "--palette: '", text, "' is not non-decreasing");
  return p;
}

inline std::string palette_text(const Palette& p) {
  return std::to_string(p[0]) + "," + std::to_string(p[1]) + "," + std::to_string(p[2]) + "," + std::to_string(p[3]);
}

// The personalized layers of a loaded model as the cloud sees them (the frozen fp32 weights), from the
// model's description (models/description.hpp): the same names, shapes and fingerprint as the adapters'.
inline std::vector<personalize::PersonalizedLayer> personalized_view(const models::LoadedModel& model) {
  const std::vector<LayerShape> shapes = personalize::personalized_layers(model);
  const std::vector<const float*> weights = personalize::personalized_weights(model);
  std::vector<personalize::PersonalizedLayer> layers;
  for (std::size_t l = 0; l < shapes.size(); ++l)
    layers.push_back({shapes[l].name, shapes[l].channels, shapes[l].fan_in, weights[l]});
  return layers;
}

inline std::size_t profile_dim_of(const models::LoadedModel& model) {
  return models::describe(model).profile_dim;
}

// Reads a hypernetwork file for this model: its hidden width and rank come from the metadata, everything
// else (fingerprint, profile size, tensors) must match the model.
inline std::unique_ptr<personalize::Hypernetworks> load_hypernetworks_for(const std::string& path,
                                                                         const models::LoadedModel& model) {
  expect_file_kind(path, FileKind::hypernetworks, "--hyper");
  const SafetensorsFile file = load_safetensors(path);
  const std::vector<LayerShape> shapes = personalize::personalized_layers(model);
  auto nets = std::make_unique<personalize::Hypernetworks>(
      shapes, personalize::hypernet_config_from(file, profile_dim_of(model), path));
  personalize::read_hypernetworks(file, *nets, personalize::device_fingerprint(model), path);
  return nets;
}

// The cloud adapter of a model on its data (kept by reference: model and split must outlive it).
inline std::unique_ptr<personalize::PersonalizableBackbone> make_backbone(const models::LoadedModel& model,
                                                                          const data::LeaveOneOutSplit& split) {
  if (model.sasrec) return std::make_unique<personalize::SasrecBackbone>(*model.sasrec, split);
  return std::make_unique<personalize::CaserBackbone>(*model.caser, split);
}

}  // namespace chord::cli
