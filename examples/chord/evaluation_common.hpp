// examples/chord/evaluation_common.hpp: what `chord experiment` and `chord demo` share to run
// personalize/experiment/experiment.hpp on a real model: the cloud's backbone with its evaluator, the device
// build (an installed DeviceModel per worker thread, so adaptation times and model bytes are the device's),
// and the single-user latency of the device model (measure_latency).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chord/data/candidates.hpp"
#include "chord/data/split.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/personalize/cloud/personalizer.hpp"
#include "chord/personalize/device/device_model.hpp"
#include "chord/personalize/experiment/experiment.hpp"
#include "chord/personalize/experiment/model_evaluators.hpp"
#include "chord/personalize/training/caser_backbone.hpp"
#include "chord/personalize/training/sasrec_backbone.hpp"

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
inline personalize::MakeDeviceBuilder device_build(const models::LoadedModel& m, const personalize::DeviceOptions& o) {
  const std::size_t fp32_bytes = fp32_model_bytes(m);
  return [&m, o, fp32_bytes]() -> std::unique_ptr<personalize::DeviceBuilder> {
    return std::make_unique<InstalledDevice>(m, o, fp32_bytes);
  };
}

// Single-user latency (batch 1, one thread) of an inference engine as it is built now: encode the user's
// test-phase history and score the sampled protocol's 101 candidates (the target and its 100 seeded
// negatives); the median of `reps` runs, in microseconds.
template <class Engine>
double single_user_latency_us(const Engine& engine, const data::LeaveOneOutSplit& split, std::int32_t user,
                              std::uint64_t negatives_seed, int reps = 7) {
  const std::vector<data::ItemId> history = split.history(user, data::Phase::test);
  std::vector<data::ItemId> candidates = {split.target(user, data::Phase::test)};
  const std::vector<data::ItemId> negatives = data::sampled_negatives(split, user, data::Phase::test, negatives_seed);
  candidates.insert(candidates.end(), negatives.begin(), negatives.end());
  auto scratch = engine.make_scratch();
  std::vector<float> state(engine.state_size()), scores(candidates.size());
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    engine.encode(user, history.data(), history.size(), scratch, state.data());
    engine.score(state.data(), candidates.data(), candidates.size(), scores.data(), scratch);
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return personalize::median_of(times);
}

inline double single_user_latency_us(const personalize::DeviceModel& device, const data::LeaveOneOutSplit& split,
                                     std::int32_t user, std::uint64_t negatives_seed) {
  return device.sasrec() != nullptr ? single_user_latency_us(*device.sasrec(), split, user, negatives_seed)
                                    : single_user_latency_us(*device.caser(), split, user, negatives_seed);
}

// Medians over `users` of the single-user latency: fp32; uniform 2, 4 and 8 bits; CHORD at each budget, the
// device running the loop for real for each user (its own profile, the bytes both ways through `cloud`,
// its adaptation to the answer) before it is timed. Mixed strategies of other origins (user-agnostic,
// random, ...) run the same kernels at the same widths and are not timed separately.
struct LatencyFigures {
  double fp32_us = 0.0;
  std::vector<double> uniform_us;  // 2, 4, 8 bits
  std::vector<double> chord_us;    // per budget
};

inline LatencyFigures measure_latency(const models::LoadedModel& loaded, const personalize::DeviceOptions& options,
                                      const personalize::CloudPersonalizer& cloud, const data::LeaveOneOutSplit& split,
                                      const std::vector<std::size_t>& users, const std::vector<double>& budgets,
                                      std::uint64_t negatives_seed) {
  using namespace chord::personalize;
  DeviceModel device(loaded, options);
  const auto median_over_users = [&](const auto& time_user) {
    std::vector<double> per_user;
    for (std::size_t user : users) per_user.push_back(time_user(std::int32_t(user)));
    return median_of(per_user);
  };
  LatencyFigures f;
  f.fp32_us = loaded.sasrec ? median_over_users([&, engine = models::SasrecInference(*loaded.sasrec, {})](std::int32_t u) {
    return single_user_latency_us(engine, split, u, negatives_seed);
  })
                            : median_over_users([&, engine = models::CaserInference(*loaded.caser, {})](std::int32_t u) {
                                return single_user_latency_us(engine, split, u, negatives_seed);
                              });
  for (int bits : {2, 4, 8}) {
    device.apply_bits(uniform_personalized_bits(loaded, bits));
    f.uniform_us.push_back(
        median_over_users([&](std::int32_t u) { return single_user_latency_us(device, split, u, negatives_seed); }));
  }
  for (double budget : budgets)
    f.chord_us.push_back(median_over_users([&](std::int32_t u) {
      const std::vector<float> profile = device.profile(u, split.history(u, data::Phase::test));
      const std::vector<std::uint8_t> request =
          encode_profile({device.fingerprint(), float(budget), kStandardPalette, profile});
      const std::vector<std::uint8_t> answer =
          cloud.respond(request.data(), request.size(), "device of user " + std::to_string(u));
      device.adapt(answer.data(), answer.size(), "cloud answer for user " + std::to_string(u));
      return single_user_latency_us(device, split, u, negatives_seed);
    }));
  return f;
}

}  // namespace chord::cli
