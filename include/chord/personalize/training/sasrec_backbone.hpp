// chord/personalize/training/sasrec_backbone.hpp: SASRec as a CHORD backbone (cloud side).
//
// SasrecBackbone adapts a trained, frozen models::SasrecModel and a leave-one-out split to
// PersonalizableBackbone (backbone.hpp):
//   layers()   the personalized tensors of models::describe(SasrecConfig) (models/description.hpp),
//              the device's layers in the strategy's order, read from the model's parameters by name.
//   profile(u) h [d]: the fp32 inference graph's last-position final hidden state over the user's
//              training items (exactly what DeviceModel::profile computes; equal to the training
//              graph's eval-mode state up to float rounding, tested).
//   loss       eval mode (no dropout), the personalized matrices replaced by w_eff:
//              train:      SASRec's own loss on the user's training sequence (every next-item pair of
//                          the last max_len, one negative per position from the training sampler's
//                          stream (seed 0, epoch = request.seed, user)), BCE averaged over positions;
//              validation: the validation item scored from the training items' last hidden state
//                          against the 100 seeded sampled negatives of the evaluation protocol
//                          (data/candidates.hpp, seed = request.seed):
//                          softplus(-s_valid) + mean_k softplus(s_neg_k).
//              dL/dW_eff: the training graph's own backward (SasrecModel::backward, or backward_encoder
//              after the validation head), read from the personalized tensors of a worker gradient buffer.
// Per workspace: a copy of the parameter registry (the personalized tensors overwritten by w_eff at each
// call), a gradient buffer, the training graph's workspace. Shared: the model, the split, the sampler,
// all read-only. Only the personalized tensors' gradients are zeroed and read; the other tensors'
// gradients accumulate unread (zeroing the item table per call would cost more than the pass itself
// on large catalogues).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/candidates.hpp"
#include "chord/data/sampler.hpp"
#include "chord/data/split.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/sasrec.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/models/training_loss.hpp"
#include "chord/nn/loss.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/training/backbone.hpp"
#include "chord/personalize/training/model_backbone.hpp"
#include "chord/personalize/training/parameter_layers.hpp"

namespace chord::personalize {

class SasrecBackbone : public ModelBackbone<models::SasrecModel, models::SasrecInference> {
 public:
  struct Scratch : Workspace {
    nn::Parameters params;     // the model's, personalized tensors overwritten by w_eff
    nn::GradientBuffer grads;  // only the personalized tensors' entries are zeroed and read
    models::SasrecWorkspace ws;
    std::vector<data::ItemId> inputs, positives, negatives;  // [max_len]
    std::vector<std::uint32_t> ids, positions;               // [max_len]
    std::vector<float> dh;                                   // [max_len, d]
  };

  // Keeps references: model and split must outlive the adapter. description: the model's own unless
  // the caller personalizes other tensors (models/description.hpp).
  SasrecBackbone(const models::SasrecModel& model, const data::LeaveOneOutSplit& split)
      : SasrecBackbone(model, split, models::describe(model.config())) {}
  SasrecBackbone(const models::SasrecModel& model, const data::LeaveOneOutSplit& split, models::ModelDescription description)
      : ModelBackbone(model, split, "SasrecBackbone", std::move(description)), sampler_(split, model.config().max_len, 0) {
    CHORD_CHECK(split.num_items <= model.config().num_items, "SasrecBackbone: the data has items up to ",
                split.num_items, ", the model knows 1..", model.config().num_items);
  }

  std::unique_ptr<Workspace> make_workspace() const override {
    auto s = std::make_unique<Scratch>();
    const models::SasrecConfig& c = model_.config();
    const std::size_t L = std::size_t(c.max_len);
    s->params = model_.params();
    s->grads = s->params.new_gradient_buffer();
    s->ws.resize(c);
    for (auto* v : {&s->inputs, &s->positives, &s->negatives}) v->resize(L);
    s->ids.resize(L), s->positions.resize(L);
    s->dh.resize(L * std::size_t(c.d));
    return s;
  }

  double loss_and_weight_grads(const UserLossRequest& request, const std::vector<const float*>& w_eff,
                               const std::vector<float*>* dw_eff, Workspace& workspace) const override {
    check_user(request.user);
    Scratch& s = dynamic_cast<Scratch&>(workspace);
    tensors_.install(w_eff, dw_eff, s.params, s.grads);
    const double loss = request.split == UserSplit::train ? train_loss(request, s, dw_eff != nullptr)
                                                          : validation_loss(request, s, dw_eff != nullptr);
    if (dw_eff != nullptr) tensors_.add_gradients(s.grads, *dw_eff);
    return loss;
  }

 private:
  double train_loss(const UserLossRequest& request, Scratch& s, bool backward) const {
    sampler_.fill_row(std::int32_t(request.user), request.seed, s.inputs.data(), s.positives.data(),
                      s.negatives.data());
    if (model_.load(s.inputs.data(), s.positives.data(), s.negatives.data(), s.ws) == 0) return 0.0;
    nn::Rng unused;  // eval mode: no dropout draws
    model_.forward(s.params, s.ws, unused, false);
    const double loss = model_.loss(s.ws, 0).loss;
    if (backward) model_.backward(s.params, s.grads, s.ws, false);
    return loss;
  }

  double validation_loss(const UserLossRequest& request, Scratch& s, bool backward) const {
    const auto user = std::int32_t(request.user);
    CHORD_CHECK(split_.evaluated(user), "SasrecBackbone: user ", user, " has no validation item (fewer than 3 events)");
    const auto& history = split_.train[request.user];
    const std::size_t d = std::size_t(model_.config().d);
    // the sampler's and the inference graph's rows (the variant's padding included)
    const std::size_t n = models::sasrec_history_rows(model_.config(), history.data(), history.size(), s.ids.data(), s.positions.data());
    nn::Rng unused;
    model_.encode(s.params, s.ids.data(), s.positions.data(), n, s.ws, unused, false);
    const float* h = s.ws.h.data() + (n - 1) * d;
    const float* table = s.params.value(model_.item_emb.weight);
    const std::vector<data::ItemId> negatives =
        data::sampled_negatives(split_, user, data::Phase::validation, request.seed);
    auto logit = [&](data::ItemId item) {
      const float* e = table + std::size_t(item) * d;
      float v = 0.0f;
      for (std::size_t j = 0; j < d; ++j) v += h[j] * e[j];
      return v;
    };
    const data::ItemId target = split_.valid[request.user];
    const float pos = logit(target);
    double loss = nn::softplus(-pos), neg_sum = 0.0;
    const float neg_scale = 1.0f / float(negatives.size());
    float* dh = s.dh.data();
    if (backward) std::fill(dh, dh + n * d, 0.0f);
    float* dlast = dh + (n - 1) * d;
    auto add_row = [&](data::ItemId item, float g) {
      const float* e = table + std::size_t(item) * d;
      for (std::size_t j = 0; j < d; ++j) dlast[j] += g * e[j];
    };
    if (backward) add_row(target, -nn::sigmoid(-pos));  // d softplus(-x) / dx = sigmoid(x) - 1
    for (data::ItemId item : negatives) {
      const float neg = logit(item);
      neg_sum += nn::softplus(neg);
      if (backward) add_row(item, nn::sigmoid(neg) * neg_scale);
    }
    loss += neg_sum / double(negatives.size());
    if (backward) model_.backward_encoder(s.params, s.grads, s.ws, dh, false);
    return loss;
  }

  data::SasrecSampler sampler_;
};

}  // namespace chord::personalize
