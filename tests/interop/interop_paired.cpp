// interop_paired: a measurement for docs/interop.md (not a test): NDCG@10 of a SASRec / Caser model file
// in fp32 and quantized (W8A8, W4A8: every quantizable layer, embeddings included), each user's
// quantized-minus-fp32 difference paired, with its mean and 95% confidence interval (normal
// approximation over the users), under chord's sampled and full protocols (test targets).
//
//   interop_paired MODEL DATA
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "chord/data/metrics.hpp"
#include "chord/data/reader.hpp"
#include "chord/data/split.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/ops/dispatch.hpp"

namespace {

using chord::models::InferenceOptions;

template <typename Engine>
void per_user(const Engine& engine, const chord::data::LeaveOneOutSplit& split, const std::vector<std::int32_t>& users,
              std::vector<double>& sampled, std::vector<double>& full) {
  auto scratch = engine.make_scratch();
  chord::models::RankBuffers buffers;
  for (std::int32_t u : users) {
    const auto ranks = chord::models::rank_user(engine, split, u, chord::data::Phase::test, 42, true, true, scratch, buffers);
    sampled.push_back(chord::data::ndcg_at(ranks.sampled, 10));
    full.push_back(chord::data::ndcg_at(ranks.full, 10));
  }
}

void report(const char* protocol, const char* mode, const std::vector<double>& base, const std::vector<double>& q) {
  double mb = 0, mq = 0, md = 0, v = 0;
  const double n = double(base.size());
  for (std::size_t i = 0; i < base.size(); ++i) mb += base[i] / n, mq += q[i] / n, md += (q[i] - base[i]) / n;
  for (std::size_t i = 0; i < base.size(); ++i) v += (q[i] - base[i] - md) * (q[i] - base[i] - md) / (n - 1);
  const double half = 1.96 * std::sqrt(v / n);
  std::printf("%-8s %-5s NDCG@10 %.4f (fp32 %.4f)  paired difference %+.4f [%+.4f, %+.4f] = %+.2f%% [%+.2f%%, %+.2f%%]\n",
              protocol, mode, mq, mb, md, md - half, md + half, 100 * md / mb, 100 * (md - half) / mb,
              100 * (md + half) / mb);
}

template <typename Engine, typename Model>
void run(const Model& model, const std::vector<chord::LayerShape>& layers, const chord::data::LeaveOneOutSplit& split) {
  const std::vector<std::int32_t> users = split.evaluated_users();
  InferenceOptions fp32;
  fp32.kernels = &chord::best_kernels();
  std::vector<double> bs, bf;
  per_user(Engine(model, fp32), split, users, bs, bf);
  for (int bits : {8, 4}) {
    InferenceOptions q;
    q.mode = chord::LinearMode::mixed_s8;
    q.kernels = &chord::best_kernels();
    for (const auto& layer : layers) q.bits.emplace_back(layer.channels, std::uint8_t(bits));
    std::vector<double> qs, qf;
    per_user(Engine(model, q), split, users, qs, qf);
    const char* mode = bits == 8 ? "w8a8" : "w4a8";
    report("sampled", mode, bs, qs);
    report("full", mode, bf, qf);
  }
  std::printf("%zu users\n", users.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: interop_paired MODEL DATA\n");
    return 2;
  }
  try {
    const auto loaded = chord::models::load_model(argv[1]);
    const auto split = chord::data::leave_one_out(chord::data::read_dataset(argv[2]));
    if (loaded.sasrec)
      run<chord::models::SasrecInference>(*loaded.sasrec, chord::models::describe(loaded.sasrec->config()).quantizable_shapes(), split);
    else
      run<chord::models::CaserInference>(*loaded.caser, chord::models::describe(loaded.caser->config()).quantizable_shapes(), split);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "interop_paired: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
