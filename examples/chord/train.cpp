// examples/chord/train.cpp: `chord train`: train SASRec or Caser, save the model as safetensors.
#include <chrono>
#include <functional>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "command.hpp"
#include "common.hpp"

#include "chord/data/split.hpp"
#include "chord/models/model_file.hpp"
#include "chord/models/trainer.hpp"

namespace chord::cli {

namespace {

struct TrainArgs {
  std::string data, model, out = "model.safetensors";
  int epochs = -1;        // -1: the model's default (SASRec 200, Caser 50)
  int batch = -1;         // -1: SASRec 128, Caser 512
  float lr = 1e-3f;
  float weight_decay = -1.0f;  // -1: SASRec 0, Caser 1e-6
  float dropout = -1.0f;  // -1: from the data (see below)
  int d = 50, blocks = 2, heads = 1, max_len = -1, hidden = -1;
  std::string variant = "chord";  // SASRec graph (models/config.hpp)
  int L = 5, T = 3, nh = 16, nv = 4, negatives = 3;
  std::uint64_t seed = 1;
  int threads = 2;
  int eval_every = 5, patience = 5;
  std::size_t eval_users = 0;
};

std::string text(double v) { return number_text(v); }

template <typename Model>
void save_checkpoint(const std::string& path, const Model& model, models::Metadata extra, const models::EpochReport& r,
                     std::size_t batch) {
  extra["train.epochs"] = std::to_string(r.epoch);
  extra["train.best_epoch"] = std::to_string(r.epoch);
  extra["train.batch"] = std::to_string(batch);
  extra["train.valid_ndcg10"] = text(r.valid.ndcg_10);
  extra["train.valid_hr10"] = text(r.valid.hr_10);
  extra["train.checkpoint"] = "1";  // written during training; the final save drops this key
  models::save_model(path, model, extra);
}

int run_train(const TrainArgs& a) {
  check_output_path(a.out);  // before the training, not at its first checkpoint
  const LoadedData loaded = load_data(a.data, a.seed);
  const data::LeaveOneOutSplit split = data::leave_one_out(loaded.dataset);
  // MovieLens-like data (long histories) vs sparse data (Amazon, Yelp): the papers' two settings.
  const double mean_length = data::compute_stats(loaded.dataset).mean_length;
  const bool dense = mean_length >= 60.0;

  models::TrainOptions o;
  o.lr = a.lr;
  o.seed = a.seed;
  o.threads = std::size_t(a.threads < 1 ? 1 : a.threads);
  o.eval_every = a.eval_every;
  o.patience = a.patience;
  o.eval_users = a.eval_users;
  Progress progress(stderr_is_terminal());
  // Each new best validation score is saved at once (atomically): a long run that is stopped still
  // leaves its best model behind, and the final save below writes the same parameters.
  std::function<void(const models::EpochReport&)> checkpoint;
  o.on_batch = [&](const models::BatchProgress& p) { progress.batch(p); };
  o.on_epoch = [&](const models::EpochReport& r) {
    progress.epoch(r);
    if (r.best && checkpoint) checkpoint(r);
  };

  models::Metadata extra = loaded.source;
  extra["train.seed"] = std::to_string(a.seed);
  extra["train.lr"] = text(a.lr);
  extra["train.threads"] = std::to_string(o.threads);
  models::TrainResult result;
  const auto start = std::chrono::steady_clock::now();
  if (a.model == "sasrec") {
    models::SasrecConfig c;
    c.num_items = split.num_items;
    c.d = a.d, c.blocks = a.blocks, c.heads = a.heads;
    c.max_len = a.max_len > 0 ? a.max_len : (dense ? 200 : 50);
    c.hidden = a.hidden > 0 ? a.hidden : a.d;
    c.dropout = a.dropout >= 0.0f ? a.dropout : (dense ? 0.2f : 0.5f);
    c.variant = models::parse_sasrec_variant(a.variant, "--variant");
    o.epochs = a.epochs >= 0 ? a.epochs : 200;
    o.batch_size = std::size_t(a.batch > 0 ? a.batch : 128);
    o.weight_decay = a.weight_decay >= 0.0f ? a.weight_decay : 0.0f;
    std::printf("sasrec: d %d, %d blocks, %d head(s), max length %d, dropout %.2f; %d epochs max, batch %zu, lr %g, "
                "%zu thread(s), seed %llu\n",
                c.d, c.blocks, c.heads, c.max_len, double(c.dropout), o.epochs, o.batch_size, double(o.lr), o.threads,
                static_cast<unsigned long long>(o.seed));
    models::SasrecModel model(c);
    model.init(a.seed);
    checkpoint = [&](const models::EpochReport& r) { save_checkpoint(a.out, model, extra, r, o.batch_size); };
    result = models::train_sasrec(model, split, o);
    extra["train.epochs"] = std::to_string(result.epochs_run);
    extra["train.best_epoch"] = std::to_string(result.best_epoch);
    extra["train.batch"] = std::to_string(o.batch_size);
    extra["train.valid_ndcg10"] = text(result.best_valid.ndcg_10);
    extra["train.valid_hr10"] = text(result.best_valid.hr_10);
    models::save_model(a.out, model, extra);
  } else if (a.model == "caser") {
    models::CaserConfig c;
    c.num_items = split.num_items;
    c.num_users = split.num_users;
    c.d = a.d, c.L = a.L, c.T = a.T, c.nh = a.nh, c.nv = a.nv, c.negatives = a.negatives;
    c.dropout = a.dropout >= 0.0f ? a.dropout : 0.5f;
    o.epochs = a.epochs >= 0 ? a.epochs : 50;
    o.batch_size = std::size_t(a.batch > 0 ? a.batch : 512);
    o.weight_decay = a.weight_decay >= 0.0f ? a.weight_decay : 1e-6f;
    std::printf("caser: d %d, L %d, T %d, nh %d, nv %d, %d negatives per target, dropout %.2f; %d epochs max, batch %zu, "
                "lr %g, L2 %g, %zu thread(s), seed %llu\n",
                c.d, c.L, c.T, c.nh, c.nv, c.negatives, double(c.dropout), o.epochs, o.batch_size, double(o.lr),
                double(o.weight_decay), o.threads, static_cast<unsigned long long>(o.seed));
    models::CaserModel model(c);
    model.init(a.seed);
    checkpoint = [&](const models::EpochReport& r) { save_checkpoint(a.out, model, extra, r, o.batch_size); };
    result = models::train_caser(model, split, o);
    extra["train.epochs"] = std::to_string(result.epochs_run);
    extra["train.best_epoch"] = std::to_string(result.best_epoch);
    extra["train.batch"] = std::to_string(o.batch_size);
    extra["train.valid_ndcg10"] = text(result.best_valid.ndcg_10);
    extra["train.valid_hr10"] = text(result.best_valid.hr_10);
    models::save_model(a.out, model, extra);
  } else {
    throw Error("unknown model '" + a.model + "' (expected sasrec or caser)");
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("trained %d epoch(s)%s in %.1f s (%.2f s per epoch of training); best validation epoch %d: "
              "HR@10 %.4f NDCG@10 %.4f\n",
              result.epochs_run, result.stopped_early ? " (early stop)" : "", total, result.mean_epoch_seconds,
              result.best_epoch, result.best_valid.hr_10, result.best_valid.ndcg_10);
  std::printf("saved %s\n", a.out.c_str());
  return 0;
}

}  // namespace

Action setup_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* sub = app.add_subcommand("train", "Train a SASRec or Caser model and save it as a .safetensors file");
  sub->footer(
      "Examples:\n"
      "  chord train --model sasrec --data ../shared/data/ml-100k/u.data --out sasrec.safetensors\n"
      "  chord train --model caser --out caser.safetensors     (no --data: synthetic data, trains in seconds)\n"
      "The split is leave-one-out (last item = test, second-to-last = validation). Training stops early when\n"
      "validation NDCG@10 (100 sampled negatives) has not improved for --patience evaluations, and the best\n"
      "model is saved. Defaults follow the papers; long-history data (mean length >= 60, e.g. MovieLens) gets\n"
      "SASRec max length 200 and dropout 0.2, sparse data (Amazon, Yelp) 50 and 0.5.\n");
  sub->add_option("--model", a->model, "Architecture: sasrec or caser")->required()->check(CLI::IsMember({"sasrec", "caser"}));
  sub->add_option("--data", a->data,
                  "Dataset file (ml-1m.txt, u.data, Beauty.txt, ...; format detected). Omit to use synthetic data");
  sub->add_option("--out", a->out, "Where to write the model")->capture_default_str();
  sub->add_option("--epochs", a->epochs, "Maximum epochs (default: SASRec 200, Caser 50)");
  sub->add_option("--batch", a->batch, "Batch size (default: SASRec 128 sequences, Caser 512 windows)");
  sub->add_option("--lr", a->lr, "Adam learning rate")->capture_default_str()->check(kFinite);
  sub->add_option("--weight-decay", a->weight_decay, "Adam L2 weight decay (default: SASRec 0, Caser 1e-6)")->check(kFinite);
  sub->add_option("--dropout", a->dropout, "Dropout (default: from the data, see below; Caser 0.5)")->check(kFinite);
  sub->add_option("--d", a->d, "Embedding width")->capture_default_str();
  sub->add_option("--blocks", a->blocks, "SASRec: self-attention blocks")->capture_default_str();
  sub->add_option("--heads", a->heads, "SASRec: attention heads")->capture_default_str();
  sub->add_option("--max-len", a->max_len, "SASRec: longest history used (default: 200 or 50, from the data)");
  sub->add_option("--hidden", a->hidden, "SASRec: feed-forward width (default: d)");
  sub->add_option("--variant", a->variant, "SASRec graph: chord, or SASRec.pytorch's legacy, norm-first, post-ln")
      ->capture_default_str()
      ->check(CLI::IsMember({"chord", "legacy", "norm-first", "post-ln"}));
  sub->add_option("--L", a->L, "Caser: previous items seen")->capture_default_str();
  sub->add_option("--T", a->T, "Caser: next items predicted per window")->capture_default_str();
  sub->add_option("--nh", a->nh, "Caser: horizontal filters per height")->capture_default_str();
  sub->add_option("--nv", a->nv, "Caser: vertical filters")->capture_default_str();
  sub->add_option("--negatives", a->negatives, "Caser: sampled negatives per target")->capture_default_str();
  sub->add_option("--seed", a->seed, "Seed of everything random (same seed + threads = same model)")->capture_default_str();
  sub->add_option("--threads", a->threads, "Worker threads over the batch")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--eval-every", a->eval_every, "Epochs between validation evaluations (0: never)")->capture_default_str();
  sub->add_option("--patience", a->patience, "Evaluations without improvement before stopping (0: never)")->capture_default_str();
  sub->add_option("--eval-users", a->eval_users, "Validation users per evaluation (0: all)")->capture_default_str();
  return {sub, [a] { return run_train(*a); }};
}

}  // namespace chord::cli
