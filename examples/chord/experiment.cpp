// examples/chord/experiment.cpp: `chord experiment`: CHORD against every baseline at equal average bits on a
// trained SASRec or Caser (personalize/experiment/experiment.hpp does the work; this file wires the real models in).
//
//   the trained backbone   SasrecBackbone / CaserBackbone on the model file and its data's leave-one-out split
//   its evaluator          SasrecEvaluator / CaserEvaluator: HR/NDCG@5/10 of the test item, sampled (100
//                          seeded negatives) and full ranking, the non-personalized layers (embeddings) at
//                          --embedding-bits, W-A8 or W-A32 through the best kernels (CHORD_ISA/CHORD_BACKEND)
//   the device build       DeviceModel::apply_bits (quantize + pack the personalized layers), one installed
//                          model per worker thread: the adaptation time and the model bytes are the device's
//   hypernetworks          --hyper FILE, or trained here (--steps, --users-per-step; --save-hyper keeps them)
//   the ablation           the same architecture and configuration, randomly initialized (--random-seed),
//                          with its own hypernetworks trained here (--random-hyper FILE to reuse them);
//                          --no-ablation skips it.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "file_checks.hpp"
#include "usage.hpp"
#include "common.hpp"
#include "evaluation_common.hpp"

#include "chord/data/split.hpp"
#include "chord/io/safetensors.hpp"
#include "chord/models/model_file.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/cloud/personalizer.hpp"
#include "chord/personalize/device/device_model.hpp"
#include "chord/personalize/experiment/experiment.hpp"
#include "chord/personalize/experiment/model_evaluators.hpp"
#include "chord/personalize/experiment/report_json.hpp"
#include "chord/personalize/training/caser_backbone.hpp"
#include "chord/personalize/training/hypernet_trainer.hpp"
#include "chord/personalize/training/sasrec_backbone.hpp"

namespace chord::cli {

namespace {

using namespace chord::personalize;

struct ExperimentArgs {
  bool allow_other_data = false;  // use a model on data other than it was trained on
  std::string model, data, hyper, random_hyper, save_hyper, report, budgets = "2,3,4", activations = "s8";
  std::size_t latency_users = 20;
  std::size_t users = 500, qat_users = 100, qat_steps = 20, steps = 300, users_per_step = 32, hidden = 64, rank = 4;
  std::size_t population_users = 1000;
  float qat_lr = 1e-3f;
  int embedding_bits = 8, threads = 2;
  std::uint64_t seed = 1, random_seed = 1000, negatives_seed = 42;
  bool no_ablation = false;
};

std::vector<double> parse_budgets(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) continue;
    std::size_t used = 0;
    double b = 0.0;
    try {
      b = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(b >= 0.0 && b <= 8.0))
      throw Error("--budgets: '" + item + "' is not a number of bits in [0, 8]");
    out.push_back(b);
  }
  if (out.empty()) throw Error("--budgets: no budget given");
  return out;
}

// Hypernetworks from a file (their config from its metadata), or trained here on every user.
std::unique_ptr<Hypernetworks> hypernetworks_for(const PersonalizableBackbone& backbone, const std::string& path,
                                                 const ExperimentArgs& a, const std::string& what,
                                                 std::string& description) {
  const std::vector<LayerShape> shapes = layer_shapes(backbone.layers());
  if (!path.empty()) {
    expect_file_kind(path, FileKind::hypernetworks, "--hyper");
    const SafetensorsFile file = load_safetensors(path);
    const HypernetConfig config = hypernet_config_from(file, backbone.profile_dim(), path);
    auto nets = std::make_unique<Hypernetworks>(shapes, config);
    read_hypernetworks(file, *nets, backbone_fingerprint(backbone), path);
    description = "file " + path;
    std::printf("hypernetworks for the %s backbone: %s (hidden %zu, rank %zu)\n", what.c_str(), path.c_str(),
                config.hidden, config.rank);
    return nets;
  }
  auto nets = std::make_unique<Hypernetworks>(shapes, HypernetConfig{backbone.profile_dim(), a.hidden, a.rank});
  nets->init(a.seed);
  const QuantizationCache cache(backbone.layers());
  TrainOptions t;
  t.steps = a.steps;
  t.users_per_step = a.users_per_step;
  t.threads = std::size_t(a.threads);
  t.seed = a.seed;
  std::vector<std::size_t> users(backbone.user_count());
  for (std::size_t u = 0; u < users.size(); ++u) users[u] = u;
  std::printf("training hypernetworks on the %s backbone: %zu steps x %zu users (hidden %zu, rank %zu)\n",
              what.c_str(), t.steps, t.users_per_step, a.hidden, a.rank);
  std::fflush(stdout);
  HypernetTrainer trainer(backbone, *nets, cache, users, t);
  const std::vector<StepStats> history = trainer.train();
  if (!history.empty())
    std::printf("  last step: loss %.4f, penalty %.4f, expected bits %.2f for budget %.2f\n", history.back().rec_loss,
                history.back().penalty, history.back().expected_bits, history.back().budget);
  description = "trained: " + std::to_string(t.steps) + " steps x " + std::to_string(t.users_per_step) +
                " users, seed " + std::to_string(t.seed);
  return nets;
}

int run_experiment_command(const ExperimentArgs& a) {
  const std::vector<double> budgets = parse_budgets(a.budgets);
  models::LoadedModel loaded = load_model_file(a.model);
  const LoadedData data = load_data_for(a.data, loaded, a.model, a.allow_other_data);
  const data::LeaveOneOutSplit split = data::leave_one_out(data.dataset);
  const KernelTable& kernels = best_kernels();
  const LinearMode mode = a.activations == "f32" ? LinearMode::mixed_f32 : LinearMode::mixed_s8;
  const EvaluatorOptions eo{a.embedding_bits, mode, &kernels, a.negatives_seed};
  const DeviceOptions device{a.embedding_bits, mode, &kernels};
  std::printf("model %s (%s), kernels %s/%s, weights-activations W-A%s, embeddings at %d bits, %d thread(s)\n",
              a.model.c_str(), loaded.architecture.c_str(), std::string(isa_name(kernels.isa)).c_str(),
              kernels.backend, a.activations == "f32" ? "32" : "8", a.embedding_bits, a.threads);

  const EvaluatedBackbone trained = make_evaluated_backbone(loaded, split, eo);
  std::string trained_nets_from, random_nets_from;
  const std::unique_ptr<Hypernetworks> nets = hypernetworks_for(*trained.backbone, a.hyper, a, "trained", trained_nets_from);
  if (a.hyper.empty() && !a.save_hyper.empty()) {
    save_hypernetworks(a.save_hyper, *nets, backbone_fingerprint(*trained.backbone));
    std::printf("hypernetworks written to %s\n", a.save_hyper.c_str());
  }

  // The ablation: the same architecture and configuration, randomly initialized.
  models::LoadedModel random_loaded;
  EvaluatedBackbone random;
  std::unique_ptr<Hypernetworks> random_nets;
  if (!a.no_ablation) {
    random_loaded.architecture = loaded.architecture;
    if (loaded.sasrec) {
      random_loaded.sasrec.emplace(loaded.sasrec->config());
      random_loaded.sasrec->init(a.random_seed);
    } else {
      random_loaded.caser.emplace(loaded.caser->config());
      random_loaded.caser->init(a.random_seed);
    }
    random = make_evaluated_backbone(random_loaded, split, eo);
    random_nets = hypernetworks_for(*random.backbone, a.random_hyper, a, "random", random_nets_from);
  }

  ExperimentOptions o;
  o.budgets = budgets;
  o.evaluation_users = a.users;
  o.qat_users = a.qat_users;
  o.population_users = a.population_users;
  o.finetune.steps = a.qat_steps;
  o.finetune.adam.lr = a.qat_lr;
  o.seed = a.seed;
  o.threads = std::size_t(a.threads);
  o.log = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  const ExperimentModel trained_model{trained.backbone.get(), trained.evaluator.get(), nets.get(),
                                      device_build(loaded, device)};
  ExperimentModel random_model;
  if (!a.no_ablation)
    random_model = {random.backbone.get(), random.evaluator.get(), random_nets.get(), device_build(random_loaded, device)};
  ExperimentReport report = run_experiment(trained_model, a.no_ablation ? nullptr : &random_model, o);
  report.hypernetworks = trained_nets_from;
  if (!a.no_ablation) report.hypernetworks += "; random backbone: " + random_nets_from;
  if (a.latency_users > 0) {
    std::vector<std::size_t> users = report.find("fp32", budgets.front())->user_ids;
    users.resize(std::min(users.size(), a.latency_users));
    std::printf("single-user latency (batch 1, one thread; encode + 101 candidates) on %zu users\n", users.size());
    const QuantizationCache cache(trained.backbone->layers());
    const CloudPersonalizer cloud(*nets, cache, device_fingerprint(loaded));
    const LatencyFigures latency = measure_latency(loaded, device, cloud, split, users, budgets, a.negatives_seed);
    const auto set = [&](const char* method, double budget, double us) {
      if (MethodResult* r = report.find(method, budget); r != nullptr && r->available) r->latency_us = us;
    };
    for (std::size_t b = 0; b < budgets.size(); ++b) {
      set("fp32", budgets[b], latency.fp32_us);
      set("chord", budgets[b], latency.chord_us[b]);
      const double widths[] = {2.0, 4.0, 8.0};
      for (std::size_t w = 0; w < 3; ++w)
        if (budgets[b] == widths[w]) set("uniform", budgets[b], latency.uniform_us[w]);
    }
  }

  std::printf("\n");
  print_experiment_table(report);
  if (const MethodResult* chord = report.find("chord", budgets.front()); chord != nullptr && chord->bytes_sent > 0.0)
    std::printf("\nstrategy packet: %.0f bytes for %.0f fp32 bytes of personalized weights: 1/%.0f (target: 1/500 "
                "or less); profile upload %zu bytes\n",
                chord->bytes_sent, report.fp32_personalized_bytes, report.fp32_personalized_bytes / chord->bytes_sent,
                report.profile_message_bytes);
  if (report.qat_users > 0)
    std::printf("qat: on-device fine-tuning of %zu of the %zu users (%zu Adam steps, lr %g, best validation step "
                "kept), from the user_agnostic widths\n",
                report.qat_users, report.evaluation_users, report.qat_steps, report.qat_lr);
  if (!a.report.empty()) {
    write_experiment_report(a.report, report);
    std::printf("report written to %s\n", a.report.c_str());
  }
  return 0;
}

}  // namespace

Action setup_experiment(CLI::App& app) {
  auto a = std::make_shared<ExperimentArgs>();
  CLI::App* sub = app.add_subcommand("experiment", "CHORD against every baseline at equal average bits (HR/NDCG, bits, "
                                                   "bytes, adaptation time)");
  sub->footer(
      "Examples:\n"
      "  chord experiment --model sasrec.safetensors --data ../shared/data/ml-100k/u.data --report exp.json\n"
      "  chord experiment --model caser.safetensors --hyper caser-hyper.safetensors --budgets 2,4 --users 0 --qat-users 50\n"
      "Methods per budget: fp32, uniform (when the budget is 2, 4 or 8), user_agnostic, random_mixed, q2_energy,\n"
      "chord (each user's own strategy through the profile -> cloud -> packet -> device path), chord_random_backbone\n"
      "(the whole pipeline on a randomly initialized model of the same configuration) and qat (on-device\n"
      "fine-tuning from the user_agnostic widths, on --qat-users of the evaluated users). Mixed strategies come\n"
      "from one solver and differ only in their channel importances. See docs/chord.md.\n");
  sub->add_option("--model", a->model, "Trained model file (chord train)")->required();
  sub->add_option("--data", a->data, "The dataset the model was trained on (not needed for synthetic data)");
  sub->add_flag("--allow-other-data", a->allow_other_data, "Use the model even on data other than the one it was trained on");
  sub->add_option("--hyper", a->hyper, "Trained hypernetworks for this model (else trained here)");
  sub->add_option("--save-hyper", a->save_hyper, "Write the hypernetworks trained here to this file");
  sub->add_option("--random-hyper", a->random_hyper, "Hypernetworks of the random backbone (else trained here)");
  sub->add_flag("--no-ablation", a->no_ablation, "Skip the random-backbone ablation");
  sub->add_option("--budgets", a->budgets, "Average bits per personalized weight, e.g. 2,3,4")->capture_default_str()
      ->check(numbers_in(0.0, 8.0));
  sub->add_option("--users", a->users, "Evaluate a seeded sample of this many users (0: all)")->capture_default_str();
  sub->add_option("--latency-users", a->latency_users,
                  "Time the single-user latency (fp32, uniform, CHORD) on this many of them (0: not timed)")
      ->capture_default_str();
  sub->add_option("--qat-users", a->qat_users, "Fine-tune on a seeded subset of this many of them (0: no qat)")
      ->capture_default_str();
  sub->add_option("--qat-steps", a->qat_steps, "Fine-tuning steps per user")->capture_default_str();
  sub->add_option("--qat-lr", a->qat_lr, "Fine-tuning learning rate (Adam)")->capture_default_str();
  sub->add_option("--population-users", a->population_users,
                  "Training users averaged for the user-agnostic importance (0: all)")->capture_default_str();
  sub->add_option("--steps", a->steps, "Hypernetwork training steps (when trained here)")->capture_default_str();
  sub->add_option("--users-per-step", a->users_per_step, "Users per hypernetwork training step")->capture_default_str();
  sub->add_option("--hidden", a->hidden, "Hypernetworks' hidden width (when trained here)")->capture_default_str();
  sub->add_option("--rank", a->rank, "Rank of the element-level sensitivity (when trained here)")->capture_default_str();
  sub->add_option("--embedding-bits", a->embedding_bits, "Device width of the non-personalized layers")
      ->capture_default_str()->check(CLI::IsMember({2, 4, 8}));
  sub->add_option("--activations", a->activations, "Activations of the quantized model: s8 or f32")
      ->capture_default_str()->check(CLI::IsMember({"s8", "f32"}));
  sub->add_option("--seed", a->seed, "Seed of the user samples, random importances, training and fine-tuning")
      ->capture_default_str();
  sub->add_option("--random-seed", a->random_seed, "Initialization seed of the random backbone")->capture_default_str();
  sub->add_option("--negatives-seed", a->negatives_seed, "Seed of the sampled protocol's negatives")->capture_default_str();
  sub->add_option("--threads", a->threads, "Threads over users")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--report", a->report, "Also write the results as JSON to this file");
  return {sub, [a] { return run_experiment_command(*a); }};
}

}  // namespace chord::cli
