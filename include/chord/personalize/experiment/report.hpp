// chord/personalize/experiment/report.hpp: what the experiment runner (experiment.hpp) measures, and its
// aligned text table. JSON: report_json.hpp.
//
// One MethodResult per (method, budget). Methods, in table order (method names are the JSON's):
//   fp32                   the unquantized model (the same numbers repeated at every budget, as reference)
//   uniform                every channel at the budget's width (PTQ); only when the budget is a palette width
//   user_agnostic          one mixed strategy for everybody: the solver on the trained nets' mean importance
//   random_mixed           the solver on seeded random importances
//   q2_energy              the solver on ||W_c - Q_2(W_c)||^2 (data-free)
//   chord                  each user's own strategy: profile -> cloud -> packet -> device
//   chord_random_backbone  the whole CHORD pipeline on a randomly initialized backbone (ablation)
//   qat                    on-device fine-tuning from the user-agnostic strategy (a smaller user subset)
//   user_agnostic_qat_users  user_agnostic on the QAT subset: the fair reference of the qat row
// A row that cannot be computed stays in the report with available = false and a note saying why.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "chord/core/strategy.hpp"
#include "chord/personalize/experiment/evaluator.hpp"

namespace chord::personalize {

inline const std::vector<std::string>& experiment_methods() {
  static const std::vector<std::string> methods = {"fp32",      "uniform", "user_agnostic", "random_mixed",
                                                   "q2_energy", "chord",   "chord_random_backbone", "qat",
                                                   "user_agnostic_qat_users"};
  return methods;
}

struct MethodResult {
  std::string method;
  double budget = 0.0;          // the requested average bits per personalized weight
  bool available = true;        // false: not computed (see note)
  std::string note;             // why a row is unavailable, or a remark
  std::size_t users = 0;        // users averaged over
  UserRanking sampled, full;    // means over the users (HR@5/10, NDCG@5/10)
  double average_bits = 0.0;    // achieved, weights-weighted over the personalized layers; mean over users
  double min_bits = 0.0, max_bits = 0.0;  // over users (differ only for per-user strategies)
  double device_bytes = 0.0;    // the device's model after adaptation (mean over users)
  double bytes_sent = 0.0;      // strategy packet from the cloud (mean over users; 0: nothing sent)
  double bytes_uploaded = 0.0;  // profile message to the cloud (chord rows)
  double packet_ratio = 0.0;    // bytes_sent / fp32 bytes of the personalized weights
  double adaptation_seconds = 0.0;  // device: decode + quantize + pack, median over users
  double device_seconds = 0.0;      // qat: fine-tuning time to the best validation step, median over users
  double device_seconds_mean = 0.0; // qat: its mean
  double mean_best_step = 0.0;      // qat: mean best step (0 = the starting weights were best)
  double latency_us = 0.0;          // single-user latency (batch 1, one thread), median; 0: not measured
  std::vector<std::size_t> user_ids;          // the users, in order (not in the JSON)
  std::vector<UserEvaluation> per_user;       // their metrics (not in the JSON)
};

struct ExperimentReport {
  std::string architecture, random_architecture;  // random_architecture empty: no ablation backbone
  std::string fingerprint;                        // hex, of the trained backbone
  std::size_t personalized_layers = 0, personalized_channels = 0;
  double personalized_weights = 0.0;              // weights in the personalized layers
  double fp32_personalized_bytes = 0.0;           // 4 per personalized weight
  std::size_t profile_dim = 0, profile_message_bytes = 0;
  std::string hypernetworks;                      // "given" or "trained: N steps x M users"
  std::vector<double> budgets;
  Palette palette = kStandardPalette;
  std::size_t evaluation_users = 0, qat_users = 0, population_users = 0, threads = 1;
  std::uint64_t seed = 0;
  std::size_t qat_steps = 0;
  double qat_lr = 0.0;
  std::vector<MethodResult> results;  // method-major in experiment_methods() order, then budget

  const MethodResult* find(const std::string& method, double budget) const {
    for (const MethodResult& r : results)
      if (r.method == method && r.budget == budget) return &r;
    return nullptr;
  }
  MethodResult* find(const std::string& method, double budget) {
    return const_cast<MethodResult*>(static_cast<const ExperimentReport&>(*this).find(method, budget));
  }
};

// The table: one row per (method, budget), budget-major so that each budget's methods sit together.
inline void print_experiment_table(const ExperimentReport& report, std::FILE* out = stdout) {
  std::fprintf(out, "%s: %zu personalized layers, %zu channels, %.0f weights (%.0f fp32 bytes); %zu users, "
               "qat on %zu\n", report.architecture.c_str(), report.personalized_layers,
               report.personalized_channels, report.personalized_weights, report.fp32_personalized_bytes,
               report.evaluation_users, report.qat_users);
  std::fprintf(out, "%-24s %6s %5s  %9s %9s %9s  %6s %10s %8s %8s %10s\n", "method", "budget", "users",
               "NDCG@10 s", "HR@10 s", "NDCG@10 f", "bits", "dev bytes", "sent", "ratio", "adapt ms");
  for (double budget : report.budgets)
    for (const std::string& method : experiment_methods()) {
      const MethodResult* r = report.find(method, budget);
      if (r == nullptr) continue;
      if (!r->available) {
        std::fprintf(out, "%-24s %6.2f %5s  n/a (%s)\n", method.c_str(), budget, "-", r->note.c_str());
        continue;
      }
      std::fprintf(out, "%-24s %6.2f %5zu  %9.4f %9.4f %9.4f  %6.3f %10.0f %8.0f %8.5f %10.3f", method.c_str(),
                   budget, r->users, r->sampled.ndcg10, r->sampled.hr10, r->full.ndcg10, r->average_bits,
                   r->device_bytes, r->bytes_sent, r->packet_ratio, r->adaptation_seconds * 1e3);
      if (r->method == "qat")
        std::fprintf(out, "  fine-tuning %.3f s (median), best step %.1f", r->device_seconds, r->mean_best_step);
      if (r->latency_us > 0.0) std::fprintf(out, "  latency %.0f us", r->latency_us);
      std::fprintf(out, "\n");
    }
}

// Median of a list (0 when empty); the mean of the two middle values for an even count.
inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace chord::personalize
