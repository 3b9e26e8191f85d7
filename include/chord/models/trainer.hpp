// chord/models/trainer.hpp: training SASRec and Caser: seeded batches, workers, Adam, early stopping.
//
// One step (nn/batch_parallel.hpp): the batch's rows are dealt to `threads` workers statically (row r
// to worker r % threads); each worker runs forward + loss + backward of its rows into its own gradient
// buffer, with the loss normalized by the whole batch's counts; the buffers are summed in worker order
// and Adam steps once. Every random draw is seeded by (seed, epoch, row): the sampler's negatives and
// order, and the dropout stream of each row. So the same seed and thread count give a bit-identical run
// (another thread count changes only the order of the gradient sum: the same run up to rounding).
// Early stopping: every `eval_every` epochs (and after the last) the model is evaluated on the
// VALIDATION targets (sampled protocol: 100 negatives, NDCG@10); the best parameters are kept, training
// stops after `patience` evaluations without improvement, and the best parameters are restored. The
// test targets are never looked at.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/data/sampler.hpp"
#include "chord/data/split.hpp"
#include "chord/models/caser.hpp"
#include "chord/models/caser_inference.hpp"
#include "chord/models/evaluate.hpp"
#include "chord/models/sasrec.hpp"
#include "chord/models/sasrec_inference.hpp"
#include "chord/models/training_loss.hpp"
#include "chord/nn/adam.hpp"
#include "chord/nn/batch_parallel.hpp"

namespace chord::models {

struct BatchProgress {
  int epoch = 0, epochs = 0;          // 1-based epoch
  std::size_t step = 0, steps = 0;    // 1-based step within the epoch
  double loss = 0.0;                  // mean loss of the epoch so far
  double examples_per_second = 0.0;   // in this epoch so far
};

struct EpochReport {
  int epoch = 0;
  double loss = 0.0;                  // mean batch loss
  double seconds = 0.0;               // training time of the epoch (evaluation excluded)
  double examples_per_second = 0.0;   // sequences (SASRec) or windows (Caser) per second
  bool evaluated = false;
  data::RankingMetrics valid;         // sampled protocol on the validation targets, when evaluated
  double eval_seconds = 0.0;
  bool best = false;                  // a new best validation NDCG@10
};

struct TrainOptions {
  int epochs = 200;
  std::size_t batch_size = 128;
  float lr = 1e-3f;
  float weight_decay = 0.0f;          // Adam's coupled L2 (Caser: 1e-6)
  std::uint64_t seed = 1;
  std::size_t threads = 2;
  bool sequential_workers = false;    // run the workers' shares one after the other (same numbers)
  int eval_every = 5;                 // epochs between validation evaluations (0 = never)
  int patience = 5;                   // evaluations without improvement before stopping (0 = never stop)
  std::size_t eval_users = 0;         // validation users per evaluation (0 = all)
  std::uint64_t eval_seed = 42;       // the validation negatives
  std::function<void(const BatchProgress&)> on_batch;
  std::function<void(const EpochReport&)> on_epoch;
};

struct TrainResult {
  int epochs_run = 0;
  int best_epoch = 0;                 // 0: no evaluation ran (the final parameters are kept)
  data::RankingMetrics best_valid;
  bool stopped_early = false;
  double train_seconds = 0.0;         // all epochs, evaluation excluded
  double mean_epoch_seconds = 0.0;
  std::vector<EpochReport> epochs;
};

namespace detail {

// The loop shared by both models. step(epoch, step, loss&, examples&) runs one batch.
template <typename Step, typename Eval>
TrainResult run_training(nn::Parameters& params, const TrainOptions& o, std::size_t steps, Step&& step, Eval&& eval) {
  CHORD_CHECK(o.epochs >= 0, "train: epochs must be non-negative");
  CHORD_CHECK(o.batch_size >= 1, "train: batch size must be at least 1");
  CHORD_CHECK(o.threads >= 1, "train: threads must be at least 1");
  nn::AdamOptions adam_options;
  adam_options.lr = o.lr;
  adam_options.weight_decay = o.weight_decay;
  nn::Adam adam(params, adam_options);
  TrainResult result;
  double best = -1.0;
  int bad = 0;
  AlignedVector<float> best_values;
  using clock = std::chrono::steady_clock;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto start = clock::now();
    double loss_sum = 0.0;
    std::size_t examples = 0;
    for (std::size_t s = 0; s < steps; ++s) {
      double loss = 0.0;
      std::size_t rows = 0;
      step(std::uint64_t(epoch), s, loss, rows);
      adam.step(params);
      loss_sum += loss;
      examples += rows;
      if (o.on_batch) {
        const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
        o.on_batch({epoch, o.epochs, s + 1, steps, loss_sum / double(s + 1),
                    elapsed > 0.0 ? double(examples) / elapsed : 0.0});
      }
    }
    EpochReport report;
    report.epoch = epoch;
    report.seconds = std::chrono::duration<double>(clock::now() - start).count();
    report.loss = steps > 0 ? loss_sum / double(steps) : 0.0;
    report.examples_per_second = report.seconds > 0.0 ? double(examples) / report.seconds : 0.0;
    result.train_seconds += report.seconds;
    result.epochs_run = epoch;
    bool stop = false;
    if (o.eval_every > 0 && (epoch % o.eval_every == 0 || epoch == o.epochs)) {
      const EvalResult e = eval();
      report.evaluated = true;
      report.valid = e.sampled;
      report.eval_seconds = e.seconds;
      if (e.sampled.ndcg_10 > best) {
        best = e.sampled.ndcg_10;
        best_values.assign(params.values(), params.values() + params.flat_size());
        result.best_epoch = epoch;
        result.best_valid = e.sampled;
        report.best = true;
        bad = 0;
      } else if (o.patience > 0 && ++bad >= o.patience) {
        stop = true;
      }
    }
    result.epochs.push_back(report);
    if (o.on_epoch) o.on_epoch(report);
    if (stop) {
      result.stopped_early = true;
      break;
    }
  }
  if (!best_values.empty()) std::copy(best_values.begin(), best_values.end(), params.values());
  result.mean_epoch_seconds = result.epochs_run > 0 ? result.train_seconds / result.epochs_run : 0.0;
  return result;
}

template <typename Fn>
void for_workers(const TrainOptions& o, Fn&& fn) {
  if (o.sequential_workers)
    for (std::size_t w = 0; w < o.threads; ++w) fn(w);
  else
    nn::run_workers(o.threads, fn);
}

inline EvalOptions validation_options(const TrainOptions& o) {
  EvalOptions e;
  e.phase = data::Phase::validation;
  e.protocol = Protocol::sampled;
  e.seed = o.eval_seed;
  e.threads = o.threads;
  e.sequential_workers = o.sequential_workers;
  e.max_users = o.eval_users;
  return e;
}

// The dropout stream of one row of one step: unique per (seed, epoch, row of the epoch).
inline nn::Rng row_rng(std::uint64_t seed, std::uint64_t epoch, std::uint64_t row) {
  return nn::Rng(seed ^ 0xD80F0F7ull, (epoch << 40) + row);
}

}  // namespace detail

// Trains an initialized SASRec on split.train (one row per user, SasrecSampler). Returns the history;
// the model holds the best validation parameters afterwards.
inline TrainResult train_sasrec(SasrecModel& model, const data::LeaveOneOutSplit& split, const TrainOptions& o) {
  const SasrecConfig& c = model.config();
  CHORD_CHECK(split.num_items <= c.num_items, "train_sasrec: the data has items up to ", split.num_items,
              ", the model only 1..", c.num_items);
  const data::SasrecSampler sampler(split, c.max_len, o.seed);
  const std::size_t users = sampler.trainable_users().size();
  const std::size_t steps = (users + o.batch_size - 1) / o.batch_size;
  const std::size_t L = std::size_t(c.max_len);
  nn::Parameters& params = model.params();
  std::vector<nn::GradientBuffer> grads(o.threads);
  std::vector<SasrecWorkspace> ws(o.threads);
  std::vector<std::vector<std::int32_t>> rows(o.threads, std::vector<std::int32_t>(3 * L));
  for (std::size_t w = 0; w < o.threads; ++w) grads[w] = params.new_gradient_buffer(), ws[w].resize(c);
  std::vector<double> losses(o.threads);
  std::vector<std::int32_t> order;
  std::uint64_t order_epoch = 0;

  auto step = [&](std::uint64_t epoch, std::size_t s, double& loss, std::size_t& examples) {
    if (order.empty() || order_epoch != epoch) order = sampler.epoch_order(epoch), order_epoch = epoch;
    const std::size_t begin = s * o.batch_size, end = std::min(order.size(), begin + o.batch_size);
    std::size_t positions = 0;  // valid positions of the whole batch: the loss normalizer
    for (std::size_t i = begin; i < end; ++i)
      positions += std::min(split.train[std::size_t(order[i])].size() - 1, L);
    detail::for_workers(o, [&](std::size_t w) {
      grads[w].zero();
      losses[w] = 0.0;
      std::int32_t* in = rows[w].data();
      for (std::size_t i = begin + w; i < end; i += o.threads) {
        sampler.fill_row(order[i], epoch, in, in + L, in + 2 * L);
        if (model.load(in, in + L, in + 2 * L, ws[w]) == 0) continue;
        nn::Rng rng = detail::row_rng(o.seed, epoch, i);
        model.forward(params, ws[w], rng, true);
        losses[w] += model.loss(ws[w], positions).loss;
        model.backward(params, grads[w], ws[w], true);
      }
    });
    nn::reduce_gradients(grads, params.grads());
    loss = 0.0;
    for (double l : losses) loss += l;
    examples = end - begin;
  };
  auto eval = [&] {
    const SasrecInference engine(model, InferenceOptions{});
    return evaluate(engine, split, detail::validation_options(o));
  };
  return detail::run_training(params, o, steps, step, eval);
}

// Trains an initialized Caser on split.train (one row per window, CaserSampler with the model's L, T
// and negatives).
inline TrainResult train_caser(CaserModel& model, const data::LeaveOneOutSplit& split, const TrainOptions& o) {
  const CaserConfig& c = model.config();
  CHORD_CHECK(split.num_items <= c.num_items && split.num_users == c.num_users, "train_caser: the data has ",
              split.num_users, " users and items up to ", split.num_items, ", the model ", c.num_users, " users and 1..",
              c.num_items);
  const data::CaserSampler sampler(split, data::CaserOptions{c.L, c.T, c.negatives}, o.seed);
  const std::size_t windows = sampler.num_windows();
  const std::size_t steps = (windows + o.batch_size - 1) / o.batch_size;
  const std::size_t L = std::size_t(c.L), T = std::size_t(c.T), N = std::size_t(c.negatives);
  nn::Parameters& params = model.params();
  std::vector<nn::GradientBuffer> grads(o.threads);
  std::vector<CaserWorkspace> ws(o.threads);
  const std::size_t per_worker = (o.batch_size + o.threads - 1) / o.threads;
  for (std::size_t w = 0; w < o.threads; ++w) grads[w] = params.new_gradient_buffer(), ws[w].resize(c, per_worker);
  std::vector<double> losses(o.threads);
  std::vector<std::size_t> order;
  std::uint64_t order_epoch = 0;
  data::CaserBatch batch;

  auto step = [&](std::uint64_t epoch, std::size_t s, double& loss, std::size_t& examples) {
    if (order.empty() || order_epoch != epoch) order = sampler.epoch_order(epoch), order_epoch = epoch;
    const std::size_t begin = s * o.batch_size, end = std::min(order.size(), begin + o.batch_size);
    sampler.fill(std::vector<std::size_t>(order.begin() + std::ptrdiff_t(begin), order.begin() + std::ptrdiff_t(end)),
                 epoch, batch);
    std::size_t pos_count = 0, neg_count = 0;
    for (std::int32_t t : batch.targets) pos_count += t != 0;
    for (std::int32_t n : batch.negatives) neg_count += n != 0;
    detail::for_workers(o, [&](std::size_t w) {
      grads[w].zero();
      losses[w] = 0.0;
      std::vector<nn::Rng> rngs;
      std::size_t r = 0;
      for (std::size_t i = w; i < end - begin; i += o.threads, ++r) {
        model.load_row(r, batch.users[i], &batch.inputs[i * L], &batch.targets[i * T], &batch.negatives[i * T * N], ws[w]);
        rngs.push_back(detail::row_rng(o.seed, epoch, begin + i));
      }
      if (r == 0) return;
      model.forward(params, r, ws[w], rngs.data(), true);
      losses[w] = model.loss(ws[w], pos_count, neg_count).loss;
      model.backward(params, grads[w], ws[w], true);
    });
    nn::reduce_gradients(grads, params.grads());
    loss = 0.0;
    for (double l : losses) loss += l;
    examples = end - begin;
  };
  auto eval = [&] {
    const CaserInference engine(model, InferenceOptions{});
    return evaluate(engine, split, detail::validation_options(o));
  };
  return detail::run_training(params, o, steps, step, eval);
}

}  // namespace chord::models
