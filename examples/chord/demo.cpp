// examples/chord/demo.cpp: `chord demo`: the whole of CHORD on one dataset, in one command and one table.
//
//   1. backbone        a SASRec trained here (short settings, early stopping on validation), cached in
//                      --work-dir under the data's fingerprint (the file's content; synthetic: its seed);
//   2. cloud           the hypernetworks trained on the frozen backbone for the device classes (--budgets),
//                      cached next to the model (retrained whenever the model is);
//   3. device <-> cloud personalize/experiment/experiment.hpp replays, per sampled user and device class, the real
//                      path: profile -> CHRP message (bytes) -> the cloud decodes it and solves the user's
//                      strategy -> CHRS packet (bytes) -> the device (an installed DeviceModel) decodes,
//                      quantizes and packs (timed) -> ranking metrics; the same for the baselines
//                      (fp32, uniform PTQ at 2/4/8 bits, one user-agnostic mixed strategy per class);
//   4. latency         on one thread, batch 1: a DeviceModel adapted to each of a few users' own packet
//                      (profile computed on the device, answered by the cloud) encodes the user's history
//                      and scores 101 candidates (the target and the 100 sampled negatives), W-A8.
// The metrics, bits and bytes come from run_experiment (the code of `chord experiment`); this file only
// picks the rows, adds the latency and prints them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "common.hpp"
#include "evaluation_common.hpp"
#include "usage.hpp"
#include "personalize_common.hpp"

#include "chord/core/checksum.hpp"
#include "chord/data/candidates.hpp"
#include "chord/data/split.hpp"
#include "chord/io/bytes.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/trainer.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/cloud/personalizer.hpp"
#include "chord/personalize/device/device_model.hpp"
#include "chord/personalize/experiment/experiment.hpp"
#include "chord/personalize/training/hypernet_trainer.hpp"

namespace chord::cli {

namespace {

using namespace chord::personalize;
using Clock = std::chrono::steady_clock;

struct DemoArgs {
  std::string data, work_dir = "build/demo", budgets = "2,3,4,6";
  std::size_t users = 200, latency_users = 20, steps = 300, users_per_step = 32;
  int epochs = 60, threads = 2;
  std::uint64_t seed = 1;
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// What names the data in the cache: the file's content (fnv1a64) and size, or the synthetic seed.
std::string data_key(const std::string& path, std::uint64_t seed) {
  if (path.empty()) return "synthetic-seed" + std::to_string(seed);
  std::ifstream in(path, std::ios::binary);
  CHORD_CHECK(in.good(), "demo: cannot read '", path, "'");
  const std::vector<char> content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::string stem = std::filesystem::path(path).stem().string();
  return stem + "-" + bytes::hex64(fnv1a64(content.data(), content.size())) + "-" + std::to_string(content.size());
}

// The backbone: SASRec d 50, 2 blocks, max length 200, at most --epochs epochs, validated every 2 epochs,
// stopped after 3 validations without improvement; the best epoch is kept.
void train_backbone(const DemoArgs& a, const LoadedData& data, const data::LeaveOneOutSplit& split,
                    const std::string& path) {
  models::SasrecConfig c;
  c.num_items = split.num_items;
  c.d = 50, c.blocks = 2, c.heads = 1, c.max_len = 200, c.hidden = 50;
  c.dropout = data::compute_stats(data.dataset).mean_length >= 60.0 ? 0.2f : 0.5f;  // as `chord train`
  models::TrainOptions o;
  o.epochs = a.epochs, o.batch_size = 128, o.lr = 1e-3f, o.seed = a.seed, o.threads = std::size_t(a.threads);
  o.eval_every = 2, o.patience = 3;
  Progress progress(stderr_is_terminal());
  o.on_batch = [&](const models::BatchProgress& p) { progress.batch(p); };
  o.on_epoch = [&](const models::EpochReport& r) { progress.epoch(r); };
  std::printf("[1/4] training SASRec (d %d, %d blocks, max length %d, dropout %.1f): at most %d epochs, validation "
              "every 2, early stop after 3 without improvement, %d thread(s)\n",
              c.d, c.blocks, c.max_len, double(c.dropout), o.epochs, a.threads);
  std::fflush(stdout);
  const auto start = Clock::now();
  models::SasrecModel model(c);
  model.init(a.seed);
  const models::TrainResult r = models::train_sasrec(model, split, o);
  models::Metadata extra = data.source;
  extra["train.epochs"] = std::to_string(r.epochs_run);
  extra["train.best_epoch"] = std::to_string(r.best_epoch);
  extra["train.seed"] = std::to_string(a.seed);
  models::save_model(path, model, extra);
  std::printf("      %d epochs%s in %.1f s; best validation epoch %d (HR@10 %.4f, NDCG@10 %.4f); saved %s\n",
              r.epochs_run, r.stopped_early ? " (early stop)" : "", seconds_since(start), r.best_epoch,
              r.best_valid.hr_10, r.best_valid.ndcg_10, path.c_str());
}

// The cloud's hypernetworks for the device classes (as `chord hypertrain`, on every user with a pair).
void train_hypernetworks(const DemoArgs& a, const PersonalizableBackbone& backbone,
                         const data::LeaveOneOutSplit& split, const std::vector<double>& budgets,
                         const std::string& path) {
  const std::vector<PersonalizedLayer> layers = backbone.layers();
  const QuantizationCache cache(layers);
  Hypernetworks nets(layer_shapes(layers), {backbone.profile_dim(), 64, 4});
  nets.init(a.seed);
  std::vector<std::size_t> users;
  for (std::size_t u = 0; u < split.train.size(); ++u)
    if (split.train[u].size() >= 2) users.push_back(u);
  CHORD_CHECK(!users.empty(), "demo: no user has two training items");
  TrainOptions o;
  o.steps = a.steps, o.users_per_step = a.users_per_step, o.threads = std::size_t(a.threads), o.seed = a.seed;
  o.adam.lr = 1e-2f;
  o.budget_classes = budgets;
  o.progress = stderr_is_terminal();
  std::printf("[2/4] training the hypernetworks (cloud): %zu steps x %zu users, device classes %s bits\n", o.steps,
              o.users_per_step, a.budgets.c_str());
  std::fflush(stdout);
  const auto start = Clock::now();
  HypernetTrainer trainer(backbone, nets, cache, users, o);
  const std::vector<StepStats> history = trainer.train();
  save_hypernetworks(path, nets, backbone_fingerprint(backbone));
  if (!history.empty())
    std::printf("      %.1f s; last step: rec loss %.4f, expected bits %.2f for budget %.2f; saved %s\n",
                seconds_since(start), history.back().rec_loss, history.back().expected_bits, history.back().budget,
                path.c_str());
}

struct Row {
  std::string label, method;
  const MethodResult* r = nullptr;
  double latency = -1.0;  // us; < 0: not measured
};

void print_row(const Row& row, const MethodResult& fp32, bool first) {
  const MethodResult& r = *row.r;
  char latency[32] = "-";
  if (row.latency >= 0.0) std::snprintf(latency, sizeof latency, "%.0f", row.latency);
  char adapt[32] = "-";
  if (r.method != "fp32") std::snprintf(adapt, sizeof adapt, "%.2f", r.adaptation_seconds * 1e3);
  std::printf("%-9s %-14s %6.2f  %7.4f %5.1f%%  %7.4f  %7.4f  %9.0f  %6.0f %6.0f  %8s  %8s\n",
              first ? row.label.c_str() : "", row.method.c_str(), r.average_bits, r.sampled.ndcg10,
              fp32.sampled.ndcg10 > 0.0 ? 100.0 * r.sampled.ndcg10 / fp32.sampled.ndcg10 : 0.0, r.sampled.hr10,
              r.full.ndcg10, r.device_bytes, r.bytes_uploaded, r.bytes_sent, adapt, latency);
}

// The paired per-user difference a - b of sampled NDCG@10 (both rows on the same users, in the same
// order): mean and 95 % interval half-width (t quantile, Cornish-Fisher approximation: within 0.1 %
// of the table for 10 or more users). users = 0 when the rows are not on the same users.
struct PairedDifference {
  std::size_t users = 0;
  double mean = 0.0, half_width = 0.0;
};

PairedDifference paired_ndcg_difference(const MethodResult& a, const MethodResult& b) {
  PairedDifference d;
  if (a.user_ids != b.user_ids || a.per_user.size() != b.per_user.size() || a.per_user.size() < 2) return d;
  const std::size_t n = a.per_user.size();
  double sum = 0.0, sum_sq = 0.0;
  for (std::size_t u = 0; u < n; ++u) sum += a.per_user[u].sampled.ndcg10 - b.per_user[u].sampled.ndcg10;
  d.users = n;
  d.mean = sum / double(n);
  for (std::size_t u = 0; u < n; ++u) {
    const double x = a.per_user[u].sampled.ndcg10 - b.per_user[u].sampled.ndcg10 - d.mean;
    sum_sq += x * x;
  }
  const double dof = double(n - 1), z = 1.959964;
  const double t = z + (z * z * z + z) / (4.0 * dof);
  d.half_width = t * std::sqrt(sum_sq / dof / double(n));
  return d;
}

// "+0.0073 [-0.0102, +0.0248]: within noise" / "... : CHORD higher" / "... : CHORD lower".
std::string describe_difference(const PairedDifference& d) {
  if (d.users == 0) return "(not paired: different users)";
  if (d.mean == 0.0 && d.half_width == 0.0) return "0: the same ranks for every user";
  const double lo = d.mean - d.half_width, hi = d.mean + d.half_width;
  char text[128];
  std::snprintf(text, sizeof text, "%+.4f [%+.4f, %+.4f]: %s", d.mean, lo, hi,
                lo > 0.0 ? "CHORD higher" : hi < 0.0 ? "CHORD lower" : d.mean < 0.0 ? "CHORD below, within noise"
                                                                                 : "within noise");
  return text;
}

int run_demo(const DemoArgs& a) {
  const auto start = Clock::now();
  std::vector<double> budgets = parse_numbers(a.budgets, "--budgets");
  for (double b : budgets) CHORD_CHECK(b > 0.0 && b <= 8.0, "--budgets: ", b, " is not in (0, 8]");
  const LoadedData data = load_data(a.data, a.seed);
  const data::LeaveOneOutSplit split = data::leave_one_out(data.dataset);
  std::filesystem::create_directories(a.work_dir);
  const std::string key = data_key(a.data, a.seed);
  const std::string model_path = a.work_dir + "/sasrec-" + key + ".safetensors";
  const std::string hyper_path = a.work_dir + "/hyper-" + key + ".safetensors";

  // 1. the backbone, 2. the hypernetworks: cached.
  bool trained_now = false;
  if (std::filesystem::exists(model_path)) {
    std::printf("[1/4] backbone: cached %s (delete it to retrain)\n", model_path.c_str());
  } else {
    train_backbone(a, data, split, model_path);
    trained_now = true;
  }
  const models::LoadedModel loaded = models::load_model(model_path, "sasrec");
  const KernelTable& kernels = best_kernels();
  const EvaluatorOptions eo{8, LinearMode::mixed_s8, &kernels, 42};
  const DeviceOptions device_options{8, LinearMode::mixed_s8, &kernels};
  const EvaluatedBackbone cloud_side = make_evaluated_backbone(loaded, split, eo);
  if (trained_now || !std::filesystem::exists(hyper_path))
    train_hypernetworks(a, *cloud_side.backbone, split, budgets, hyper_path);
  else
    std::printf("[2/4] hypernetworks: cached %s (delete it to retrain)\n", hyper_path.c_str());
  const std::unique_ptr<Hypernetworks> nets = load_hypernetworks_for(hyper_path, loaded);

  // 3. the device-cloud loop for every device class, with the baselines (run_experiment).
  std::printf("[3/4] device <-> cloud for %zu sampled users x %zu device classes, %d thread(s), kernels %s/%s, "
              "W-A8, embeddings at 8 bits\n",
              a.users, budgets.size(), a.threads, std::string(isa_name(kernels.isa)).c_str(), kernels.backend);
  std::fflush(stdout);
  const auto loop_start = Clock::now();
  const ExperimentModel model{cloud_side.backbone.get(), cloud_side.evaluator.get(), nets.get(),
                              device_build(loaded, device_options)};
  ExperimentOptions o;
  o.evaluation_users = a.users;
  o.qat_users = 0;
  o.seed = a.seed;
  o.threads = std::size_t(a.threads);
  // The references once: fp32 and uniform PTQ at the palette's widths; then the device classes.
  o.budgets = {2.0, 4.0, 8.0};
  o.methods = {"fp32", "uniform"};
  const ExperimentReport reference = run_experiment(model, nullptr, o);
  o.budgets = budgets;
  o.methods = {"user_agnostic", "chord"};
  const ExperimentReport classes = run_experiment(model, nullptr, o);
  std::printf("      %.1f s\n", seconds_since(loop_start));

  // 4. latency: a device adapted to each user's own packet, one thread, batch 1.
  const auto latency_start = Clock::now();
  std::vector<std::size_t> users = reference.find("fp32", 2.0)->user_ids;
  users.resize(std::min(a.latency_users, users.size()));
  std::printf("[4/4] single-user latency on 1 thread, batch 1 (encode the history + score 101 candidates), %zu users\n",
              users.size());
  std::fflush(stdout);
  const QuantizationCache cache(cloud_side.backbone->layers());
  const CloudPersonalizer cloud(*nets, cache, device_fingerprint(loaded));
  const LatencyFigures latency = measure_latency(loaded, device_options, cloud, split, users, budgets, eo.seed);
  const double fp32_latency = latency.fp32_us;
  const std::vector<double>& uniform_latency = latency.uniform_us;
  const std::vector<double>& chord_latency = latency.chord_us;
  std::printf("      %.1f s\n", seconds_since(latency_start));

  // The table.
  const MethodResult& fp32 = *reference.find("fp32", 2.0);
  std::printf("\nCHORD demo: %s, SASRec, %zu users (seeded sample), %zu personalized layers (%.0f weights, %.0f fp32 "
              "bytes)\n",
              data.dataset.name.c_str(), fp32.users, classes.personalized_layers, classes.personalized_weights,
              classes.fp32_personalized_bytes);
  std::printf("NDCG/HR@10 s: sampled (target + 100 negatives); f: full ranking. model B: the device's whole model; "
              "up/down B: per user;\nadapt: decode + quantize + pack, median; latency: median, 1 thread.\n\n");
  std::printf("%-9s %-14s %6s  %7s %6s  %7s  %7s  %9s  %6s %6s  %8s  %8s\n", "device", "method", "bits", "NDCG@10",
              "%fp32", "HR@10", "NDCG@10", "model B", "up B", "down B", "adapt ms", "lat. us");
  std::printf("%-9s %-14s %6s  %7s %6s  %7s  %7s  %9s  %6s %6s  %8s  %8s\n", "class", "", "", "s", "", "s", "f", "", "",
              "", "", "");
  print_row({"any", "fp32", &fp32, fp32_latency}, fp32, true);
  const double widths[] = {2.0, 4.0, 8.0};
  for (std::size_t w = 0; w < 3; ++w)
    print_row({"any", "uniform " + std::to_string(int(widths[w])), reference.find("uniform", widths[w]),
               uniform_latency[w]},
              fp32, false);
  for (std::size_t b = 0; b < budgets.size(); ++b) {
    char label[32];
    std::snprintf(label, sizeof label, "%g bits", budgets[b]);
    std::printf("\n");
    print_row({label, "user-agnostic", classes.find("user_agnostic", budgets[b]), -1.0}, fp32, true);
    print_row({label, "CHORD", classes.find("chord", budgets[b]), chord_latency[b]}, fp32, false);
  }
  std::printf("(user-agnostic: one mixed strategy per device class, broadcast; latency as CHORD's at the same "
              "widths, not measured)\n\n");

  // In plain words: only what the numbers support. Every comparison is paired per user (the same users
  // in every row) with its 95 % interval; a difference whose interval includes 0 is called noise.
  const auto keep = [&](const MethodResult& r) { return 100.0 * r.sampled.ndcg10 / fp32.sampled.ndcg10; };
  std::printf("Summary (sampled NDCG@10 as %% of fp32's %.4f; CHORD - other: mean per-user difference, paired 95 %% "
              "interval):\n",
              fp32.sampled.ndcg10);
  std::printf("  uniform PTQ (every channel at one width) keeps %.1f %% at 2 bits, %.1f %% at 4, %.1f %% at 8\n",
              keep(*reference.find("uniform", 2.0)), keep(*reference.find("uniform", 4.0)),
              keep(*reference.find("uniform", 8.0)));
  for (double budget : budgets) {
    const MethodResult& chord = *classes.find("chord", budget);
    const MethodResult& agnostic = *classes.find("user_agnostic", budget);
    std::printf("  at %g bits CHORD keeps %.1f %%, the shared strategy %.1f %%", budget, keep(chord), keep(agnostic));
    const MethodResult* uniform = reference.find("uniform", budget);
    if (uniform) std::printf(", uniform %g-bit %.1f %%", budget, keep(*uniform));
    std::printf("; CHORD - shared %s", describe_difference(paired_ndcg_difference(chord, agnostic)).c_str());
    if (uniform) std::printf(", CHORD - uniform %s", describe_difference(paired_ndcg_difference(chord, *uniform)).c_str());
    std::printf("\n");
  }
  const MethodResult& chord_first = *classes.find("chord", budgets.front());
  std::printf("  per user CHORD sends %.0f bytes up (profile) and %.0f down (strategy: 1/%.0f of the personalized "
              "fp32 weights); at %g bits the model shrinks %.1fx and adaptation takes %.2f ms\n",
              chord_first.bytes_uploaded, chord_first.bytes_sent, classes.fp32_personalized_bytes / chord_first.bytes_sent,
              budgets.front(), fp32.device_bytes / chord_first.device_bytes, chord_first.adaptation_seconds * 1e3);
  std::printf("  (%zu users; --users 0 evaluates everybody and narrows the intervals)\n", fp32.users);
  std::printf("total %.1f s\n", seconds_since(start));
  return 0;
}

}  // namespace

Action setup_demo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  CLI::App* sub = app.add_subcommand("demo", "CHORD end to end on one dataset: train (cached), personalize per "
                                             "device class, compare with the baselines in one table");
  sub->footer(
      "Examples:\n"
      "  chord demo --data ../shared/data/ml-100k/u.data      (about 4 min on 2 cores the first time, 5 s cached)\n"
      "  chord demo                                          (synthetic data)\n"
      "The SASRec backbone and the hypernetworks are cached in --work-dir under the data's fingerprint;\n"
      "delete them to retrain. Metrics: HR/NDCG@10 of each user's test item (docs/chord.md).\n");
  sub->add_option("--data", a->data, "Dataset file (u.data, ml-1m.txt, ...). Omit to use synthetic data");
  sub->add_option("--work-dir", a->work_dir, "Where the trained model and hypernetworks are cached")
      ->capture_default_str();
  sub->add_option("--budgets", a->budgets, "Device classes: average bits per personalized weight")
      ->capture_default_str()->check(numbers_in(0.01, 8.0));
  sub->add_option("--users", a->users, "Evaluate a seeded sample of this many users (0: all)")->capture_default_str();
  sub->add_option("--latency-users", a->latency_users, "Users timed for the single-user latency")
      ->capture_default_str()->check(CLI::Range(1, 1000000));
  sub->add_option("--epochs", a->epochs, "Backbone: maximum epochs (when trained here)")->capture_default_str()
      ->check(CLI::Range(1, 10000));
  sub->add_option("--steps", a->steps, "Hypernetwork training steps (when trained here)")->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  sub->add_option("--users-per-step", a->users_per_step, "Users per hypernetwork step")->capture_default_str()
      ->check(CLI::Range(1, 100000));
  sub->add_option("--threads", a->threads, "Worker threads (training, evaluation)")->capture_default_str()
      ->check(CLI::Range(1, 256));
  sub->add_option("--seed", a->seed, "Seed of the training runs and the user sample")->capture_default_str();
  return {sub, [a] { return run_demo(*a); }};
}

}  // namespace chord::cli
