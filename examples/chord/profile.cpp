// examples/chord/profile.cpp: `chord profile` (device): a user's profile message for the cloud.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "file_checks.hpp"
#include "usage.hpp"
#include "common.hpp"
#include "personalize_common.hpp"

#include "chord/data/split.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/models/model_file.hpp"
#include "chord/personalize/device/device_model.hpp"

namespace chord::cli {

namespace {

struct ProfileArgs {
  bool allow_other_data = false;  // use a model on data other than it was trained on
  std::string model, data, out = "profile.chrp", palette = "0,2,4,8";
  long long user = 0;
  float budget = 4.0f;
};

int run_profile(const ProfileArgs& a) {
  const models::LoadedModel loaded = load_model_file(a.model);
  const LoadedData data = load_data_for(a.data, loaded, a.model, a.allow_other_data);
  const data::LeaveOneOutSplit split = data::leave_one_out(data.dataset);
  const std::int32_t user = user_index_of(data.dataset, a.user);  // dense index of the file's user id
  const personalize::DeviceModel device(loaded);
  ProfileMessage message;
  message.fingerprint = device.fingerprint();
  message.budget = a.budget;
  message.palette = parse_palette(a.palette);
  // the training items: what the hypernetworks were trained with (the adapters' profile)
  message.profile = device.profile(user, split.train[std::size_t(user)]);
  save_profile(a.out, message);
  std::printf("user %d: profile of %zu values from %zu items, budget %.2f bits, palette %s, model %s\n",
              data.dataset.user_ids[std::size_t(user)],
              message.profile.size(), split.train[std::size_t(user)].size(), double(a.budget), a.palette.c_str(),
              bytes::hex64(message.fingerprint).c_str());
  std::printf("saved %s (%zu bytes)\n", a.out.c_str(), profile_message_size(message.profile.size()));
  return 0;
}

}  // namespace

Action setup_profile(CLI::App& app) {
  auto a = std::make_shared<ProfileArgs>();
  CLI::App* sub = app.add_subcommand("profile", "CHORD (device): encode a user's profile and budget for the cloud");
  sub->footer(
      "Examples:\n"
      "  chord profile --model sasrec.safetensors --data ../shared/data/ml-100k/u.data --user 17 --budget 3\n"
      "The profile is the frozen fp32 model's state after the user's training items; the message (CHRP v1,\n"
      "docs/chord.md) carries it with the budget, the device's palette and the model's fingerprint, and no\n"
      "user id or interaction. The cloud answers with 'chord strategy'.\n");
  sub->add_option("--model", a->model, "Model file (the device's frozen model)")->required();
  sub->add_option("--data", a->data, "The dataset (not needed for synthetic data)");
  sub->add_flag("--allow-other-data", a->allow_other_data, "Use the model even on data other than the one it was trained on");
  sub->add_option("--user", a->user, "User id, as in the data file")->required();
  sub->add_option("--budget", a->budget, "Average bits per weight the device affords")->capture_default_str()
      ->check(kFinite & CLI::Range(0.0f, 8.0f));
  sub->add_option("--palette", a->palette, "The device's widths for levels 0..3")->capture_default_str()
      ->check(palette_check());
  sub->add_option("--out", a->out, "Where to write the profile message")->capture_default_str();
  return {sub, [a] { return run_profile(*a); }};
}

}  // namespace chord::cli
