// chord/personalize/training/caser_backbone.hpp: Caser as a CHORD backbone (cloud side).
//
// CaserBackbone adapts a trained, frozen models::CaserModel and a leave-one-out split to
// PersonalizableBackbone (backbone.hpp):
//   layers()   conv_v.weight [nv, L] (each vertical filter is a channel: its L weights over time),
//              conv_h.h1.weight .. conv_h.hL.weight [nh, h d] (each horizontal filter of height h is a
//              channel over its h x d window), fc1.weight [d, nv d + L nh] (each hidden unit of z is a
//              channel): the layers that turn the user's recent items into the user's state, i.e. the
//              computation a user's own sequence drives. The tables stay uniform (models/description.hpp):
//              item_emb and user_emb [rows, d], and out_emb [num_items + 1, 2d], the biggest tensor of
//              the model (it scores the catalogue), with out_bias fp32.
//   profile(u) x = [z | user_emb[u + 1]] [2d]: the fp32 inference graph's state from the user's last L
//              training items, the representation Caser itself scores items with (z alone would drop
//              the user's long-term preference that Caser keeps in the user embedding).
//   loss       eval mode (no dropout), the personalized matrices replaced by w_eff:
//              train:      Caser's own loss over every window of the user's training items (the
//                          training sampler's windows, T targets, N negatives each from its stream (seed 0,
//                          epoch = request.seed, window)), BCE averaged over the valid targets and negatives;
//              validation: the validation item scored from the window of the last L training items against
//                          the 100 seeded sampled negatives of the evaluation protocol (seed = request.seed):
//                          softplus(-s_valid) + mean_k softplus(s_neg_k). It runs through Caser's own
//                          loss and backward: ceil(100 / N) copies of the window, each with the validation
//                          item as its one target and the next N negatives (0 = masked padding), which is
//                          exactly that formula (every copy's positive has the same logit).
//              dL/dW_eff from CaserModel::backward into a worker gradient buffer.
// Thread safety and buffers: as SasrecBackbone (a parameter copy, a gradient buffer and the training
// workspace per workspace; only the personalized tensors' gradients are zeroed and read).
#pragma once

#include <algorithm>
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
#include "chord/models/caser.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/training_loss.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/training/backbone.hpp"
#include "chord/personalize/training/model_backbone.hpp"
#include "chord/personalize/training/parameter_layers.hpp"

namespace chord::personalize {

class CaserBackbone : public ModelBackbone<models::CaserModel, models::CaserInference> {
 public:
  struct Scratch : Workspace {
    nn::Parameters params;
    nn::GradientBuffer grads;
    models::CaserWorkspace ws;
    std::vector<data::ItemId> inputs, targets, negatives;  // one window: [L], [T], [T, N]
  };

  // Keeps references: model and split must outlive the adapter. description: the model's own unless
  // the caller personalizes other tensors (models/description.hpp).
  CaserBackbone(const models::CaserModel& model, const data::LeaveOneOutSplit& split)
      : CaserBackbone(model, split, models::describe(model.config())) {}
  CaserBackbone(const models::CaserModel& model, const data::LeaveOneOutSplit& split, models::ModelDescription description)
      : ModelBackbone(model, split, "CaserBackbone", std::move(description)),
        sampler_(split, {model.config().L, model.config().T, model.config().negatives}, 0) {
    const models::CaserConfig& c = model.config();
    CHORD_CHECK(split.num_items <= c.num_items && split.num_users <= c.num_users, "CaserBackbone: the data has ",
                split.num_users, " users and items up to ", split.num_items, ", the model knows ", c.num_users,
                " users and items 1..", c.num_items);
    // windows of user u: sampler indices first_window_[u] .. first_window_[u + 1] - 1 (the sampler's order)
    first_window_.assign(std::size_t(split.num_users) + 1, 0);
    for (std::size_t u = 0; u < std::size_t(split.num_users); ++u) {
      const std::size_t n = split.train[u].size();
      first_window_[u + 1] = first_window_[u] + (n >= 2 ? n - 1 : 0);
      max_rows_ = std::max(max_rows_, n >= 2 ? n - 1 : 0);
    }
    validation_rows_ = (std::size_t(data::kSampledNegatives) + std::size_t(c.negatives) - 1) / std::size_t(c.negatives);
    max_rows_ = std::max(max_rows_, validation_rows_);
    CHORD_CHECK(sampler_.num_windows() == first_window_.back(), "CaserBackbone: window count disagrees with the sampler");
  }

  std::unique_ptr<Workspace> make_workspace() const override {
    auto s = std::make_unique<Scratch>();
    const models::CaserConfig& c = model_.config();
    s->params = model_.params();
    s->grads = s->params.new_gradient_buffer();
    s->ws.resize(c, max_rows_);
    s->inputs.resize(std::size_t(c.L)), s->targets.resize(std::size_t(c.T));
    s->negatives.resize(std::size_t(c.T) * std::size_t(c.negatives));
    return s;
  }

  double loss_and_weight_grads(const UserLossRequest& request, const std::vector<const float*>& w_eff,
                               const std::vector<float*>* dw_eff, Workspace& workspace) const override {
    check_user(request.user);
    Scratch& s = dynamic_cast<Scratch&>(workspace);
    tensors_.install(w_eff, dw_eff, s.params, s.grads);
    const std::size_t rows = request.split == UserSplit::train ? load_train(request, s) : load_validation(request, s);
    if (rows == 0) return 0.0;
    nn::Rng unused;  // eval mode: no dropout draws
    model_.forward(s.params, rows, s.ws, &unused, false);
    const double loss = model_.loss(s.ws, 0, 0).loss;
    if (dw_eff != nullptr) {
      model_.backward(s.params, s.grads, s.ws, false);
      tensors_.add_gradients(s.grads, *dw_eff);
    }
    return loss;
  }

 private:
  std::size_t load_train(const UserLossRequest& request, Scratch& s) const {
    const std::size_t first = first_window_[request.user], rows = first_window_[request.user + 1] - first;
    std::int32_t user = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      sampler_.fill_row(first + r, request.seed, user, s.inputs.data(), s.targets.data(), s.negatives.data());
      model_.load_row(r, user, s.inputs.data(), s.targets.data(), s.negatives.data(), s.ws);
    }
    return rows;
  }

  std::size_t load_validation(const UserLossRequest& request, Scratch& s) const {
    const auto user = std::int32_t(request.user);
    CHORD_CHECK(split_.evaluated(user), "CaserBackbone: user ", user, " has no validation item (fewer than 3 events)");
    const std::vector<data::ItemId> negatives =
        data::sampled_negatives(split_, user, data::Phase::validation, request.seed);
    data::left_pad_last(split_.train[request.user], model_.config().L, s.inputs.data());
    std::fill(s.targets.begin(), s.targets.end(), 0);
    s.targets[0] = split_.valid[request.user];
    const std::size_t N = std::size_t(model_.config().negatives);
    for (std::size_t r = 0; r < validation_rows_; ++r) {
      std::fill(s.negatives.begin(), s.negatives.end(), 0);
      for (std::size_t k = 0; k < N && r * N + k < negatives.size(); ++k) s.negatives[k] = negatives[r * N + k];
      model_.load_row(r, user, s.inputs.data(), s.targets.data(), s.negatives.data(), s.ws);
    }
    return validation_rows_;
  }

  data::CaserSampler sampler_;
  std::vector<std::size_t> first_window_;
  std::size_t max_rows_ = 1, validation_rows_ = 1;
};

}  // namespace chord::personalize
