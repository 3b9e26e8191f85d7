// chord/personalize/training/hypernet_trainer.hpp: training the hypernetworks on the cloud, the backbone frozen.
//
// One user's objective (user_objective) chains every piece of docs/design.md#chord-training:
//   u --hypernetworks--> raw outputs --importance--> c --relaxation--> W_eff --backbone--> L_rec, dL/dW_eff
//   loss = L_rec + mu (E[bits] - B)^2, and the backward pass in the reverse order into the parameters.
// The trainer (HypernetTrainer) runs it for a batch of users per step and takes one Adam step:
//   - users: an epoch-wise seeded shuffle of the training users, `users_per_step` per step;
//   - budgets: per user, drawn from the device classes ({2, 3, 4, 6} bits) or one fixed budget;
//   - noise: each (step, slot) has its own Gumbel stream Rng(seed, step * users_per_step + slot), and the
//     backbone's negative sampling its own seed, so the run does not depend on the thread count;
//   - threads: nn::run_workers with one gradient buffer and workspace per worker, slots assigned
//     statically (w, w + T, ...), buffers reduced in worker order (nn/batch_parallel.hpp): the same seed
//     gives bit-identical parameters whatever the scheduling, and (up to float summation order) whatever
//     the number of threads;
//   - profiles are computed once: the backbone is frozen, so a user's profile never changes;
//   - a one-line progress bar on stderr, only when stderr is a terminal (logs and CI stay clean).
#pragma once
#define CHORD_TRAINING_CODE 1  // training-only code: tests/device_only.cpp refuses to compile with it

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/nn/adam.hpp"
#include "chord/nn/batch_parallel.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/importance.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"
#include "chord/personalize/training/backbone.hpp"
#include "chord/personalize/training/relaxation.hpp"

namespace chord::personalize {

// Everything one user's pass keeps (one per worker thread; reused across users and steps).
struct UserPass {
  HypernetWorkspace hyper;
  ImportanceState importance;
  RelaxationState relax;
  std::vector<std::vector<float>> dw;  // [layers][channels * fan_in]: dL_rec/dW_eff
  std::vector<double> dc;              // [C]: dL/dc
  std::unique_ptr<PersonalizableBackbone::Workspace> backbone;
};

struct UserObjective {
  double rec_loss = 0.0, penalty = 0.0, expected_bits = 0.0, sampled_bits = 0.0;
  double total() const { return rec_loss + penalty; }
};

// One user's loss; with `grads`, also adds scale * d(loss)/d(parameters) into it.
// u: [profile_dim]; noise: the user's Gumbel stream (consumed by the forward pass).
inline UserObjective user_objective(const PersonalizableBackbone& backbone, const Hypernetworks& nets,
                                    const QuantizationCache& cache, const float* u, const UserLossRequest& request,
                                    double budget, const RelaxationOptions& options, nn::Rng& noise, UserPass& pass,
                                    nn::GradientBuffer* grads, double scale = 1.0) {
  if (!pass.backbone) pass.backbone = backbone.make_workspace();
  nets.forward(u, pass.hyper);
  importance_forward(nets, cache, pass.hyper, pass.importance);
  relaxation_forward(nets, cache, pass.importance.c, budget, options, noise, pass.relax);

  std::vector<const float*> w_eff;
  for (const auto& w : pass.relax.w_eff) w_eff.push_back(w.data());
  std::vector<float*> dw;
  if (grads != nullptr) {
    pass.dw.resize(cache.layer_count());
    for (std::size_t l = 0; l < cache.layer_count(); ++l) {
      pass.dw[l].assign(cache.layer(l).channels * cache.layer(l).fan_in, 0.0f);
      dw.push_back(pass.dw[l].data());
    }
  }
  UserObjective result;
  result.rec_loss = backbone.loss_and_weight_grads(request, w_eff, grads != nullptr ? &dw : nullptr, *pass.backbone);
  CHORD_CHECK(std::isfinite(result.rec_loss), "user_objective: the backbone returned a non-finite loss (",
              result.rec_loss, ") for user ", request.user);
  result.penalty = pass.relax.penalty;
  result.expected_bits = pass.relax.expected_bits;
  result.sampled_bits = pass.relax.sampled_bits;
  if (grads != nullptr) {
    relaxation_backward(nets, cache, options, pass.importance.c, pass.relax, pass.dw, scale, pass.dc, *grads);
    importance_backward(nets, cache, pass.importance, pass.dc, pass.hyper);
    nets.backward(u, pass.hyper, *grads);
  }
  return result;
}

struct TrainOptions {
  std::size_t steps = 300;
  std::size_t users_per_step = 32;
  std::size_t threads = 1;
  nn::AdamOptions adam{1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, false};  // small nets, few steps
  RelaxationOptions relaxation;             // tau, mu, straight-through, training palette
  double tau_end = 0.0;                     // > 0: anneal tau geometrically to this over the run
  std::vector<double> budget_classes = {2.0, 3.0, 4.0, 6.0};  // the device classes
  bool sample_budgets = true;               // false: every user trains at fixed_budget
  double fixed_budget = 3.0;
  std::uint64_t seed = 1;
  bool progress = true;                     // progress bar (only when stderr is a terminal)
};

// Means over the step's users.
struct StepStats {
  std::size_t step = 0;
  double rec_loss = 0.0, penalty = 0.0, expected_bits = 0.0, sampled_bits = 0.0, budget = 0.0, tau = 0.0;
};

class HypernetTrainer {
 public:
  HypernetTrainer(const PersonalizableBackbone& backbone, Hypernetworks& nets, const QuantizationCache& cache,
                  std::vector<std::size_t> users, TrainOptions options)
      : backbone_(backbone), nets_(nets), cache_(cache), users_(std::move(users)), options_(std::move(options)),
        adam_(nets.params(), options_.adam) {
    CHORD_CHECK(!users_.empty(), "HypernetTrainer: no training users");
    CHORD_CHECK(backbone.profile_dim() == nets.config().profile_dim, "HypernetTrainer: the backbone's profiles have ",
                backbone.profile_dim(), " values, the hypernetworks take ", nets.config().profile_dim);
    CHORD_CHECK(options_.users_per_step > 0 && options_.threads > 0, "HypernetTrainer: users per step and threads "
                "must be positive");
    CHORD_CHECK(!options_.sample_budgets || !options_.budget_classes.empty(), "HypernetTrainer: no budget classes");
    for (double b : options_.budget_classes)
      CHORD_CHECK(b >= 0.0 && b <= 8.0, "HypernetTrainer: budget class ", b, " is not in [0, 8]");
    for (std::size_t user : users_) {
      CHORD_CHECK(user < backbone.user_count(), "HypernetTrainer: user ", user, " is out of range (",
                  backbone.user_count(), " users)");
      profiles_.push_back(backbone.profile(user));
      CHORD_CHECK(profiles_.back().size() == backbone.profile_dim(), "HypernetTrainer: profile of user ", user,
                  " has ", profiles_.back().size(), " values, expected ", backbone.profile_dim());
    }
    batch_ = std::min(options_.users_per_step, users_.size());
    workers_ = std::min(options_.threads, batch_);
    for (std::size_t w = 0; w < workers_; ++w) grads_.push_back(nets.params().new_gradient_buffer());
    passes_.resize(workers_);
  }

  // The training users' profiles (computed once), in the order of the users given.
  const std::vector<std::vector<float>>& profiles() const { return profiles_; }
  std::size_t steps_done() const { return step_; }

  double temperature(std::size_t step) const {
    const double tau = options_.relaxation.tau;
    if (options_.tau_end <= 0.0 || options_.steps < 2) return tau;
    const double t = double(std::min(step, options_.steps - 1)) / double(options_.steps - 1);
    return tau * std::pow(options_.tau_end / tau, t);
  }

  // One Adam step over the next batch of users.
  StepStats step() {
    const std::uint64_t s = step_;
    // Slots of this step: the next users of the epoch's shuffle, and their budgets.
    std::vector<std::size_t> slot_user(batch_);
    std::vector<double> slot_budget(batch_);
    nn::Rng budget_rng(options_.seed ^ 0x62756467ull, s);  // "budg"
    for (std::size_t k = 0; k < batch_; ++k) {
      slot_user[k] = next_user();
      slot_budget[k] = options_.sample_budgets
                           ? options_.budget_classes[budget_rng.below(options_.budget_classes.size())]
                           : options_.fixed_budget;
    }
    RelaxationOptions relax = options_.relaxation;
    relax.tau = temperature(step_);
    std::vector<std::vector<UserObjective>> results(workers_);
    const double scale = 1.0 / double(batch_);

    nn::run_workers(workers_, [&](std::size_t w) {
      grads_[w].zero();
      for (std::size_t k = w; k < batch_; k += workers_) {
        nn::Rng noise(options_.seed ^ 0x67756d62656cull, s * batch_ + k);  // "gumbel"
        UserLossRequest request{users_[slot_user[k]], UserSplit::train, nn::Rng(options_.seed, s * batch_ + k).next_u64()};
        results[w].push_back(user_objective(backbone_, nets_, cache_, profiles_[slot_user[k]].data(), request,
                                            slot_budget[k], relax, noise, passes_[w], &grads_[w], scale));
      }
    });
    nn::reduce_gradients(grads_, nets_.params().grads());
    adam_.step(nets_.params());

    StepStats stats;
    stats.step = step_++;
    stats.tau = relax.tau;
    for (std::size_t k = 0; k < batch_; ++k) stats.budget += slot_budget[k] * scale;
    for (const auto& worker : results)
      for (const UserObjective& r : worker) {
        stats.rec_loss += r.rec_loss * scale, stats.penalty += r.penalty * scale;
        stats.expected_bits += r.expected_bits * scale, stats.sampled_bits += r.sampled_bits * scale;
      }
    return stats;
  }

  // options.steps steps; returns every step's statistics.
  std::vector<StepStats> train() {
    const bool bar = options_.progress && ::isatty(STDERR_FILENO) == 1;
    std::vector<StepStats> history;
    for (std::size_t i = 0; i < options_.steps; ++i) {
      history.push_back(step());
      if (bar) print_progress(history.back(), i + 1);
    }
    if (bar) std::fprintf(stderr, "\n");
    return history;
  }

 private:
  // Epoch-wise Fisher-Yates shuffle of the user slots, reseeded per epoch: every user once per epoch.
  std::size_t next_user() {
    if (cursor_ == order_.size()) {
      order_.resize(users_.size());
      for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
      nn::Rng rng(options_.seed ^ 0x65706f6368ull, epoch_++);  // "epoch"
      for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
      cursor_ = 0;
    }
    return order_[cursor_++];
  }

  void print_progress(const StepStats& s, std::size_t done) const {
    constexpr int kWidth = 30;
    const int filled = int(double(kWidth) * double(done) / double(options_.steps));
    char bar[kWidth + 1];
    for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '=' : ' ';
    bar[kWidth] = 0;
    std::fprintf(stderr, "\rhypernetworks [%s] %zu/%zu  loss %.4f  penalty %.4f  bits %.2f/%.2f", bar, done,
                 options_.steps, s.rec_loss, s.penalty, s.expected_bits, s.budget);
    std::fflush(stderr);
  }

  const PersonalizableBackbone& backbone_;
  Hypernetworks& nets_;
  const QuantizationCache& cache_;
  std::vector<std::size_t> users_;
  TrainOptions options_;
  nn::Adam adam_;
  std::vector<std::vector<float>> profiles_;
  std::size_t batch_ = 0, workers_ = 0, step_ = 0;
  std::vector<nn::GradientBuffer> grads_;
  std::vector<UserPass> passes_;
  std::vector<std::size_t> order_;
  std::size_t cursor_ = 0;
  std::uint64_t epoch_ = 0;
};

}  // namespace chord::personalize
