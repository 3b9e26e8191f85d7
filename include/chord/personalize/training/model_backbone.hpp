// chord/personalize/training/model_backbone.hpp: what SasrecBackbone and CaserBackbone share.
//
// A real model's adapter (PersonalizableBackbone, backbone.hpp) takes its architecture, personalized
// layers and profile from the model's description (models/description.hpp) and its fp32 inference
// engine, the same ones the device uses, so the fingerprint and the profile of both sides agree by
// construction. Only the losses (and their workspaces) are the model's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/split.hpp"
#include "chord/models/description.hpp"
#include "chord/models/runtime_layers.hpp"
#include "chord/personalize/training/backbone.hpp"
#include "chord/personalize/training/parameter_layers.hpp"

namespace chord::personalize {

// Model: models::SasrecModel or CaserModel; Engine: its inference graph (SasrecInference, CaserInference).
template <class Model, class Engine>
class ModelBackbone : public PersonalizableBackbone {
 public:
  std::string architecture() const override { return description_.architecture; }
  std::vector<PersonalizedLayer> layers() const override { return tensors_.layers(); }
  std::size_t profile_dim() const override { return description_.profile_dim; }
  std::size_t user_count() const override { return std::size_t(split_.num_users); }

  // The description's profile: the fp32 engine's state after the user's training items.
  std::vector<float> profile(std::size_t user) const override {
    check_user(user);
    const auto& history = split_.train[user];
    std::vector<float> state(profile_dim());
    auto s = fp32_.make_scratch();
    fp32_.encode(std::int32_t(user), history.data(), history.size(), s, state.data());
    return state;
  }

  const Model& model() const { return model_; }
  const data::LeaveOneOutSplit& split() const { return split_; }

 protected:
  // Keeps references: model and split must outlive the adapter. who: the adapter's name, for errors.
  // description: the model's own up to which tensors are personalized (models/description.hpp).
  ModelBackbone(const Model& model, const data::LeaveOneOutSplit& split, std::string who,
                models::ModelDescription description)
      : model_(model), split_(split), description_(std::move(description)),
        fp32_(model, models::InferenceOptions{}, description_), tensors_(who, description_, model.params()),
        who_(std::move(who)) {}

  void check_user(std::size_t user) const {
    CHORD_CHECK(user < user_count(), who_, ": user ", user, " is out of range (", user_count(), " users)");
  }

  const Model& model_;
  const data::LeaveOneOutSplit& split_;
  models::ModelDescription description_;
  Engine fp32_;
  ParameterLayers tensors_;
  std::string who_;
};

}  // namespace chord::personalize
