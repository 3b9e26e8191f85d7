// examples/chord/eval.cpp: `chord eval`: HR/NDCG of a saved model, fp32 and quantized.
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "file_checks.hpp"
#include "usage.hpp"
#include "common.hpp"

#include "chord/core/strategy.hpp"
#include "chord/data/split.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/ops/dispatch.hpp"
#include "chord/personalize/device/device_model.hpp"

namespace chord::cli {

namespace {

struct EvalArgs {
  bool allow_other_data = false;  // use a model on data other than it was trained on
  std::string model, data, bits = "8,4,2", activations = "f32,s8", protocol = "both", phase = "test", report;
  std::string strategy;
  int embedding_bits = 8;  // with a packet of the personalized layers only
  std::uint64_t seed = 42;
  int threads = 2;
  std::size_t users = 0;
};

// One way of running the model.
struct Variant {
  std::string name;        // "fp32", "w4a8", "strategy-a32", ...
  int bits = 32;           // uniform width, 32 for fp32, 0 for a strategy
  std::string activations; // "f32" or "s8"
  models::InferenceOptions options;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

struct Row {
  Variant variant;
  double average_bits = 0.0;
  std::size_t weight_bytes = 0;
  models::EvalResult result;
};

template <typename Engine>
Row run_variant(const Variant& v, const Engine& engine, const data::LeaveOneOutSplit& split,
                const models::EvalOptions& eo, const std::vector<LayerShape>& layers) {
  Row row;
  row.variant = v;
  double bits = 0.0, weights = 0.0;
  for (std::size_t l = 0; l < layers.size(); ++l)
    for (std::uint32_t c = 0; c < layers[l].channels; ++c) {
      bits += (v.options.bits.empty() ? 32.0 : double(v.options.bits[l][c])) * layers[l].fan_in;
      weights += layers[l].fan_in;
    }
  row.average_bits = weights > 0.0 ? bits / weights : 0.0;
  row.weight_bytes = engine.weight_bytes();
  row.result = models::evaluate(engine, split, eo);
  return row;
}

void print_row(const Row& r, bool sampled, bool full) {
  std::printf("%-14s %6.2f %10zu", r.variant.name.c_str(), r.average_bits, r.weight_bytes);
  const auto m = [](const data::RankingMetrics& x) {
    std::printf("  %.4f %.4f %.4f %.4f", x.hr_5, x.ndcg_5, x.hr_10, x.ndcg_10);
  };
  if (sampled) m(r.result.sampled);
  if (full) m(r.result.full);
  std::printf("  %6.1f\n", r.result.seconds);
}

std::string metrics_json(const data::RankingMetrics& m) {
  return "{\"users\": " + std::to_string(m.users) + ", \"hr@5\": " + json_number(m.hr_5) + ", \"ndcg@5\": " +
         json_number(m.ndcg_5) + ", \"hr@10\": " + json_number(m.hr_10) + ", \"ndcg@10\": " + json_number(m.ndcg_10) + "}";
}

// A strategy packet for this model is one of two kinds, told apart by its model fingerprint: one that
// covers every quantizable layer (embeddings included), or one that covers the personalized layers only,
// as CHORD's cloud sends them (`chord strategy`); the embeddings then run at embedding_bits.
// Returns the widths of every quantizable layer, in the inference graph's order.
std::vector<std::vector<std::uint8_t>> packet_bits(const std::string& path, const models::LoadedModel& loaded,
                                                   const std::vector<LayerShape>& layers, int embedding_bits) {
  expect_file_kind(path, FileKind::strategy_packet, "--strategy");
  const std::vector<std::uint8_t> bytes = read_file(path);
  const PacketExpectation whole{model_fingerprint(layers, loaded.architecture), layers};
  const PacketExpectation personal{personalize::device_fingerprint(loaded), personalize::personalized_layers(loaded)};
  try {
    const StrategyPacket packet = decode_strategy(bytes.data(), bytes.size(), personal, path);
    return personalize::inference_bits(loaded, strategy_bits(packet.strategy, packet.palette), embedding_bits);
  } catch (const Error& as_personal) {
    try {
      const StrategyPacket packet = decode_strategy(bytes.data(), bytes.size(), whole, path);
      return strategy_bits(packet.strategy, packet.palette);
    } catch (const Error& as_whole) {
      throw Error(std::string("--strategy: neither a packet of the personalized layers (") + as_personal.what() +
                  ") nor one of every layer (" + as_whole.what() + ")");
    }
  }
}

int run_eval(const EvalArgs& a) {
  models::LoadedModel loaded = load_model_file(a.model);
  const LoadedData data = load_data_for(a.data, loaded, a.model, a.allow_other_data);
  const data::LeaveOneOutSplit split = data::leave_one_out(data.dataset);
  const std::vector<LayerShape> layers = models::describe(loaded).quantizable_shapes();
  const KernelTable& kernels = best_kernels();

  models::EvalOptions eo;
  eo.phase = a.phase == "validation" ? data::Phase::validation : data::Phase::test;
  eo.protocol = a.protocol == "sampled" ? models::Protocol::sampled
                : a.protocol == "full"  ? models::Protocol::full
                                        : models::Protocol::both;
  eo.seed = a.seed;
  eo.threads = std::size_t(a.threads);
  eo.max_users = a.users;

  std::vector<Variant> variants;
  variants.push_back({"fp32", 32, "f32", {}});
  const std::vector<std::string> activation_list = split_list(a.activations);
  for (const std::string& act : activation_list)
    if (act != "f32" && act != "s8") throw Error("--activations: '" + act + "' is not f32 or s8");
  const auto mode_of = [](const std::string& act) {
    return act == "s8" ? LinearMode::mixed_s8 : LinearMode::mixed_f32;
  };
  for (const std::string& b : split_list(a.bits)) {
    if (b == "fp32" || b == "32") continue;
    const int bits = b == "8" ? 8 : b == "4" ? 4 : b == "2" ? 2 : -1;
    if (bits < 0) throw Error("--bits: '" + b + "' is not 8, 4 or 2");
    for (const std::string& act : activation_list) {
      Variant v{"w" + b + (act == "s8" ? "a8" : "a32"), bits, act, {}};
      v.options.mode = mode_of(act);
      v.options.kernels = &kernels;
      for (const LayerShape& l : layers) v.options.bits.emplace_back(l.channels, std::uint8_t(bits));
      variants.push_back(std::move(v));
    }
  }
  if (!a.strategy.empty()) {
    const std::vector<std::vector<std::uint8_t>> bits = packet_bits(a.strategy, loaded, layers, a.embedding_bits);
    for (const std::string& act : activation_list) {
      Variant v{std::string("strategy-") + (act == "s8" ? "a8" : "a32"), 0, act, {}};
      v.options.mode = mode_of(act);
      v.options.kernels = &kernels;
      v.options.bits = bits;
      variants.push_back(std::move(v));
    }
  }

  const bool sampled = eo.protocol != models::Protocol::full, full = eo.protocol != models::Protocol::sampled;
  std::printf("model %s (%s), %s targets, kernels %s/%s, %zu thread(s)\n", a.model.c_str(), loaded.architecture.c_str(),
              a.phase.c_str(), std::string(isa_name(kernels.isa)).c_str(), kernels.backend, eo.threads);
  std::printf("%-14s %6s %10s", "variant", "bits", "bytes");
  if (sampled) std::printf("  %-27s", "sampled: HR@5 NDCG@5 HR@10 NDCG@10");
  if (full) std::printf("  %-27s", "full: HR@5 NDCG@5 HR@10 NDCG@10");
  std::printf("  %6s\n", "sec");
  std::vector<Row> rows;
  for (const Variant& v : variants) {
    if (loaded.sasrec)
      rows.push_back(run_variant(v, models::SasrecInference(*loaded.sasrec, v.options), split, eo, layers));
    else
      rows.push_back(run_variant(v, models::CaserInference(*loaded.caser, v.options), split, eo, layers));
    print_row(rows.back(), sampled, full);
    std::fflush(stdout);
  }

  if (!a.report.empty()) {
    std::string json = "{\n  \"model\": " + json_string(a.model) + ",\n  \"architecture\": " +
                       json_string(loaded.architecture) + ",\n  \"data\": " + json_string(data.dataset.name) +
                       ",\n  \"phase\": " + json_string(a.phase) + ",\n  \"negatives_seed\": " + std::to_string(a.seed) +
                       ",\n  \"kernels\": " + json_string(std::string(isa_name(kernels.isa)) + "/" + kernels.backend) +
                       ",\n  \"results\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      json += std::string(i ? "," : "") + "\n    {\"variant\": " + json_string(r.variant.name) +
              ", \"weight_bits\": " + std::to_string(r.variant.bits) + ", \"activations\": " +
              json_string(r.variant.activations) + ", \"average_bits\": " + json_number(r.average_bits) +
              ", \"weight_bytes\": " + std::to_string(r.weight_bytes) + ", \"seconds\": " + json_number(r.result.seconds);
      if (sampled) json += ", \"sampled\": " + metrics_json(r.result.sampled);
      if (full) json += ", \"full\": " + metrics_json(r.result.full);
      json += "}";
    }
    json += "\n  ]\n}\n";
    write_file_atomic(a.report, json.data(), json.size());
    std::printf("report written to %s\n", a.report.c_str());
  }
  return 0;
}

}  // namespace

Action setup_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* sub = app.add_subcommand("eval", "Evaluate a saved model: fp32 and quantized weights (HR@5/10, NDCG@5/10)");
  sub->footer(
      "Examples:\n"
      "  chord eval --model sasrec.safetensors --data ../shared/data/ml-100k/u.data --bits 8,4,2\n"
      "  chord eval --model caser.safetensors --bits 4 --activations s8 --protocol full --report r.json\n"
      "Every variant quantizes every layer (embeddings included) per output channel, with fp32 activations\n"
      "(wNa32) and/or int8 per-row activations (wNa8), through the best kernels of this CPU (CHORD_ISA and\n"
      "CHORD_BACKEND force others). Protocols: 'sampled' ranks the target among 100 seeded negatives the user\n"
      "never interacted with; 'full' ranks it among all items minus the user's history.\n");
  sub->add_option("--model", a->model, "Model file written by 'chord train'")->required();
  sub->add_option("--data", a->data, "The dataset the model was trained on (not needed for synthetic data)");
  sub->add_flag("--allow-other-data", a->allow_other_data, "Use the model even on data other than the one it was trained on");
  sub->add_option("--bits", a->bits, "Uniform weight widths to evaluate besides fp32, e.g. 8,4,2")->capture_default_str()
      ->check(list_of({"8", "4", "2", "fp32", "32"}));
  sub->add_option("--activations", a->activations, "Activations for quantized weights: f32, s8 or f32,s8")->capture_default_str()
      ->check(list_of({"f32", "s8"}));
  sub->add_option("--strategy", a->strategy,
                  "Also evaluate a per-channel strategy packet (.chrs) for this model: of every layer, or of the "
                  "personalized layers as 'chord strategy' writes it");
  sub->add_option("--embedding-bits", a->embedding_bits,
                  "Width of the embeddings with a packet of the personalized layers")
      ->capture_default_str()->check(CLI::IsMember({2, 4, 8}));
  sub->add_option("--protocol", a->protocol, "sampled, full or both")->capture_default_str()
      ->check(CLI::IsMember({"sampled", "full", "both"}));
  sub->add_option("--phase", a->phase, "Which targets: test or validation")->capture_default_str()
      ->check(CLI::IsMember({"test", "validation"}));
  sub->add_option("--seed", a->seed, "Seed of the sampled negatives")->capture_default_str();
  sub->add_option("--threads", a->threads, "Threads over users")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--users", a->users, "Evaluate only the first N users (0: all)")->capture_default_str();
  sub->add_option("--report", a->report, "Also write the results as JSON to this file");
  return {sub, [a] { return run_eval(*a); }};
}

}  // namespace chord::cli
