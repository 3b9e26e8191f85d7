// examples/chord/strategy.cpp: `chord strategy` (cloud): answer a profile message with a strategy packet.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "file_checks.hpp"
#include "personalize_common.hpp"

#include "chord/io/atomic_file.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/model_file.hpp"
#include "chord/personalize/cloud/personalizer.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"

namespace chord::cli {

namespace {

struct StrategyArgs {
  std::string model, hyper, profile, out = "strategy.chrs";
};

int run_strategy(const StrategyArgs& a) {
  const models::LoadedModel loaded = load_model_file(a.model);
  const std::vector<personalize::PersonalizedLayer> layers = personalized_view(loaded);
  const std::uint64_t fingerprint = personalize::device_fingerprint(loaded);
  const std::unique_ptr<personalize::Hypernetworks> nets = load_hypernetworks_for(a.hyper, loaded);
  const personalize::QuantizationCache cache(layers);
  const personalize::CloudPersonalizer cloud(*nets, cache, fingerprint);
  const std::vector<std::uint8_t> request =
      read_profile_for(a.profile, loaded, a.model, fingerprint, cloud.expectation().profile_dim);
  const ProfileMessage message = decode_profile(request.data(), request.size(), cloud.expectation(), a.profile);
  const StrategyPacket packet = cloud.respond(message);
  const std::vector<std::uint8_t> answer = encode_strategy(packet);
  write_file_atomic(a.out, answer.data(), answer.size());
  std::size_t channels = 0;
  for (const LayerShape& s : cache.shapes()) channels += s.channels;
  std::printf("strategy for budget %.2f bits, palette %s: %.3f average bits over %zu channels of %zu layers\n",
              double(packet.budget), palette_text(packet.palette).c_str(),
              average_bits(packet.strategy, cache.shapes(), packet.palette), channels, cache.shapes().size());
  std::printf("saved %s (%zu bytes; the fp32 weights would be %.0f bytes)\n", a.out.c_str(), answer.size(),
              cache.total_weights() * 4.0);
  return 0;
}

}  // namespace

Action setup_strategy(CLI::App& app) {
  auto a = std::make_shared<StrategyArgs>();
  CLI::App* sub = app.add_subcommand("strategy", "CHORD (cloud): a per-channel bit-width strategy for a profile message");
  sub->footer(
      "Examples:\n"
      "  chord strategy --model sasrec.safetensors --hyper hyper.safetensors --profile profile.chrp --out s.chrs\n"
      "The hypernetworks ('chord hypertrain') map the profile to channel importances, and the budget solver\n"
      "assigns each channel a level (2 bits on the wire) meeting the message's budget under its palette.\n"
      "The packet (CHRS v1, docs/strategy-packet.md) is applied on the device by 'chord infer'.\n");
  sub->add_option("--model", a->model, "Model file (the frozen backbone)")->required();
  sub->add_option("--hyper", a->hyper, "Hypernetworks written by 'chord hypertrain'")->required();
  sub->add_option("--profile", a->profile, "Profile message written by 'chord profile'")->required();
  sub->add_option("--out", a->out, "Where to write the strategy packet")->capture_default_str();
  return {sub, [a] { return run_strategy(*a); }};
}

}  // namespace chord::cli
