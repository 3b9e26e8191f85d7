// examples/chord/infer.cpp: `chord infer` (device): apply a strategy packet and rank items for a user.
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "file_checks.hpp"
#include "usage.hpp"
#include "common.hpp"
#include "personalize_common.hpp"

#include "chord/data/split.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/model_file.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/personalize/device/device_model.hpp"

namespace chord::cli {

namespace {

struct InferArgs {
  bool allow_other_data = false;  // use a model on data other than it was trained on
  std::string model, strategy, data, palette, activations = "s8";
  long long user = 0;
  std::size_t top = 10;
  int embedding_bits = 8;
};

int run_infer(const InferArgs& a) {
  const models::LoadedModel loaded = load_model_file(a.model);
  const LoadedData data = load_data_for(a.data, loaded, a.model, a.allow_other_data);
  const data::LeaveOneOutSplit split = data::leave_one_out(data.dataset);
  const std::int32_t user = user_index_of(data.dataset, a.user);  // dense index of the file's user id
  personalize::DeviceOptions o;
  o.embedding_bits = a.embedding_bits;
  o.mode = a.activations == "s8" ? LinearMode::mixed_s8 : LinearMode::mixed_f32;
  personalize::DeviceModel device(loaded, o);
  const std::vector<std::uint8_t> packet = read_packet_for(a.strategy, loaded, a.model, device.expectation());
  // the device's palette: the one it asked with (carried back in the packet) unless told otherwise
  const std::optional<Palette> palette = a.palette.empty() ? std::nullopt : std::optional<Palette>(parse_palette(a.palette));
  const personalize::Adaptation adaptation = device.adapt(packet.data(), packet.size(), a.strategy, palette);

  // predict the test item: the history is train + validation (docs/design.md#evaluation)
  const std::vector<data::ItemId> history = split.history(user, data::Phase::test);
  const data::ItemId target = split.target(user, data::Phase::test);
  const auto top = device.top_items(user, history, a.top);
  const KernelTable& kernels = o.kernels ? *o.kernels : best_kernels();
  std::printf("model %s (%s), kernels %s/%s, W-A%s, embeddings at %d bits\n", a.model.c_str(),
              loaded.architecture.c_str(), std::string(isa_name(kernels.isa)).c_str(), kernels.backend,
              a.activations == "s8" ? "8" : "32", a.embedding_bits);
  std::printf("strategy %s: budget %.2f, palette %s, %.3f average bits on the personalized layers; model %zu bytes\n",
              a.strategy.c_str(), double(adaptation.packet.budget), palette_text(adaptation.palette).c_str(),
              adaptation.average_bits, device.weight_bytes());
  std::printf("adaptation: decode %.3f ms + quantize and pack %.3f ms = %.3f ms\n", adaptation.decode_seconds * 1e3,
              adaptation.quantize_seconds * 1e3, (adaptation.decode_seconds + adaptation.quantize_seconds) * 1e3);
  std::printf("user %d, %zu items of history; top %zu:\n", data.dataset.user_ids[std::size_t(user)], history.size(),
              top.size());
  for (std::size_t i = 0; i < top.size(); ++i) {
    CHORD_CHECK(std::isfinite(top[i].second), "model '", a.model, "' with strategy '", a.strategy, "': score of item ",
                data::raw_item_id(data.dataset, top[i].first), " is not finite (", top[i].second, ")");
    std::printf("%3zu  item %6d  score %9.4f%s\n", i + 1, data::raw_item_id(data.dataset, top[i].first),
                double(top[i].second), top[i].first == target && target != 0 ? "  <- the user's test item" : "");
  }
  return 0;
}

}  // namespace

Action setup_infer(CLI::App& app) {
  auto a = std::make_shared<InferArgs>();
  CLI::App* sub = app.add_subcommand("infer", "CHORD (device): apply a strategy packet and rank items for a user");
  sub->footer(
      "Examples:\n"
      "  chord infer --model sasrec.safetensors --strategy s.chrs --data ../shared/data/ml-100k/u.data --user 17\n"
      "The device decodes the packet (refusing one for another model), quantizes and packs its frozen\n"
      "personalized layers per channel (no gradients), and runs the mixed-precision model through the best\n"
      "kernels of this CPU on the user's history (train + validation items); the adaptation is timed.\n");
  sub->add_option("--model", a->model, "Model file (the device's frozen model)")->required();
  sub->add_option("--strategy", a->strategy, "Strategy packet written by 'chord strategy'")->required();
  sub->add_option("--data", a->data, "The dataset (not needed for synthetic data)");
  sub->add_flag("--allow-other-data", a->allow_other_data, "Use the model even on data other than the one it was trained on");
  sub->add_option("--user", a->user, "User id, as in the data file")->required();
  sub->add_option("--top", a->top, "How many items to list")->capture_default_str()->check(CLI::Range(1, 1000000));
  sub->add_option("--palette", a->palette, "Decode with this palette (default: the packet's)")->check(palette_check());
  sub->add_option("--embedding-bits", a->embedding_bits, "Width of the embeddings (2, 4 or 8)")->capture_default_str()
      ->check(CLI::IsMember({2, 4, 8}));
  sub->add_option("--activations", a->activations, "s8 (W-A8) or f32 (W-A32)")->capture_default_str()
      ->check(CLI::IsMember({"s8", "f32"}));
  return {sub, [a] { return run_infer(*a); }};
}

}  // namespace chord::cli
