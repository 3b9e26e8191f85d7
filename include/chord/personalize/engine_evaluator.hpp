// chord/personalize/engine_evaluator.hpp: DeviceEvaluator (evaluator.hpp) over an inference graph.
//
// One implementation for SASRec and Caser (SasrecEvaluator, CaserEvaluator in the backbone headers): an
// engine is models::SasrecInference or models::CaserInference, which both offer rebuild_projections
// (re-quantize only the personalized layers) and the interface models::rank_user ranks with.
//   bits empty: the fp32 engine (no kernel table: the graph models::evaluate's fp32 runs use) with the
//               given weights;
//   otherwise:  the quantized engine (options.mode, W-A8 by default, through options.kernels or
//               &chord::best_kernels()), embeddings installed once at options.embedding_bits, the
//               personalized layers quantized per channel at `bits` from the given weights.
// Each Scratch owns copies of both engines, so evaluate() is const and thread-safe per Scratch; the
// metric code is models::rank_user's, the one models::evaluate runs.
// Speed: quantizing a channel (core/quantizer.hpp's clip search) costs far more than packing it (1.2 ms
// against ~0.05 ms for SASRec's 30,000 personalized weights at d = 50, about a user's inference). The
// frozen weights are what most calls pass, so their codes and scales at 2, 4 and 8 bits are computed once,
// at construction (device.hpp's FrozenChannelCodes, as the device caches them): a call whose weights[l] IS
// the frozen matrix (the same pointer) only packs the cached codes; any other matrix is quantized afresh.
// Same numbers either way.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/quantizer.hpp"
#include "chord/core/strategy.hpp"
#include "chord/data/split.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/runtime_layers.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/personalize/device.hpp"
#include "chord/personalize/evaluator.hpp"

namespace chord::personalize {

struct EvaluatorOptions {
  int embedding_bits = 8;                                  // the non-personalized layers' uniform width
  LinearMode mode = LinearMode::mixed_s8;  // W-A8; mixed_f32 = W-A32
  const KernelTable* kernels = nullptr;                    // null: &chord::best_kernels()
  std::uint64_t seed = 42;  // the sampled protocol's negatives (models::EvalOptions's default)
};

template <typename Engine>
class EngineEvaluator : public DeviceEvaluator {
 public:
  struct EngineScratch : Scratch {
    EngineScratch(const Engine& f, const Engine& q)
        : fp32(f), quantized(q), fp32_scratch(fp32.make_scratch()), quantized_scratch(quantized.make_scratch()) {}
    Engine fp32, quantized;
    typename Engine::Scratch fp32_scratch, quantized_scratch;
    models::RankBuffers buffers;
  };

  std::unique_ptr<Scratch> make_scratch() const override { return std::make_unique<EngineScratch>(fp32_, quantized_); }

  UserEvaluation evaluate(std::size_t user, const std::vector<const float*>& weights,
                          const std::vector<std::vector<std::uint8_t>>& bits, Scratch& scratch) const override {
    CHORD_CHECK(user < user_count(), "evaluator: user ", user, " is out of range (", user_count(), " users)");
    EngineScratch& s = dynamic_cast<EngineScratch&>(scratch);
    const bool fp32 = bits.empty();
    Engine& engine = fp32 ? s.fp32 : s.quantized;
    if (fp32)
      engine.rebuild_projections(weights, models::InferenceOptions{});
    else
      rebuild_quantized(engine, weights, bits);
    const models::UserRanks ranks =
        models::rank_user(engine, split_, std::int32_t(user), data::Phase::test, options_.seed, true, true,
                          fp32 ? s.fp32_scratch : s.quantized_scratch, s.buffers);
    return {user_ranking(ranks.sampled), user_ranking(ranks.full)};
  }

  std::size_t user_count() const override { return std::size_t(split_.num_users); }
  const EvaluatorOptions& options() const { return options_; }
  const std::vector<LayerShape>& layers() const { return personalized_; }

 protected:
  // all / personalized: the engine's quantizable and personalized layers; frozen: the model's own
  // personalized matrices (personalized_weights); build(options) -> Engine.
  template <typename Build>
  EngineEvaluator(const data::LeaveOneOutSplit& split, std::vector<LayerShape> all, std::vector<LayerShape> personalized,
                  std::vector<const float*> frozen, const EvaluatorOptions& options, Build build)
      : split_(split), all_(std::move(all)), personalized_(std::move(personalized)), frozen_(std::move(frozen)),
        options_(resolved(options)), fp32_(build(models::InferenceOptions{})),
        quantized_(build(options_for(uniform_personalized_bits(personalized_, 8)))) {
    CHORD_CHECK(frozen_.size() == personalized_.size(), "evaluator: ", frozen_.size(), " frozen matrices for ",
                personalized_.size(), " personalized layers");
    codes_ = FrozenChannelCodes(personalized_, frozen_);
  }

 private:
  // The quantized engine's personalized layers at `bits` from `weights` (cached codes for frozen ones).
  void rebuild_quantized(Engine& engine, const std::vector<const float*>& weights,
                         const std::vector<std::vector<std::uint8_t>>& bits) const {
    inference_bits(all_, personalized_, bits, options_.embedding_bits);  // validates every width and count
    CHORD_CHECK(weights.size() == personalized_.size(), "evaluator: ", weights.size(), " weight matrices for ",
                personalized_.size(), " personalized layers");
    std::vector<QuantizedChannels> channels;
    for (std::size_t l = 0; l < personalized_.size(); ++l) {
      CHORD_CHECK(weights[l] != nullptr, "evaluator: layer ", l, " has no weights");
      channels.push_back(weights[l] == frozen_[l] ? codes_.select(l, bits[l])
                                                  : quantize_channels(weights[l], personalized_[l].channels,
                                                                      personalized_[l].fan_in, bits[l].data()));
    }
    install_personalized(engine, channels, options_.mode, options_.kernels);
  }

  static EvaluatorOptions resolved(EvaluatorOptions o) {
    check_width(o.embedding_bits, "embedding");
    CHORD_CHECK(o.mode != LinearMode::dense_f32, "evaluator: the quantized mode must be W-A8 or W-A32");
    if (o.kernels == nullptr) o.kernels = &chord::best_kernels();
    return o;
  }

  models::InferenceOptions options_for(const std::vector<std::vector<std::uint8_t>>& personalized_bits) const {
    return {options_.mode, inference_bits(all_, personalized_, personalized_bits, options_.embedding_bits),
            options_.kernels, {}};
  }

  const data::LeaveOneOutSplit& split_;
  std::vector<LayerShape> all_, personalized_;
  std::vector<const float*> frozen_;
  EvaluatorOptions options_;
  Engine fp32_, quantized_;
  FrozenChannelCodes codes_;
};

}  // namespace chord::personalize
