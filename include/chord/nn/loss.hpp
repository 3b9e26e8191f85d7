// chord/nn/loss.hpp: binary cross-entropy on logits of true next items and sampled negatives.
//
// SASRec and Caser both train with   loss = mean_valid -log sigmoid(pos) + mean_valid -log(1 - sigmoid(neg))
// (two means, each over its own valid entries: with one negative per position, as in SASRec, that is
// the reference's bce(pos, 1) + bce(neg, 0) over the non-padding positions).
// Stability: -log sigmoid(x) = softplus(-x) and -log(1 - sigmoid(x)) = softplus(x), with
// softplus(x) = max(x, 0) + log1p(exp(-|x|)), finite for every finite x (no log(0), no overflow).
// Batch-parallel training: each worker sees part of the batch but must divide by the WHOLE batch's
// counts, so the summed worker gradients equal the full-batch gradient; pass those counts in.
#pragma once
#define CHORD_TRAINING_CODE 1  // training-only code: tests/device_only.cpp refuses to compile with it

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace chord::nn {

inline float softplus(float x) { return std::fmax(x, 0.0f) + std::log1p(std::exp(-std::fabs(x))); }

inline float sigmoid(float x) {
  const float e = std::exp(-std::fabs(x));  // in (0, 1]: never overflows
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

// mask: [n] (nonzero = valid) or null (all valid).
inline std::size_t count_valid(const std::uint8_t* mask, std::size_t n) {
  if (mask == nullptr) return n;
  std::size_t c = 0;
  for (std::size_t i = 0; i < n; ++i) c += mask[i] != 0;
  return c;
}

struct BceLoss {
  double loss = 0.0;             // this call's share of the loss (the whole loss with local counts)
  std::size_t positives = 0;     // valid positive logits seen by this call
  std::size_t negatives = 0;     // valid negative logits seen by this call
};

// pos: [n_pos] logits of true items, neg: [n_neg] logits of negatives, masks of the same lengths or null.
//   loss  = sum_valid softplus(-pos) / pos_count + sum_valid softplus(neg) / neg_count
//   dpos: [n_pos] = (sigmoid(pos) - 1) / pos_count,  dneg: [n_neg] = sigmoid(neg) / neg_count
// Masked entries get gradient 0. The gradients are WRITTEN (the loss starts the backward pass).
// pos_count / neg_count: the normalizers; 0 = this call's own valid counts (single-threaded use).
inline BceLoss bce_pos_neg_loss(const float* pos, const std::uint8_t* pos_mask, std::size_t n_pos, const float* neg,
                                const std::uint8_t* neg_mask, std::size_t n_neg, float* dpos, float* dneg,
                                std::size_t pos_count = 0, std::size_t neg_count = 0) {
  BceLoss result;
  result.positives = count_valid(pos_mask, n_pos);
  result.negatives = count_valid(neg_mask, n_neg);
  const double pos_norm = pos_count ? double(pos_count) : double(result.positives);
  const double neg_norm = neg_count ? double(neg_count) : double(result.negatives);
  const float pos_scale = pos_norm > 0.0 ? float(1.0 / pos_norm) : 0.0f;
  const float neg_scale = neg_norm > 0.0 ? float(1.0 / neg_norm) : 0.0f;
  double pos_sum = 0.0, neg_sum = 0.0;
  for (std::size_t i = 0; i < n_pos; ++i) {
    const bool valid = pos_mask == nullptr || pos_mask[i] != 0;
    if (valid) pos_sum += softplus(-pos[i]);
    dpos[i] = valid ? -sigmoid(-pos[i]) * pos_scale : 0.0f;  // = sigmoid(pos) - 1, without cancellation
  }
  for (std::size_t i = 0; i < n_neg; ++i) {
    const bool valid = neg_mask == nullptr || neg_mask[i] != 0;
    if (valid) neg_sum += softplus(neg[i]);
    dneg[i] = valid ? sigmoid(neg[i]) * neg_scale : 0.0f;
  }
  result.loss = (pos_norm > 0.0 ? pos_sum / pos_norm : 0.0) + (neg_norm > 0.0 ? neg_sum / neg_norm : 0.0);
  return result;
}

}  // namespace chord::nn
