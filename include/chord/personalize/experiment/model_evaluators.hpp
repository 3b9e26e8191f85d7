// chord/personalize/experiment/model_evaluators.hpp: the experiment's DeviceEvaluator for each real
// backbone (evaluator.hpp): EngineEvaluator over the model's inference graph, built from the model's
// description (models/description.hpp), with the device's adaptation path.
#pragma once

#include "chord/data/split.hpp"
#include "chord/models/caser.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/description.hpp"
#include "chord/models/sasrec.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/personalize/experiment/engine_evaluator.hpp"

namespace chord::personalize {

// DeviceEvaluator for SASRec (evaluator.hpp, engine_evaluator.hpp).
class SasrecEvaluator : public EngineEvaluator<models::SasrecInference> {
 public:
  // Keeps a reference to the split (it must outlive the evaluator); the engines copy the weights.
  SasrecEvaluator(const models::SasrecModel& model, const data::LeaveOneOutSplit& split, const EvaluatorOptions& o = {})
      : EngineEvaluator(split, models::describe(model.config()), model.params(), o,
                        [&](const models::InferenceOptions& options) { return models::SasrecInference(model, options); }) {}
};

// DeviceEvaluator for Caser (evaluator.hpp, engine_evaluator.hpp).
class CaserEvaluator : public EngineEvaluator<models::CaserInference> {
 public:
  // Keeps a reference to the split (it must outlive the evaluator); the engines copy the weights.
  CaserEvaluator(const models::CaserModel& model, const data::LeaveOneOutSplit& split, const EvaluatorOptions& o = {})
      : EngineEvaluator(split, models::describe(model.config()), model.params(), o,
                        [&](const models::InferenceOptions& options) { return models::CaserInference(model, options); }) {}
};

}  // namespace chord::personalize
