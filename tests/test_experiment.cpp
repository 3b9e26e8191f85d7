// The experiment runner (personalize/experiment/: experiment.hpp, report.hpp, report_json.hpp; training/finetune.hpp)
// on the planted backbone of planted_backbone.hpp, tiny: 96 users (the first 64 train the hypernetworks,
// the other 32 are evaluated), budgets 2, 3 and 4 bits, on-device fine-tuning on 8 of them. It checks
// what the report promises, not particular numbers:
//   - every method at every budget (uniform marked n/a at 3 bits), over the users it claims;
//   - the achieved bits of every mixed strategy within one channel's upgrade of the budget, from below;
//   - fp32 >= uniform 2-bit; CHORD beats random mixed;
//   - bytes: packets of the encoded size, the profile message's size, the device model's packed size;
//   - qat: a positive time, a best step that is the argmin of its validation losses, and the metrics of
//     the weights of that step (re-run independently);
//   - the JSON report round-trips, and bad reports are refused with the place named;
//   - two runs give the same metrics, bits and bytes (times aside); so do 1 and 2 threads with given nets.
//   - options.methods: only the chosen rows are computed and reported, with a full run's numbers.
// CHORD_TEST_NO_THREADS (cross builds): qemu-user hangs in pthread_create, so everything runs on one thread.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/io/profile_message.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/personalize/experiment/experiment.hpp"
#include "chord/personalize/experiment/report_json.hpp"
#include "chord/personalize/training/finetune.hpp"
#include "planted_backbone.hpp"
#include "test_helpers.hpp"

using namespace chord;
using namespace chord::personalize;
using chord::test::PlantedConfig;
using chord::test::PlantedEvaluator;
using chord::test::PlantedRecommender;

namespace {

using chord::test::kTestThreads;

constexpr std::size_t kTrainUsers = 64, kUsers = 96;

// The trained and the random planted backbones with their evaluators (same users and data).
struct Planted {
  PlantedRecommender trained, random;
  PlantedEvaluator trained_eval, random_eval;
  explicit Planted(std::uint64_t seed)
      : trained(config(seed, false)), random(config(seed, true)), trained_eval(trained), random_eval(random) {}
  static PlantedConfig config(std::uint64_t seed, bool random) {
    PlantedConfig c;
    c.seed = seed, c.users = kUsers, c.random_backbone = random;
    return c;
  }
};

ExperimentOptions tiny_options(std::size_t threads, std::size_t training_steps = 300) {
  ExperimentOptions o;
  o.budgets = {2.0, 3.0, 4.0};
  for (std::size_t u = 0; u < kTrainUsers; ++u) o.training_users.push_back(u);
  for (std::size_t u = kTrainUsers; u < kUsers; ++u) o.evaluation_pool.push_back(u);
  o.evaluation_users = 0;  // the whole pool: 32 held-out users
  o.population_users = 0;
  o.qat_users = 8;
  o.finetune.steps = 12;
  o.finetune.adam.lr = 1e-2f;
  o.training.steps = training_steps;
  o.training.users_per_step = 8;
  o.training.progress = false;
  o.training.seed = 1;
  o.hidden = 32, o.rank = 4;
  o.seed = 7;
  o.threads = threads;
  return o;
}

ExperimentReport run_tiny(const Planted& p, std::size_t threads, const Hypernetworks* trained_nets = nullptr,
                          const Hypernetworks* random_nets = nullptr, std::size_t training_steps = 300) {
  ExperimentModel trained{&p.trained, &p.trained_eval, trained_nets, {}};
  ExperimentModel random{&p.random, &p.random_eval, random_nets, {}};
  return run_experiment(trained, &random, tiny_options(threads, training_steps));
}

// Everything but the times.
void require_same_measurements(const ExperimentReport& a, const ExperimentReport& b) {
  REQUIRE(a.results.size() == b.results.size());
  for (std::size_t i = 0; i < a.results.size(); ++i) {
    const MethodResult &x = a.results[i], &y = b.results[i];
    INFO(x.method << " at " << x.budget);
    REQUIRE(x.method == y.method);
    REQUIRE(x.available == y.available);
    REQUIRE(x.user_ids == y.user_ids);
    REQUIRE(x.average_bits == y.average_bits);
    REQUIRE(x.device_bytes == y.device_bytes);
    REQUIRE(x.bytes_sent == y.bytes_sent);
    REQUIRE(x.mean_best_step == y.mean_best_step);
    REQUIRE(x.per_user.size() == y.per_user.size());
    for (std::size_t u = 0; u < x.per_user.size(); ++u) {
      REQUIRE(x.per_user[u].sampled.ndcg10 == y.per_user[u].sampled.ndcg10);
      REQUIRE(x.per_user[u].full.ndcg10 == y.per_user[u].full.ndcg10);
      REQUIRE(x.per_user[u].full.hr5 == y.per_user[u].full.hr5);
    }
  }
}

}  // namespace

TEST_CASE("experiment: every method at every budget, equal bits, the expected order, honest bytes",
          "[personalize][experiment]") {
  const Planted p(1);
  const ExperimentReport report = run_tiny(p, kTestThreads);
  const std::size_t eval_users = kUsers - kTrainUsers;
  REQUIRE(report.evaluation_users == eval_users);
  REQUIRE(report.qat_users == 8);
  REQUIRE(report.population_users == kTrainUsers);
  REQUIRE(report.personalized_layers == 2);
  REQUIRE(report.personalized_weights == 2.0 * 32 * 16);
  REQUIRE(report.profile_message_bytes == profile_message_size(32));
  REQUIRE(report.results.size() == experiment_methods().size() * 3);
  // The costliest single upgrade of the solver (4 -> 8 bits of a 32-weight channel), in average bits.
  const double granularity = 4.0 * 32 / report.personalized_weights;
  const double fp32_bytes = report.fp32_personalized_bytes;

  for (double budget : report.budgets)
    for (const std::string& method : experiment_methods()) {
      const MethodResult* r = report.find(method, budget);
      INFO(method << " at " << budget << " bits: " << r->note);
      REQUIRE(r != nullptr);
      if (method == "uniform" && budget == 3.0) {
        REQUIRE_FALSE(r->available);
        continue;
      }
      REQUIRE(r->available);
      const bool qat_subset = method == "qat" || method == "user_agnostic_qat_users";
      REQUIRE(r->users == (qat_subset ? 8 : eval_users));
      REQUIRE(r->per_user.size() == r->users);
      REQUIRE(r->user_ids.size() == r->users);
      for (std::size_t id : r->user_ids) REQUIRE((id >= kTrainUsers && id < kUsers));
      for (const UserRanking* m : {&r->sampled, &r->full}) {
        REQUIRE((m->hr5 >= 0.0 && m->hr5 <= m->hr10 && m->hr10 <= 1.0));
        REQUIRE((m->ndcg5 >= 0.0 && m->ndcg5 <= m->ndcg10 && m->ndcg10 <= m->hr10));
      }
      if (method == "fp32") {
        REQUIRE(r->average_bits == 32.0);
        REQUIRE(r->bytes_sent == 0.0);
        REQUIRE(r->device_bytes == fp32_bytes);  // the planted model is all personalized layers
        continue;
      }
      // Same bits: from below, to within one channel's upgrade (uniform exactly).
      REQUIRE(r->max_bits <= budget + 1e-9);
      REQUIRE(r->min_bits >= budget - granularity);
      REQUIRE(r->device_bytes > 0.0);
      REQUIRE(r->device_bytes < fp32_bytes);  // packed weights + scales, tile padding included
      if (method == "uniform") {
        REQUIRE(r->average_bits == budget);
        REQUIRE(r->bytes_sent == 0.0);
      } else {
        REQUIRE(r->bytes_sent == double(strategy_packet_size(Strategy{{std::vector<std::uint8_t>(32),
                                                                        std::vector<std::uint8_t>(16)}})));
        REQUIRE(r->packet_ratio == Approx(r->bytes_sent / fp32_bytes));
        REQUIRE(r->adaptation_seconds > 0.0);
      }
      if (method == "chord" || method == "chord_random_backbone")
        REQUIRE(r->bytes_uploaded == double(profile_message_size(32)));
      else
        REQUIRE(r->bytes_uploaded == 0.0);
      if (method == "qat") {
        REQUIRE(r->device_seconds > 0.0);
        REQUIRE(r->device_seconds_mean > 0.0);
      }
    }

  const MethodResult* fp32 = report.find("fp32", 2.0);
  const MethodResult* uniform2 = report.find("uniform", 2.0);
  REQUIRE(fp32->full.ndcg10 >= uniform2->full.ndcg10);
  REQUIRE(fp32->sampled.ndcg10 >= uniform2->sampled.ndcg10);
  REQUIRE(fp32->full.ndcg10 > uniform2->full.ndcg10);  // 2 bits do hurt this model
  // Measured on seeds 1..8 with 1 and 2 threads: CHORD's full NDCG@10 above random mixed's at every budget
  // (by 0.12..0.47 at 2 bits, 0.001..0.26 at 4 bits); sampled NDCG@10 too, except seed 5 at 4 bits (0.980 vs
  // 0.981). Seed 1 (here): 0.91/0.95/0.97 against 0.76/0.87/0.94 (full, budgets 2/3/4).
  for (double budget : report.budgets) {
    const MethodResult* chord = report.find("chord", budget);
    const MethodResult* random = report.find("random_mixed", budget);
    INFO("budget " << budget << ": NDCG@10 full chord " << chord->full.ndcg10 << ", random " << random->full.ndcg10
                   << "; sampled " << chord->sampled.ndcg10 << " vs " << random->sampled.ndcg10);
    REQUIRE(chord->full.ndcg10 > random->full.ndcg10);
    REQUIRE(chord->sampled.ndcg10 >= random->sampled.ndcg10);
    // The per-user strategies do differ between users (the packets are per user).
    REQUIRE(chord->min_bits <= chord->max_bits);
  }
  // The table prints every row (n/a included) without failing.
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink != nullptr);
  print_experiment_table(report, sink);
  REQUIRE(std::ftell(sink) > 0);
  std::fclose(sink);
}

TEST_CASE("experiment: qat reports the metrics and time of its best validation step", "[personalize][experiment]") {
  const Planted p(2);
  const ExperimentOptions options = tiny_options(kTestThreads);
  const Palette palette = options.palette;
  // Given hypernetworks (no ablation here), so that the user-agnostic strategy can be rebuilt independently.
  const QuantizationCache cache(p.trained.layers());
  Hypernetworks nets(cache.shapes(), HypernetConfig{p.trained.profile_dim(), options.hidden, options.rank});
  nets.init(options.training.seed);
  HypernetTrainer trainer(p.trained, nets, cache, options.training_users, options.training);
  trainer.train();
  const ExperimentReport report = run_experiment({&p.trained, &p.trained_eval, &nets, {}}, nullptr, options);
  const Importances population = population_importance(nets, cache, trainer.profiles());
  for (double budget : report.budgets) {
    const MethodResult* qat = report.find("qat", budget);
    const MethodResult* agnostic = report.find("user_agnostic", budget);
    const MethodResult* reference = report.find("user_agnostic_qat_users", budget);
    REQUIRE(qat->user_ids == reference->user_ids);
    REQUIRE(qat->average_bits == Approx(agnostic->average_bits).epsilon(1e-12));  // the user-agnostic widths
    REQUIRE(qat->bytes_sent == agnostic->bytes_sent);
    const BudgetSolution agnostic_strategy = solve_strategy(cache, population, budget, palette);
    REQUIRE(agnostic_strategy.average_bits == Approx(qat->average_bits).epsilon(1e-12));
    const auto bits = strategy_bits(agnostic_strategy.strategy, palette);
    auto ws = p.trained.make_workspace();
    auto scratch = p.trained_eval.make_scratch();
    for (std::size_t i = 0; i < qat->user_ids.size(); ++i) {
      const std::size_t user = qat->user_ids[i];
      FinetuneOptions f = options.finetune;
      f.seed = options.seed;
      const FinetuneResult tuned = finetune_user(p.trained, user, bits, f, *ws);
      INFO("user " << user << " at " << budget << " bits, best step " << tuned.best_step);
      REQUIRE(tuned.validation_loss.size() == f.steps + 1);
      REQUIRE(tuned.seconds_to_best > 0.0);
      REQUIRE(tuned.seconds_to_best <= tuned.seconds_total);
      for (double loss : tuned.validation_loss) REQUIRE(tuned.validation_loss[tuned.best_step] <= loss);
      std::vector<const float*> w;
      for (const auto& layer : tuned.best_weights) w.push_back(layer.data());
      const UserEvaluation best = p.trained_eval.evaluate(user, w, bits, *scratch);
      REQUIRE(qat->per_user[i].full.ndcg10 == best.full.ndcg10);
      REQUIRE(qat->per_user[i].sampled.ndcg10 == best.sampled.ndcg10);
      REQUIRE(qat->per_user[i].full.hr5 == best.full.hr5);
      // The best step's weights give the best step's validation loss (they are that step's weights).
      std::vector<std::vector<float>> q;
      std::vector<std::int8_t> codes;
      fake_quantize_layers(p.trained.layers(), w, bits, f.search, q, codes);
      const double loss = p.trained.loss_and_weight_grads({user, UserSplit::validation, 0}, {q[0].data(), q[1].data()},
                                                          nullptr, *ws);
      REQUIRE(loss == tuned.validation_loss[tuned.best_step]);
    }
  }
  // Fine-tuning on the user's own data does find better weights than the starting ones for some users.
  double steps = 0.0;
  for (double budget : report.budgets) steps += report.find("qat", budget)->mean_best_step;
  REQUIRE(steps > 0.0);
}

TEST_CASE("experiment: deterministic across runs and thread counts", "[personalize][experiment]") {
  const Planted p(3);
  const ExperimentReport a = run_tiny(p, kTestThreads, nullptr, nullptr, 60);
  const ExperimentReport b = run_tiny(p, kTestThreads, nullptr, nullptr, 60);
  require_same_measurements(a, b);
  // With given hypernetworks nothing depends on the thread count.
  const ExperimentOptions o = tiny_options(1);
  const auto train = [&](const PlantedRecommender& backbone) {
    const QuantizationCache cache(backbone.layers());
    Hypernetworks nets(cache.shapes(), HypernetConfig{backbone.profile_dim(), o.hidden, o.rank});
    nets.init(5);
    TrainOptions t = o.training;
    t.steps = 50;
    HypernetTrainer(backbone, nets, cache, o.training_users, t).train();
    return nets;
  };
  const Hypernetworks trained_nets = train(p.trained), random_nets = train(p.random);
  const ExperimentReport one = run_tiny(p, 1, &trained_nets, &random_nets);
  const ExperimentReport two = run_tiny(p, kTestThreads, &trained_nets, &random_nets);
  REQUIRE(one.hypernetworks == "given");
  require_same_measurements(one, two);
}

TEST_CASE("experiment: the JSON report round-trips; bad reports are refused", "[personalize][experiment][json]") {
  const Planted p(4);
  ExperimentOptions o = tiny_options(kTestThreads);
  o.evaluation_users = 12;  // a seeded sample of the pool
  o.qat_users = 3;
  o.finetune.steps = 3;
  o.training.steps = 30;
  ExperimentModel trained{&p.trained, &p.trained_eval, nullptr, {}};
  const ExperimentReport report = run_experiment(trained, nullptr, o);
  REQUIRE(report.evaluation_users == 12);
  REQUIRE(report.random_architecture.empty());
  REQUIRE_FALSE(report.find("chord_random_backbone", 2.0)->available);
  const std::string text = experiment_json_text(report);
  const ExperimentReport back = parse_experiment_report(text, "memory");
  REQUIRE(experiment_json_text(back) == text);
  REQUIRE(back.results.size() == report.results.size());
  for (std::size_t i = 0; i < report.results.size(); ++i) {
    const MethodResult &x = report.results[i], &y = back.results[i];
    REQUIRE(x.method == y.method);
    REQUIRE(x.budget == y.budget);
    REQUIRE(x.available == y.available);
    REQUIRE(x.note == y.note);
    REQUIRE(x.full.ndcg10 == y.full.ndcg10);
    REQUIRE(x.sampled.hr5 == y.sampled.hr5);
    REQUIRE(x.average_bits == y.average_bits);
    REQUIRE(x.adaptation_seconds == y.adaptation_seconds);
    REQUIRE(x.packet_ratio == y.packet_ratio);
  }
  REQUIRE(back.fingerprint == report.fingerprint);
  REQUIRE(back.budgets == report.budgets);
  REQUIRE(back.palette == report.palette);
  REQUIRE(back.seed == report.seed);

  // File round trip.
  const std::string path = "test_experiment_report.json";
  write_experiment_report(path, report);
  const auto bytes = read_file(path);
  REQUIRE(parse_experiment_report(std::string(bytes.begin(), bytes.end()), path).results.size() == report.results.size());
  std::remove(path.c_str());

  // Refusals name the place.
  REQUIRE_THROWS_WITH(parse_experiment_report("{", "r.json"), Catch::Contains("r.json") && Catch::Contains("not JSON"));
  REQUIRE_THROWS_WITH(parse_experiment_report("[]", "r.json"), Catch::Contains("expected an object"));
  std::string wrong_kind = text;
  wrong_kind.replace(wrong_kind.find("chord-experiment"), 16, "something-else!!");
  REQUIRE_THROWS_WITH(parse_experiment_report(wrong_kind, "r.json"), Catch::Contains("kind"));
  std::string no_budget = text;
  const std::size_t at = no_budget.find("\"budget\":");
  no_budget.replace(at, 9, "\"budgex\":");
  REQUIRE_THROWS_WITH(parse_experiment_report(no_budget, "r.json"),
                      Catch::Contains("results[0]") && Catch::Contains("no 'budget'"));
  std::string bad_type = text;
  bad_type.replace(bad_type.find("\"users\": "), 9, "\"users\": \"x\", \"y\": ");
  REQUIRE_THROWS_WITH(parse_experiment_report(bad_type, "r.json"), Catch::Contains("'users' has the wrong type"));
  // Integers outside their type's range are refused, not wrapped or converted by undefined behaviour
  // (found by fuzz_experiment_json: a palette entry of 88888888888888888888882, a float to nlohmann).
  const auto edited = [&](const char* key, const nlohmann::json& value, int index = -1) {
    nlohmann::json j = nlohmann::json::parse(text);
    (index < 0 ? j[key] : j[key][std::size_t(index)]) = value;
    return j.dump();
  };
  REQUIRE_THROWS_WITH(parse_experiment_report(edited("palette", 8.88888e22, 1), "r.json"),
                      Catch::Contains("'palette'[1] has the wrong type"));
  REQUIRE_THROWS_WITH(parse_experiment_report(edited("palette", -5, 2), "r.json"), Catch::Contains("palette width -5"));
  REQUIRE_THROWS_WITH(parse_experiment_report(edited("version", 4294967297ull), "r.json"),
                      Catch::Contains("'version' has the wrong type"));
  REQUIRE_THROWS_WITH(parse_experiment_report(edited("threads", -3), "r.json"),
                      Catch::Contains("'threads' has the wrong type"));
  REQUIRE_THROWS_WITH(parse_experiment_report(edited("seed", 1.5), "r.json"), Catch::Contains("'seed' has the wrong type"));
  REQUIRE(parse_experiment_report(edited("seed", 18446744073709551615ull), "r.json").seed == 18446744073709551615ull);
}

TEST_CASE("experiment: bad inputs are refused with a clear message", "[personalize][experiment]") {
  const Planted p(5);
  ExperimentModel trained{&p.trained, &p.trained_eval, nullptr, {}};
  ExperimentOptions o = tiny_options(1);
  o.training.steps = 2;
  o.qat_users = 0;
  o.evaluation_pool = {kUsers + 3};
  REQUIRE_THROWS_WITH(run_experiment(trained, nullptr, o), Catch::Contains("user 99 is out of range"));
  o.evaluation_pool = {70, 71};
  o.budgets = {9.0};
  REQUIRE_THROWS_WITH(run_experiment(trained, nullptr, o), Catch::Contains("budget 9 bits"));
  o.budgets = {2.0};
  ExperimentModel no_evaluator{&p.trained, nullptr, nullptr, {}};
  REQUIRE_THROWS_WITH(run_experiment(no_evaluator, nullptr, o), Catch::Contains("evaluator"));
  // No qat users: the qat rows stay in the report, marked unavailable.
  const ExperimentReport r = run_experiment(trained, nullptr, o);
  REQUIRE_FALSE(r.find("qat", 2.0)->available);
  REQUIRE(r.find("qat", 2.0)->note == "no qat users");
  REQUIRE(r.find("chord", 2.0)->users == 2);
  // The device bytes are the builder's: the rest of the model (fp32 or at the device's width) is added.
  ExperimentModel with_rest = trained;
  with_rest.build = pack_personalized_layers(p.trained.layers(), 5000, 700);
  const ExperimentReport rest = run_experiment(with_rest, nullptr, o);
  REQUIRE(rest.find("fp32", 2.0)->device_bytes == r.find("fp32", 2.0)->device_bytes + 5000);
  REQUIRE(rest.find("uniform", 2.0)->device_bytes == r.find("uniform", 2.0)->device_bytes + 700);
  REQUIRE(rest.find("chord", 2.0)->device_bytes == r.find("chord", 2.0)->device_bytes + 700);
  // 2 bits: 2 / 8 bytes per weight, plus one fp32 scale per channel (the 16-channel tiles are full here).
  REQUIRE(r.find("uniform", 2.0)->device_bytes == 1024 * 2 / 8 + 48 * 4);
  ExperimentModel failing = trained;
  failing.build = [] { return std::unique_ptr<DeviceBuilder>(); };
  REQUIRE_THROWS_WITH(run_experiment(failing, nullptr, o), Catch::Contains("no device builder"));
}

TEST_CASE("experiment: options.methods runs only the chosen rows, with the numbers of a full run",
          "[personalize][experiment]") {
  const Planted p(6);
  ExperimentOptions o = tiny_options(kTestThreads);
  o.qat_users = 0;
  const QuantizationCache cache(p.trained.layers());
  Hypernetworks nets(cache.shapes(), HypernetConfig{p.trained.profile_dim(), o.hidden, o.rank});
  nets.init(5);
  TrainOptions t = o.training;
  t.steps = 30;
  HypernetTrainer(p.trained, nets, cache, o.training_users, t).train();
  const ExperimentModel trained{&p.trained, &p.trained_eval, &nets, {}};
  const ExperimentModel random{&p.random, &p.random_eval, nullptr, {}};
  const ExperimentReport full = run_experiment(trained, nullptr, o);
  o.methods = {"chord", "fp32", "uniform"};
  // The random backbone is given but not chosen: it is not prepared (its nets would be trained here).
  const ExperimentReport some = run_experiment(trained, &random, o);
  REQUIRE(some.random_architecture.empty());
  REQUIRE(some.results.size() == 3 * o.budgets.size());  // uniform at 3 bits stays, marked n/a
  for (const MethodResult& r : some.results) {
    INFO(r.method << " at " << r.budget);
    REQUIRE((r.method == "fp32" || r.method == "uniform" || r.method == "chord"));
    const MethodResult* reference = full.find(r.method, r.budget);
    REQUIRE(reference != nullptr);
    REQUIRE(r.available == reference->available);
    REQUIRE(r.user_ids == reference->user_ids);
    REQUIRE(r.average_bits == reference->average_bits);
    REQUIRE(r.device_bytes == reference->device_bytes);
    REQUIRE(r.bytes_sent == reference->bytes_sent);
    REQUIRE(r.sampled.ndcg10 == reference->sampled.ndcg10);
    REQUIRE(r.full.ndcg10 == reference->full.ndcg10);
  }
  REQUIRE(some.find("user_agnostic", 2.0) == nullptr);
  REQUIRE(some.find("chord", 3.0)->users == full.find("chord", 3.0)->users);
  o.methods = {"chord", "no_such_method"};
  REQUIRE_THROWS_WITH(run_experiment(trained, nullptr, o), Catch::Contains("unknown method 'no_such_method'"));
}
