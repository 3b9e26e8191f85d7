// chord/models/training_loss.hpp: the training losses of SasrecModel and CaserModel.
//
// The model classes (sasrec.hpp, caser.hpp) declare their loss() but define it here, so that the
// device, which includes the classes through model files and inference graphs, includes none of the
// training-only code (nn/loss.hpp; see personalize/device/device_model.hpp). Anything that calls loss() (the
// trainers, the tests, the CHORD backbone adapters) includes this header.
#pragma once

#include <cstddef>

#include "chord/models/caser.hpp"
#include "chord/models/sasrec.hpp"
#include "chord/nn/loss.hpp"

namespace chord::models {

// Loss of the loaded, forwarded sequence; writes ws.dpos / ws.dneg. pos_count: valid positions of the
// whole batch (the normalizer shared by every worker, see nn/loss.hpp).
inline nn::BceLoss SasrecModel::loss(SasrecWorkspace& ws, std::size_t pos_count) const {
  const std::uint8_t* valid = config_.runs_padding() ? ws.valid.data() : nullptr;  // else every row is real
  return nn::bce_pos_neg_loss(ws.pos_logits.data(), valid, ws.n, ws.neg_logits.data(), valid, ws.n,
                              ws.dpos.data(), ws.dneg.data(), pos_count, pos_count);
}

// BCE of the forwarded rows; fills ws.dlogits. Counts: the whole batch's valid targets / negatives.
inline nn::BceLoss CaserModel::loss(CaserWorkspace& ws, std::size_t pos_count, std::size_t neg_count) const {
  const std::size_t per = items_per_row(), N = std::size_t(config_.negatives), T = std::size_t(config_.T);
  const std::size_t rows = ws.rows;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < T; ++j) {
      const std::size_t at = r * per + j * (1 + N);
      ws.pos[r * T + j] = ws.logits[at];
      ws.pos_mask[r * T + j] = ws.mask[at];
      for (std::size_t k = 0; k < N; ++k) {
        ws.neg[(r * T + j) * N + k] = ws.logits[at + 1 + k];
        ws.neg_mask[(r * T + j) * N + k] = ws.mask[at + 1 + k];
      }
    }
  const nn::BceLoss result =
      nn::bce_pos_neg_loss(ws.pos.data(), ws.pos_mask.data(), rows * T, ws.neg.data(), ws.neg_mask.data(),
                           rows * T * N, ws.dpos.data(), ws.dneg.data(), pos_count, neg_count);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < T; ++j) {
      const std::size_t at = r * per + j * (1 + N);
      ws.dlogits[at] = ws.dpos[r * T + j];
      for (std::size_t k = 0; k < N; ++k) ws.dlogits[at + 1 + k] = ws.dneg[(r * T + j) * N + k];
    }
  return result;
}

}  // namespace chord::models
