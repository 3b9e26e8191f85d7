// chord/personalize/experiment/engine_evaluator.hpp: DeviceEvaluator (evaluator.hpp) over an inference graph.
//
// One implementation for SASRec and Caser (SasrecEvaluator, CaserEvaluator in the backbone headers): an
// engine is models::SasrecInference or models::CaserInference, which both offer rebuild_personalized
// (models/engine_slots.hpp) and the interface models::rank_user ranks with.
//   bits empty: the fp32 engine (no kernel table: the graph models::evaluate's fp32 runs use) with the
//               given weights;
//   otherwise:  the quantized engine (options.mode, W-A8 by default, through options.kernels or
//               &chord::best_kernels()), embeddings installed once at options.embedding_bits, the
//               personalized layers at `bits` from the given weights by the device's own path
//               (device/adaptation.hpp: select the cached codes, install).
// Each Scratch owns copies of both engines, so evaluate() is const and thread-safe per Scratch; the
// metric code is models::rank_user's, the one models::evaluate runs.
// The frozen weights are what most calls pass (the same pointers), so those layers only select and
// pack cached codes, as the device does; a fine-tuned matrix is quantized afresh. Same numbers either way.
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
#include "chord/models/description.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/runtime_layers.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/personalize/device/adaptation.hpp"
#include "chord/personalize/device/plan.hpp"
#include "chord/personalize/experiment/evaluator.hpp"

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
      engine.rebuild_personalized(weights, models::InferenceOptions{});
    else
      install_personalized(engine, codes_.select(checked(bits), weights), options_.mode, options_.kernels);
    const models::UserRanks ranks =
        models::rank_user(engine, split_, std::int32_t(user), data::Phase::test, options_.seed, true, true,
                          fp32 ? s.fp32_scratch : s.quantized_scratch, s.buffers);
    return {user_ranking(ranks.sampled), user_ranking(ranks.full)};
  }

  std::size_t user_count() const override { return std::size_t(split_.num_users); }
  const EvaluatorOptions& options() const { return options_; }
  const std::vector<LayerShape>& layers() const { return personalized_; }

 protected:
  // model: the engine's description; params: the model's parameters (the frozen personalized
  // matrices are read from them); build(options) -> Engine.
  template <typename Build>
  EngineEvaluator(const data::LeaveOneOutSplit& split, models::ModelDescription model, const nn::Parameters& params,
                  const EvaluatorOptions& options, Build build)
      : split_(split), model_(std::move(model)), personalized_(model_.personalized_shapes()),
        options_(resolved(options)), fp32_(build(models::InferenceOptions{})),
        quantized_(build(options_for(uniform_personalized_bits(personalized_, 8)))),
        codes_(personalized_, model_.personalized_weights(params)) {}

 private:
  const Widths& checked(const Widths& bits) const {
    inference_bits(model_, bits, options_.embedding_bits);  // validates every width and count
    return bits;
  }

  static EvaluatorOptions resolved(EvaluatorOptions o) {
    check_width(o.embedding_bits, "embedding");
    CHORD_CHECK(o.mode != LinearMode::dense_f32, "evaluator: the quantized mode must be W-A8 or W-A32");
    if (o.kernels == nullptr) o.kernels = &chord::best_kernels();
    return o;
  }

  models::InferenceOptions options_for(const std::vector<std::vector<std::uint8_t>>& personalized_bits) const {
    return {options_.mode, inference_bits(model_, personalized_bits, options_.embedding_bits), options_.kernels, {}};
  }

  const data::LeaveOneOutSplit& split_;
  models::ModelDescription model_;
  std::vector<LayerShape> personalized_;
  EvaluatorOptions options_;
  Engine fp32_, quantized_;
  FrozenChannelCodes codes_;
};

}  // namespace chord::personalize
