// examples/chord/hypertrain.cpp: `chord hypertrain` (cloud): train CHORD's hypernetworks on a frozen model.
#include <chrono>
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
#include "chord/models/model_file.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"
#include "chord/personalize/training/hypernet_trainer.hpp"

namespace chord::cli {

namespace {

struct HypertrainArgs {
  bool allow_other_data = false;  // use a model on data other than it was trained on
  std::string model, data, out = "hyper.safetensors", budgets = "2,3,4,6";
  std::size_t steps = 300, users_per_step = 32, hidden = 64, rank = 4;
  int threads = 2;
  std::uint64_t seed = 1;
  float lr = 1e-2f;
};

int run_hypertrain(const HypertrainArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  check_output_path(a.out);  // before the training
  const models::LoadedModel loaded = load_model_file(a.model);
  const LoadedData data = load_data_for(a.data, loaded, a.model, a.allow_other_data);
  const data::LeaveOneOutSplit split = data::leave_one_out(data.dataset);
  const std::unique_ptr<personalize::PersonalizableBackbone> backbone = make_backbone(loaded, split);
  const std::vector<personalize::PersonalizedLayer> layers = backbone->layers();
  const personalize::QuantizationCache cache(layers);
  personalize::Hypernetworks nets(personalize::layer_shapes(layers), {backbone->profile_dim(), a.hidden, a.rank});
  nets.init(a.seed);

  // every user with at least one next-item pair in training
  std::vector<std::size_t> users;
  for (std::size_t u = 0; u < split.train.size(); ++u)
    if (split.train[u].size() >= 2) users.push_back(u);
  CHORD_CHECK(!users.empty(), "hypertrain: no user has two training items");

  personalize::TrainOptions o;
  o.steps = a.steps, o.users_per_step = a.users_per_step, o.threads = std::size_t(a.threads), o.seed = a.seed;
  o.adam.lr = a.lr;
  o.budget_classes = parse_numbers(a.budgets, "--budgets");
  for (double b : o.budget_classes) CHORD_CHECK(b >= 0.0 && b <= 8.0, "--budgets: ", b, " is not in [0, 8]");
  o.progress = stderr_is_terminal();
  std::printf("hypertrain: %s backbone, %zu personalized layers (%zu channels, %.0f weights), profile %zu values; "
              "nets hidden %zu, rank %zu (%zu parameters); %zu users, %zu steps x %zu users, budgets %s, %zu thread(s), "
              "seed %llu\n",
              backbone->architecture().c_str(), layers.size(), cache.total_channels(), cache.total_weights(),
              backbone->profile_dim(), a.hidden, a.rank, nets.params().element_count(), users.size(), o.steps,
              o.users_per_step, a.budgets.c_str(), o.threads, static_cast<unsigned long long>(o.seed));
  std::fflush(stdout);
  personalize::HypernetTrainer trainer(*backbone, nets, cache, users, o);
  const std::vector<personalize::StepStats> history = trainer.train();
  const std::size_t every = std::max<std::size_t>(1, history.size() / 10);
  for (std::size_t i = 0; i < history.size(); ++i)
    if (i % every == 0 || i + 1 == history.size()) {
      const personalize::StepStats& s = history[i];
      std::printf("step %4zu  rec loss %.4f  penalty %.4f  expected bits %.2f (budget %.2f)\n", s.step, s.rec_loss,
                  s.penalty, s.expected_bits, s.budget);
    }
  personalize::save_hypernetworks(a.out, nets, personalize::backbone_fingerprint(*backbone));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("saved %s (model fingerprint %s) in %.1f s\n", a.out.c_str(),
              bytes::hex64(personalize::backbone_fingerprint(*backbone)).c_str(), seconds);
  return 0;
}

}  // namespace

Action setup_hypertrain(CLI::App& app) {
  auto a = std::make_shared<HypertrainArgs>();
  CLI::App* sub = app.add_subcommand("hypertrain", "CHORD (cloud): train the hypernetworks that personalize a frozen model");
  sub->footer(
      "Examples:\n"
      "  chord hypertrain --model sasrec.safetensors --data ../shared/data/ml-100k/u.data --out hyper.safetensors\n"
      "  chord hypertrain --model caser.safetensors --steps 50 --budgets 3 --out caser-hyper.safetensors   (synthetic data)\n"
      "The model stays frozen. Per step, --users-per-step users each get a budget from --budgets, a relaxed\n"
      "per-channel bit assignment from the hypernetworks, and the loss of the model with those weights on\n"
      "their training items (docs/chord.md). The file is read by 'chord strategy'.\n");
  sub->add_option("--model", a->model, "Model file written by 'chord train'")->required();
  sub->add_option("--data", a->data, "The dataset the model was trained on (not needed for synthetic data)");
  sub->add_flag("--allow-other-data", a->allow_other_data, "Use the model even on data other than the one it was trained on");
  sub->add_option("--out", a->out, "Where to write the hypernetworks")->capture_default_str();
  sub->add_option("--steps", a->steps, "Adam steps")->capture_default_str();
  sub->add_option("--users-per-step", a->users_per_step, "Users per step")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->add_option("--budgets", a->budgets, "Device budget classes (average bits per weight)")->capture_default_str()
      ->check(numbers_in(0.0, 8.0));
  sub->add_option("--hidden", a->hidden, "Hidden width of each hypernetwork")->capture_default_str()->check(CLI::Range(1, 4096));
  sub->add_option("--rank", a->rank, "Rank of the element-level sensitivity")->capture_default_str()->check(CLI::Range(1, 4096));
  sub->add_option("--lr", a->lr, "Adam learning rate")->capture_default_str();
  sub->add_option("--threads", a->threads, "Worker threads over users")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--seed", a->seed, "Seed (initialization, users, budgets, noise)")->capture_default_str();
  return {sub, [a] { return run_hypertrain(*a); }};
}

}  // namespace chord::cli
