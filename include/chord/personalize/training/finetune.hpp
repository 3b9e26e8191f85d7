// chord/personalize/training/finetune.hpp: on-device fine-tuning, the baseline CHORD avoids (docs/design.md#evaluation).
//
// Quantization-aware training (QAT) of ONE user's personalized weights on the device, at fixed
// per-channel widths (the experiment starts it from the user-agnostic strategy at the same budget):
//   w      the fp32 personalized weights (a copy of the frozen backbone's, the variable),
//   w_q    = Q_bits(w) channel by channel with chord::quantize_channel (the device's own quantizer; a
//            0-bit channel is all zero), what the device runs,
//   step   loss, dL/dw_q = backbone.loss_and_weight_grads(train split, w_q); straight-through estimator:
//          dL/dw := dL/dw_q (the rounding's zero-almost-everywhere derivative replaced by the identity),
//          zero for pruned channels (their output is 0 whatever w is); one Adam step on w (nn/adam.hpp);
//   select after every step (and before the first), the validation loss at Q_bits(w); the result keeps
//          the weights of the step with the lowest one (early stopping on the user's own held-out item).
// The clock runs from the start (the first quantization) to the end of the best step's validation pass:
// what a device would spend to reach the weights it keeps, on one thread. Everything else is
// deterministic: the backbone's negative sampling is seeded per (seed, user, step).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/nn/adam.hpp"
#include "chord/nn/parameters.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"
#include "chord/personalize/training/backbone.hpp"

namespace chord::personalize {

struct FinetuneOptions {
  std::size_t steps = 20;                                      // Adam steps on the user's training split
  nn::AdamOptions adam{1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, false};  // small steps: w starts at a good model
  ClipSearch search;                                           // the device quantizer's clip search
  std::uint64_t seed = 1;
};

struct FinetuneResult {
  std::vector<std::vector<float>> best_weights;  // [layer][channels * fan_in]: fp32 w of the best step
  std::vector<double> validation_loss;           // [steps + 1]: at the start, then after each step
  std::size_t best_step = 0;                     // argmin of validation_loss (0: fine-tuning did not help)
  double seconds_to_best = 0.0;                  // wall time from the start to the best step's validation
  double seconds_total = 0.0;                    // wall time of the whole run
};

// out[l] = Q_bits[l](w[l]) channel by channel: [channels * fan_in] per layer (quantize_channel + dequantize).
inline void fake_quantize_layers(const std::vector<PersonalizedLayer>& layers, const std::vector<const float*>& w,
                                 const std::vector<std::vector<std::uint8_t>>& bits, const ClipSearch& search,
                                 std::vector<std::vector<float>>& out, std::vector<std::int8_t>& codes) {
  out.resize(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const std::size_t k = layers[l].fan_in;
    out[l].resize(layers[l].channels * k);
    codes.resize(k);
    for (std::size_t c = 0; c < layers[l].channels; ++c) {
      const float scale = quantize_channel(w[l] + c * k, k, bits[l][c], codes.data(), search);
      for (std::size_t j = 0; j < k; ++j) out[l][c * k + j] = dequantize(codes[j], scale);
    }
  }
}

// Fine-tunes `user`'s copy of the personalized weights at widths bits[layer][channel] (in {0, 2, 4, 8}).
// ws: the backbone's workspace for this thread.
inline FinetuneResult finetune_user(const PersonalizableBackbone& backbone, std::size_t user,
                                    const std::vector<std::vector<std::uint8_t>>& bits, const FinetuneOptions& options,
                                    PersonalizableBackbone::Workspace& ws) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const std::vector<PersonalizedLayer> layers = backbone.layers();
  CHORD_CHECK(bits.size() == layers.size(), "finetune_user: widths for ", bits.size(), " layers, the backbone has ",
              layers.size());
  CHORD_CHECK(user < backbone.user_count(), "finetune_user: user ", user, " is out of range (",
              backbone.user_count(), " users)");
  nn::Parameters params;
  std::vector<nn::ParamId> ids;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    CHORD_CHECK(bits[l].size() == layers[l].channels, "finetune_user: layer ", l, " ('", layers[l].name, "') has ",
                layers[l].channels, " channels, ", bits[l].size(), " widths given");
    for (std::size_t c = 0; c < bits[l].size(); ++c)
      CHORD_CHECK(is_weight_bits(bits[l][c]), "finetune_user: layer '", layers[l].name, "' channel ", c,
                  ": bit-width ", int(bits[l][c]), " is not one of 0, 2, 4, 8");
    ids.push_back(params.add(layers[l].name, {layers[l].channels, layers[l].fan_in}, false));
  }
  for (std::size_t l = 0; l < layers.size(); ++l)
    std::copy(layers[l].weight, layers[l].weight + layers[l].channels * layers[l].fan_in, params.value(ids[l]));
  nn::Adam adam(params, options.adam);

  std::vector<std::vector<float>> w_q;
  std::vector<std::int8_t> codes;
  std::vector<const float*> w(layers.size()), wq_ptr(layers.size());
  std::vector<float*> dw(layers.size());
  const auto quantize_current = [&] {
    for (std::size_t l = 0; l < layers.size(); ++l) w[l] = params.value(ids[l]);
    fake_quantize_layers(layers, w, bits, options.search, w_q, codes);
    for (std::size_t l = 0; l < layers.size(); ++l) wq_ptr[l] = w_q[l].data();
  };
  const auto validation = [&] {
    const double loss = backbone.loss_and_weight_grads({user, UserSplit::validation, 0}, wq_ptr, nullptr, ws);
    CHORD_CHECK(std::isfinite(loss), "finetune_user: non-finite validation loss for user ", user);
    return loss;
  };
  FinetuneResult result;
  const auto remember = [&](std::size_t step) {
    result.best_step = step;
    result.best_weights.resize(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l)
      result.best_weights[l].assign(w[l], w[l] + layers[l].channels * layers[l].fan_in);
    result.seconds_to_best = std::chrono::duration<double>(Clock::now() - start).count();
  };
  quantize_current();
  result.validation_loss.push_back(validation());
  remember(0);
  for (std::size_t step = 1; step <= options.steps; ++step) {
    params.zero_grad();
    for (std::size_t l = 0; l < layers.size(); ++l) dw[l] = params.grad(ids[l]);
    const UserLossRequest request{user, UserSplit::train, nn::Rng(options.seed ^ 0x716174ull, user * 1000003ull + step).next_u64()};
    const double loss = backbone.loss_and_weight_grads(request, wq_ptr, &dw, ws);
    CHORD_CHECK(std::isfinite(loss), "finetune_user: non-finite training loss for user ", user, " at step ", step);
    for (std::size_t l = 0; l < layers.size(); ++l)  // straight-through, except where the channel is pruned
      for (std::size_t c = 0; c < layers[l].channels; ++c)
        if (bits[l][c] == 0) std::fill_n(dw[l] + c * layers[l].fan_in, layers[l].fan_in, 0.0f);
    adam.step(params);
    quantize_current();
    result.validation_loss.push_back(validation());
    if (result.validation_loss.back() < result.validation_loss[result.best_step]) remember(step);
  }
  result.seconds_total = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace chord::personalize
