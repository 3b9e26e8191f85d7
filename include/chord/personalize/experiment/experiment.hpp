// chord/personalize/experiment/experiment.hpp: CHORD against every baseline at equal average bits (docs/design.md#evaluation).
//
// Backbone-agnostic: any PersonalizableBackbone with a DeviceEvaluator (its per-user HR/NDCG under given
// personalized weights and widths). For each budget, every mixed strategy comes from the SAME solver
// (cloud/personalizer.hpp solve_strategy) and differs only in the importances it ranks channels by
// (report.hpp lists the methods). What each device does is replayed for real, per user:
//   chord      u = backbone.profile(user) -> encode_profile -> CloudPersonalizer::respond (bytes) ->
//              decode_for_device -> the device build (select cached codes + pack) -> evaluate;
//   shared     one packet per budget for everybody (user_agnostic, random_mixed, q2_energy): decode + build;
//   uniform    no packet: build at one width; fp32: nothing to adapt;
//   ablation   chord_random_backbone: the same pipeline on the randomly initialized backbone (its cache, its
//              hypernetworks, its profiles, its evaluator: docs/design.md#chord-backbone's literal reading, docs/chord.md);
//   qat        training/finetune.hpp on a smaller subset, starting from the user_agnostic strategy's widths.
// Adaptation time = decode + build (DeviceBuilder), timed per user on the worker's thread (median reported).
// Users: a seeded sample of the evaluation pool, split statically over nn::run_workers threads; every
// per-user number lands in its own slot, so the metrics, bits and bytes do not depend on the thread count
// (only the times do). Hypernetworks trained inside depend on the seed (and, through float summation
// order, on the thread count: training/hypernet_trainer.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/mixed_matrix.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/bytes.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/nn/batch_parallel.hpp"
#include "chord/nn/random.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"
#include "chord/personalize/cloud/personalizer.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"
#include "chord/personalize/device/adaptation.hpp"
#include "chord/personalize/experiment/baselines.hpp"
#include "chord/personalize/experiment/device_builder.hpp"
#include "chord/personalize/experiment/evaluator.hpp"
#include "chord/personalize/experiment/report.hpp"
#include "chord/personalize/training/backbone.hpp"
#include "chord/personalize/training/finetune.hpp"
#include "chord/personalize/training/hypernet_trainer.hpp"

namespace chord::personalize {

// One backbone as the experiment sees it.
struct ExperimentModel {
  const PersonalizableBackbone* backbone = nullptr;
  const DeviceEvaluator* evaluator = nullptr;
  const Hypernetworks* nets = nullptr;  // trained for this backbone; null: trained inside (options.training)
  MakeDeviceBuilder build;              // empty: pack_personalized_layers(backbone->layers())
};

struct ExperimentOptions {
  std::vector<double> budgets = {2.0, 3.0, 4.0};
  Palette palette = kStandardPalette;
  std::vector<std::size_t> training_users;    // hypernetworks and the population importance; empty: all users
  std::size_t population_users = 1000;        // seeded sample of the training users for user_agnostic (0: all)
  std::vector<std::size_t> evaluation_pool;   // users to sample from; empty: every user of the evaluator
  std::size_t evaluation_users = 0;           // seeded sample of at most this many (0: the whole pool)
  std::size_t qat_users = 100;                // seeded subset of the evaluation users (0: no qat)
  FinetuneOptions finetune;                   // qat: steps, Adam
  TrainOptions training;                      // hypernetworks trained inside (threads set from `threads`)
  std::size_t hidden = 64, rank = 4;          // their HypernetConfig
  std::uint64_t seed = 1;                     // user samples, random importances, qat noise
  std::size_t threads = 1;
  // The methods to run (experiment_methods() names); empty: all. The others are neither computed nor
  // reported (no ablation backbone prepared, no qat, no evaluation): a quick run of the rows one needs.
  std::vector<std::string> methods;
  std::function<void(const std::string&)> log;  // progress lines; may be empty
};

namespace detail {

// Up to n of `pool` (all when n = 0 or n >= size), chosen by a seeded shuffle, returned in ascending order.
inline std::vector<std::size_t> sample_users(std::vector<std::size_t> pool, std::size_t n, std::uint64_t seed,
                                             std::uint64_t stream) {
  std::sort(pool.begin(), pool.end());
  pool.erase(std::unique(pool.begin(), pool.end()), pool.end());
  if (n == 0 || n >= pool.size()) return pool;
  nn::Rng rng(seed, stream);
  for (std::size_t i = 0; i < n; ++i) std::swap(pool[i], pool[i + rng.below(pool.size() - i)]);
  pool.resize(n);
  std::sort(pool.begin(), pool.end());
  return pool;
}

inline std::vector<std::size_t> all_users(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t(0));
  return v;
}

// One backbone made ready: quantization cache, hypernetworks (given or trained here), cloud service.
struct PreparedModel {
  const PersonalizableBackbone* backbone = nullptr;
  const DeviceEvaluator* evaluator = nullptr;
  std::vector<PersonalizedLayer> layers;
  std::vector<LayerShape> shapes;
  std::vector<const float*> weights;  // the frozen fp32 personalized weights
  QuantizationCache cache;
  std::unique_ptr<Hypernetworks> owned_nets;
  const Hypernetworks* nets = nullptr;
  std::uint64_t fingerprint = 0;
  std::unique_ptr<CloudPersonalizer> cloud;
  MakeDeviceBuilder build;
  std::string hypernetworks;  // "given" or how they were trained
};

inline std::unique_ptr<PreparedModel> prepare_model(const ExperimentModel& m, const ExperimentOptions& o,
                                                    const std::vector<std::size_t>& training_users,
                                                    const std::string& what) {
  CHORD_CHECK(m.backbone != nullptr && m.evaluator != nullptr, "run_experiment: the ", what,
              " model needs a backbone and an evaluator");
  auto p = std::make_unique<PreparedModel>();
  p->backbone = m.backbone, p->evaluator = m.evaluator;
  p->layers = m.backbone->layers();
  p->shapes = layer_shapes(p->layers);
  p->weights = original_weights(p->layers);
  p->cache = QuantizationCache(p->layers);
  p->fingerprint = backbone_fingerprint(*m.backbone);
  p->build = m.build ? m.build : pack_personalized_layers(p->layers);
  if (m.nets != nullptr) {
    CHORD_CHECK(m.nets->layers().size() == p->layers.size(), "run_experiment: the ", what,
                " model's hypernetworks are for ", m.nets->layers().size(), " layers, the backbone has ",
                p->layers.size());
    p->nets = m.nets;
    p->hypernetworks = "given";
  } else {
    if (o.log) o.log("training hypernetworks on the " + what + " backbone (" + std::to_string(o.training.steps) +
                     " steps x " + std::to_string(o.training.users_per_step) + " users)");
    p->owned_nets = std::make_unique<Hypernetworks>(p->shapes, HypernetConfig{m.backbone->profile_dim(), o.hidden, o.rank});
    p->owned_nets->init(o.training.seed);
    TrainOptions t = o.training;
    t.threads = o.threads;
    HypernetTrainer trainer(*m.backbone, *p->owned_nets, p->cache, training_users, t);
    trainer.train();
    p->nets = p->owned_nets.get();
    p->hypernetworks = "trained: " + std::to_string(t.steps) + " steps x " + std::to_string(t.users_per_step) +
                       " users, seed " + std::to_string(t.seed);
  }
  p->cloud = std::make_unique<CloudPersonalizer>(*p->nets, p->cache, p->fingerprint);
  return p;
}

// What one user measured under one method and budget.
struct UserRow {
  UserEvaluation eval;
  double bits = 0.0, device_bytes = 0.0, bytes_sent = 0.0, bytes_uploaded = 0.0;
  double adaptation = 0.0, device_seconds = 0.0, best_step = 0.0;
};

// The rows of a method over its users -> the reported means (medians for times).
inline void aggregate(const std::vector<UserRow>& rows, double fp32_bytes, MethodResult& out) {
  out.users = rows.size();
  if (rows.empty()) return;
  const double n = double(rows.size());
  std::vector<double> adaptation, device;
  out.min_bits = rows[0].bits, out.max_bits = rows[0].bits;
  for (const UserRow& r : rows) {
    for (auto [to, from] : {std::pair{&out.sampled, &r.eval.sampled}, std::pair{&out.full, &r.eval.full}}) {
      to->hr5 += from->hr5 / n, to->hr10 += from->hr10 / n;
      to->ndcg5 += from->ndcg5 / n, to->ndcg10 += from->ndcg10 / n;
    }
    out.average_bits += r.bits / n;
    out.min_bits = std::min(out.min_bits, r.bits), out.max_bits = std::max(out.max_bits, r.bits);
    out.device_bytes += r.device_bytes / n;
    out.bytes_sent += r.bytes_sent / n;
    out.bytes_uploaded += r.bytes_uploaded / n;
    out.device_seconds_mean += r.device_seconds / n;
    out.mean_best_step += r.best_step / n;
    adaptation.push_back(r.adaptation), device.push_back(r.device_seconds);
  }
  out.packet_ratio = fp32_bytes > 0.0 ? out.bytes_sent / fp32_bytes : 0.0;
  out.adaptation_seconds = median_of(adaptation);
  out.device_seconds = median_of(device);
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace detail

// Runs every method at every budget. `random` (may be null): the randomly initialized backbone of the
// ablation, whose users must be the same as the trained one's.
inline ExperimentReport run_experiment(const ExperimentModel& trained, const ExperimentModel* random,
                                       const ExperimentOptions& o) {
  using Clock = std::chrono::steady_clock;
  CHORD_CHECK(o.threads > 0, "run_experiment: threads must be positive");
  CHORD_CHECK(!o.budgets.empty(), "run_experiment: no budgets");
  check_palette(o.palette, "run_experiment");
  for (double b : o.budgets)
    CHORD_CHECK(b >= 0.0 && b <= 8.0, "run_experiment: budget ", b, " bits is not in [0, 8]");
  CHORD_CHECK(trained.backbone != nullptr && trained.evaluator != nullptr,
              "run_experiment: the trained model needs a backbone and an evaluator");
  for (const std::string& name : o.methods)
    CHORD_CHECK(std::find(experiment_methods().begin(), experiment_methods().end(), name) != experiment_methods().end(),
                "run_experiment: unknown method '", name, "' in options.methods");
  const auto selected = [&](const std::string& name) {
    return o.methods.empty() || std::find(o.methods.begin(), o.methods.end(), name) != o.methods.end();
  };
  if (!selected("chord_random_backbone")) random = nullptr;

  // Users.
  const std::size_t user_count = trained.evaluator->user_count();
  const std::vector<std::size_t> training_users =
      o.training_users.empty() ? detail::all_users(trained.backbone->user_count()) : o.training_users;
  const std::vector<std::size_t> pool = o.evaluation_pool.empty() ? detail::all_users(user_count) : o.evaluation_pool;
  const std::vector<std::size_t> users = detail::sample_users(pool, o.evaluation_users, o.seed, 0x6576616cull);
  CHORD_CHECK(!users.empty(), "run_experiment: no users to evaluate");
  for (std::size_t u : users)
    CHORD_CHECK(u < user_count && u < trained.backbone->user_count(), "run_experiment: user ", u,
                " is out of range (", std::min(user_count, trained.backbone->user_count()), " users)");
  const std::vector<std::size_t> qat_users =
      o.qat_users == 0 || !selected("qat") ? std::vector<std::size_t>{}
                                           : detail::sample_users(users, o.qat_users, o.seed, 0x716174ull);
  const std::vector<std::size_t> population_sample =
      detail::sample_users(training_users, o.population_users, o.seed, 0x706f70ull);

  // Models.
  const auto model = detail::prepare_model(trained, o, training_users, "trained");
  std::unique_ptr<detail::PreparedModel> ablation;
  if (random != nullptr) {
    ablation = detail::prepare_model(*random, o, training_users, "random");
    for (std::size_t u : users)
      CHORD_CHECK(u < random->evaluator->user_count() && u < random->backbone->user_count(),
                  "run_experiment: user ", u, " is out of range for the random backbone");
  }
  const PacketExpectation expect{model->fingerprint, model->shapes};

  // Shared strategies, one per budget: solved once, encoded once (what the cloud would broadcast).
  // (qat starts from the user_agnostic widths, and its reference row is user_agnostic on its users)
  const bool need_population = selected("user_agnostic") || selected("user_agnostic_qat_users") || !qat_users.empty();
  Importances population;
  if (need_population) {
    if (o.log) o.log("population importance over " + std::to_string(population_sample.size()) + " training users");
    std::vector<std::vector<float>> population_profiles;
    for (std::size_t u : population_sample) population_profiles.push_back(trained.backbone->profile(u));
    population = population_importance(*model->nets, model->cache, population_profiles);
  }
  const Importances q2 = q2_energy_importance(model->cache);
  const Importances noise = random_importance(model->cache, o.seed);
  const std::size_t B = o.budgets.size();
  enum Shared { kAgnostic, kRandom, kQ2, kSharedCount };
  std::vector<std::array<std::vector<std::uint8_t>, kSharedCount>> shared_packets(B);
  std::vector<std::array<double, kSharedCount>> shared_bits(B);
  std::vector<bool> uniform_ok(B, false);
  std::vector<Widths> uniform_bits(B);
  const bool shared_selected[kSharedCount] = {need_population, selected("random_mixed"), selected("q2_energy")};
  for (std::size_t b = 0; b < B; ++b) {
    const Importances* importance[kSharedCount] = {&population, &noise, &q2};
    for (int s = 0; s < kSharedCount; ++s) {
      if (!shared_selected[s]) continue;
      const BudgetSolution solution = solve_strategy(model->cache, *importance[s], o.budgets[b], o.palette);
      shared_bits[b][std::size_t(s)] = solution.average_bits;
      StrategyPacket packet{model->fingerprint, float(o.budgets[b]), o.palette, solution.strategy};
      shared_packets[b][std::size_t(s)] = encode_strategy(packet);
    }
    for (std::uint8_t width : o.palette) uniform_ok[b] = uniform_ok[b] || double(width) == o.budgets[b];
    if (uniform_ok[b]) uniform_bits[b] = strategy_bits(uniform_strategy(model->shapes, o.budgets[b], o.palette), o.palette);
  }

  // Per-user rows: [method][budget][user slot] (fp32 once, budget-independent).
  const std::vector<std::string>& methods = experiment_methods();
  const std::size_t M = methods.size(), U = users.size(), Q = qat_users.size();
  const auto method_index = [&](const std::string& name) {
    return std::size_t(std::find(methods.begin(), methods.end(), name) - methods.begin());
  };
  const std::size_t m_uniform = method_index("uniform"), m_agnostic = method_index("user_agnostic"),
                    m_random = method_index("random_mixed"), m_q2 = method_index("q2_energy"),
                    m_chord = method_index("chord"), m_ablation = method_index("chord_random_backbone"),
                    m_qat = method_index("qat");
  std::vector<std::vector<std::vector<detail::UserRow>>> rows(M, std::vector<std::vector<detail::UserRow>>(B));
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t b = 0; b < B; ++b) rows[m][b].resize(m == m_qat ? Q : U);
  std::vector<detail::UserRow> fp32_rows(U);
  const std::size_t profile_bytes = profile_message_size(trained.backbone->profile_dim());

  // The device's side of a packet (device/adaptation.hpp): decode once, strictly, widths with the
  // packet's palette, build; timed together.
  const auto adapt = [&](const detail::PreparedModel& pm, DeviceBuilder& builder,
                         const std::vector<std::uint8_t>& packet_bytes, std::size_t user, detail::UserRow& row) {
    const auto start = Clock::now();
    DecodedStrategy strategy =
        decode_for_device(packet_bytes, {pm.fingerprint, pm.shapes}, "cloud answer for user " + std::to_string(user));
    row.device_bytes = double(builder.build(strategy.bits));
    row.adaptation = detail::seconds_since(start);
    row.bytes_sent = double(packet_bytes.size());
    row.bits = strategy.average_bits;
    return std::move(strategy.bits);
  };
  // CHORD on one backbone: the device's profile -> the cloud's answer -> adapt -> evaluate.
  const auto personalized = [&](const detail::PreparedModel& pm, DeviceBuilder& builder, const std::vector<float>& u,
                                std::size_t user, double budget, DeviceEvaluator::Scratch& scratch,
                                detail::UserRow& row) {
    const std::vector<std::uint8_t> request = encode_profile({pm.fingerprint, float(budget), o.palette, u});
    const std::vector<std::uint8_t> answer =
        pm.cloud->respond(request.data(), request.size(), "device of user " + std::to_string(user));
    const Widths bits = adapt(pm, builder, answer, user, row);
    row.bytes_uploaded = double(request.size());
    row.eval = pm.evaluator->evaluate(user, pm.weights, bits, scratch);
  };

  const std::size_t workers = std::min(o.threads, U);
  if (o.log) o.log("evaluating " + std::to_string(U) + " users x " + std::to_string(B) + " budgets on " +
                   std::to_string(workers) + " thread(s)");
  nn::run_workers(workers, [&](std::size_t w) {
    const auto scratch = model->evaluator->make_scratch();
    const auto ablation_scratch = ablation ? ablation->evaluator->make_scratch() : nullptr;
    const std::unique_ptr<DeviceBuilder> builder = model->build();
    const std::unique_ptr<DeviceBuilder> ablation_builder = ablation ? ablation->build() : nullptr;
    CHORD_CHECK(builder != nullptr && (!ablation || ablation_builder != nullptr), "run_experiment: no device builder");
    for (std::size_t slot = w; slot < U; slot += workers) {
      const std::size_t user = users[slot];
      detail::UserRow& fp32 = fp32_rows[slot];
      if (selected("fp32")) {
        const auto start = Clock::now();
        fp32.device_bytes = double(builder->build({}));
        fp32.adaptation = detail::seconds_since(start);
        fp32.bits = 32.0;
        fp32.eval = model->evaluator->evaluate(user, model->weights, {}, *scratch);
      }
      const std::vector<float> u = selected("chord") ? trained.backbone->profile(user) : std::vector<float>{};
      const std::vector<float> u_random = ablation ? random->backbone->profile(user) : std::vector<float>{};
      for (std::size_t b = 0; b < B; ++b) {
        if (uniform_ok[b] && selected("uniform")) {
          detail::UserRow& row = rows[m_uniform][b][slot];
          const auto start = Clock::now();
          row.device_bytes = double(builder->build(uniform_bits[b]));
          row.adaptation = detail::seconds_since(start);
          row.bits = o.budgets[b];
          row.eval = model->evaluator->evaluate(user, model->weights, uniform_bits[b], *scratch);
        }
        const std::size_t shared_methods[kSharedCount] = {m_agnostic, m_random, m_q2};
        for (int s = 0; s < kSharedCount; ++s) {
          if (!shared_selected[s]) continue;
          detail::UserRow& row = rows[shared_methods[s]][b][slot];
          const Widths bits = adapt(*model, *builder, shared_packets[b][std::size_t(s)], user, row);
          row.eval = model->evaluator->evaluate(user, model->weights, bits, *scratch);
        }
        if (selected("chord"))
          personalized(*model, *builder, u, user, o.budgets[b], *scratch, rows[m_chord][b][slot]);
        if (ablation)
          personalized(*ablation, *ablation_builder, u_random, user, o.budgets[b], *ablation_scratch,
                       rows[m_ablation][b][slot]);
      }
    }
  });

  // QAT: a smaller subset (it trains), from the user-agnostic widths at each budget.
  const std::size_t qat_workers = std::min(o.threads, Q);
  if (Q > 0 && o.log)
    o.log("on-device fine-tuning of " + std::to_string(Q) + " users (" + std::to_string(o.finetune.steps) +
          " steps each) on " + std::to_string(qat_workers) + " thread(s)");
  nn::run_workers(qat_workers, [&](std::size_t w) {
    const auto scratch = model->evaluator->make_scratch();
    const auto workspace = trained.backbone->make_workspace();
    const std::unique_ptr<DeviceBuilder> builder = model->build();
    CHORD_CHECK(builder != nullptr, "run_experiment: no device builder");
    for (std::size_t slot = w; slot < Q; slot += qat_workers) {
      const std::size_t user = qat_users[slot];
      for (std::size_t b = 0; b < B; ++b) {
        detail::UserRow& row = rows[m_qat][b][slot];
        const Widths bits = adapt(*model, *builder, shared_packets[b][kAgnostic], user, row);
        FinetuneOptions f = o.finetune;
        f.seed = o.seed;
        const FinetuneResult tuned = finetune_user(*trained.backbone, user, bits, f, *workspace);
        row.device_seconds = tuned.seconds_to_best;
        row.best_step = double(tuned.best_step);
        std::vector<const float*> w_best;
        for (const auto& layer : tuned.best_weights) w_best.push_back(layer.data());
        row.eval = model->evaluator->evaluate(user, w_best, bits, *scratch);
      }
    }
  });

  // The report.
  ExperimentReport report;
  report.architecture = trained.backbone->architecture();
  report.random_architecture = random != nullptr ? random->backbone->architecture() : "";
  report.fingerprint = bytes::hex64(model->fingerprint);
  report.personalized_layers = model->layers.size();
  report.personalized_channels = model->cache.total_channels();
  report.personalized_weights = model->cache.total_weights();
  report.fp32_personalized_bytes = 4.0 * report.personalized_weights;
  report.profile_dim = trained.backbone->profile_dim();
  report.profile_message_bytes = profile_bytes;
  report.hypernetworks = model->hypernetworks;
  report.budgets = o.budgets;
  report.palette = o.palette;
  report.evaluation_users = U, report.qat_users = Q, report.population_users = population_sample.size();
  report.threads = o.threads, report.seed = o.seed;
  report.qat_steps = o.finetune.steps, report.qat_lr = double(o.finetune.adam.lr);
  std::vector<std::size_t> qat_slots;  // slot of each qat user among the evaluation users
  for (std::size_t user : qat_users)
    qat_slots.push_back(std::size_t(std::lower_bound(users.begin(), users.end(), user) - users.begin()));
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t b = 0; b < B; ++b) {
      if (!selected(methods[m])) continue;
      MethodResult r;
      r.method = methods[m];
      r.budget = o.budgets[b];
      std::vector<detail::UserRow> source;
      std::vector<std::size_t> ids = users;
      if (r.method == "fp32") {
        source = fp32_rows;
        r.note = "unquantized reference (the same at every budget)";
      } else if (m == m_uniform && !uniform_ok[b]) {
        r.available = false, r.note = "the budget is not a width of the palette";
      } else if (m == m_ablation && !ablation) {
        r.available = false, r.note = "no random backbone given";
      } else if ((m == m_qat || r.method == "user_agnostic_qat_users") && Q == 0) {
        r.available = false, r.note = "no qat users";
      } else if (m == m_qat) {
        source = rows[m][b], ids = qat_users;
        r.note = "fine-tuned from the user_agnostic widths, on the qat subset";
      } else if (r.method == "user_agnostic_qat_users") {
        for (std::size_t slot : qat_slots) source.push_back(rows[m_agnostic][b][slot]);
        ids = qat_users;
        r.note = "user_agnostic on the qat subset (the qat row's reference)";
      } else {
        source = rows[m][b];
      }
      if (r.available) {
        detail::aggregate(source, report.fp32_personalized_bytes, r);
        r.user_ids = ids;
        for (const detail::UserRow& row : source) r.per_user.push_back(row.eval);
      }
      report.results.push_back(std::move(r));
    }
  return report;
}

}  // namespace chord::personalize
