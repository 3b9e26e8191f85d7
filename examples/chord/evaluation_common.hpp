// examples/chord/evaluation_common.hpp: what `chord experiment` and `chord demo` share to run
// personalize/experiment.hpp on a real model: the cloud's backbone with its evaluator, and the device
// build (an installed DeviceModel per worker thread, so adaptation times and model bytes are the device's).
#pragma once

#include <cstddef>
#include <memory>

#include "chord/data/split.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/personalize/caser_backbone.hpp"
#include "chord/personalize/device.hpp"
#include "chord/personalize/experiment.hpp"
#include "chord/personalize/sasrec_backbone.hpp"

namespace chord::cli {

// A backbone with its evaluator, owned (both keep references to the model and the split).
struct EvaluatedBackbone {
  std::unique_ptr<personalize::PersonalizableBackbone> backbone;
  std::unique_ptr<personalize::DeviceEvaluator> evaluator;
};

inline EvaluatedBackbone make_evaluated_backbone(const models::LoadedModel& m, const data::LeaveOneOutSplit& split,
                                                 const personalize::EvaluatorOptions& eo) {
  using namespace chord::personalize;
  if (m.sasrec)
    return {std::make_unique<SasrecBackbone>(*m.sasrec, split), std::make_unique<SasrecEvaluator>(*m.sasrec, split, eo)};
  return {std::make_unique<CaserBackbone>(*m.caser, split), std::make_unique<CaserEvaluator>(*m.caser, split, eo)};
}

// The device's own adaptation: an installed DeviceModel per worker, re-packed at each strategy.
class InstalledDevice : public personalize::DeviceBuilder {
 public:
  InstalledDevice(const models::LoadedModel& m, const personalize::DeviceOptions& o, std::size_t fp32_bytes)
      : device_(m, o), fp32_bytes_(fp32_bytes) {}
  std::size_t build(const personalize::Widths& bits) override {
    if (bits.empty()) return fp32_bytes_;
    device_.apply_bits(bits);
    return device_.weight_bytes();
  }

 private:
  personalize::DeviceModel device_;
  std::size_t fp32_bytes_;
};

// Bytes of the whole fp32 model as the device would hold it.
inline std::size_t fp32_model_bytes(const models::LoadedModel& m) {
  return m.sasrec ? models::SasrecInference(*m.sasrec, {}).weight_bytes()
                  : models::CaserInference(*m.caser, {}).weight_bytes();
}

// `m` is kept by reference: it must outlive the builders.
inline personalize::DeviceBuild device_build(const models::LoadedModel& m, const personalize::DeviceOptions& o) {
  const std::size_t fp32_bytes = fp32_model_bytes(m);
  return [&m, o, fp32_bytes]() -> std::unique_ptr<personalize::DeviceBuilder> {
    return std::make_unique<InstalledDevice>(m, o, fp32_bytes);
  };
}

}  // namespace chord::cli
