// chord/personalize/training/parameter_layers.hpp: personalized layers that are tensors of an nn::Parameters
// registry (the model description's personalized tensors), and the two chores every such adapter
// does per call (SasrecBackbone, CaserBackbone).
//
// An adapter runs the model's own training graph on a per-worker COPY of the registry: for each user it
// overwrites the personalized tensors with w_eff (install), runs forward and backward, and adds the
// personalized tensors' gradients into the caller's dw_eff (add_gradients). Only those tensors'
// gradient slots are zeroed and read: zeroing a whole buffer per call (item tables included) would
// cost more than the pass itself on large catalogues; the other slots accumulate unread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/models/description.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"

namespace chord::personalize {

class ParameterLayers {
 public:
  // who: the adapter's name, for errors ("SasrecBackbone"). The personalized tensors of `model` (its
  // description: the device's layers, in the strategy's order), found in `params` by name.
  ParameterLayers(std::string who, const models::ModelDescription& model, const nn::Parameters& params)
      : who_(std::move(who)) {
    for (std::size_t i : model.personalized_slots()) {
      const models::QuantizableTensor& t = model.tensors[i];
      ids_.push_back(params.id(t.name));
      layers_.push_back({t.name, t.channels, t.fan_in, model.weights(params, i)});
    }
  }

  const std::vector<PersonalizedLayer>& layers() const { return layers_; }

  // w_eff[l] -> the tensors of `params` (a worker's copy); with dw_eff, zeroes their slots in `grads`.
  void install(const std::vector<const float*>& w_eff, const std::vector<float*>* dw_eff, nn::Parameters& params,
               nn::GradientBuffer& grads) const {
    CHORD_CHECK(w_eff.size() == layers_.size(), who_, ": ", w_eff.size(), " weight matrices for ", layers_.size(),
                " personalized layers");
    CHORD_CHECK(dw_eff == nullptr || dw_eff->size() == layers_.size(), who_, ": ", dw_eff->size(),
                " gradient matrices for ", layers_.size(), " personalized layers");
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const std::size_t n = layers_[l].channels * layers_[l].fan_in;
      std::copy(w_eff[l], w_eff[l] + n, params.value(ids_[l]));
      if (dw_eff != nullptr) std::fill(grads.of(ids_[l]), grads.of(ids_[l]) + n, 0.0f);
    }
  }

  // dw_eff[l] += the gradient of tensor l in `grads` (the backbone contract: the caller zeroes dw_eff).
  void add_gradients(const nn::GradientBuffer& grads, const std::vector<float*>& dw_eff) const {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const float* g = grads.of(ids_[l]);
      float* out = dw_eff[l];
      for (std::size_t i = 0, n = layers_[l].channels * layers_[l].fan_in; i < n; ++i) out[i] += g[i];
    }
  }

 private:
  std::string who_;
  std::vector<nn::ParamId> ids_;
  std::vector<PersonalizedLayer> layers_;
};

}  // namespace chord::personalize
