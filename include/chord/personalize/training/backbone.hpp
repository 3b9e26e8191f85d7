// chord/personalize/training/backbone.hpp: what a recommender must offer to be personalized by CHORD.
//
// CHORD is backbone-independent: the hypernetworks see a backbone only through this interface, so
// SASRec, Caser or the test's small MLP plug in the same way. It is an abstract class, not a template
// concept, on purpose: the trainer and the cloud service are then ordinary non-template code, and one
// virtual call per user and step costs nothing next to the backbone's forward and backward pass.
//
// The contract, for an adapter author (e.g. SASRec: personalize the attention and FFN projections):
//   layers()      the personalized weight matrices, [channels, fan_in] row-major, one output channel per
//                 row (a linear layer's weight as PyTorch stores it, a convolution's filters, an embedding
//                 table's rows). The backbone is FROZEN: the pointers stay valid and the values fixed for
//                 the adapter's lifetime (the cloud precomputes their quantizations once).
//   profile(u)    the user's profile vector [profile_dim()], computed by the frozen fp32 backbone from the
//                 user's own history (SASRec: the last position's final hidden state), exactly what the
//                 device computes and uploads (profile_message.hpp).
//   loss_and_weight_grads(request, w_eff, dw_eff, ws)
//                 the user's recommendation loss with every personalized matrix replaced by w_eff[l]
//                 (everything else as trained), averaged over the user's examples (so users weigh the
//                 same), and, when dw_eff is not null, ADDS dL/dW_eff into dw_eff[l] (the caller zeroes;
//                 the nn layers' convention). Run the deterministic inference-mode graph (no dropout):
//                 the loss must be a function of w_eff alone, or the gradient checks and the comparison of
//                 strategies mean nothing. Negative sampling, if any, is seeded by request.seed.
//                 Thread safety: called concurrently from several threads, each with its own workspace
//                 (make_workspace()); shared state must be read-only.
//   architecture() a short name ("sasrec", "caser") hashed into the model fingerprint
//                 (core/strategy.hpp model_fingerprint) with the layer shapes: the device computes the
//                 same fingerprint from the same names and shapes, so strategies and profiles of another
//                 model are refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chord/io/strategy_packet.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"

namespace chord::personalize {

// Which of a user's interactions a loss is computed on: training for the hypernetworks, validation to
// compare strategies on data the hypernetworks never saw.
enum class UserSplit { train, validation };

struct UserLossRequest {
  std::size_t user = 0;
  UserSplit split = UserSplit::train;
  std::uint64_t seed = 0;  // for the backbone's negative sampling, if it samples
};

class PersonalizableBackbone {
 public:
  // Per-thread scratch (activations, saved forward values); the default holds nothing.
  struct Workspace {
    virtual ~Workspace() = default;
  };

  virtual ~PersonalizableBackbone() = default;

  virtual std::string architecture() const = 0;
  virtual std::vector<PersonalizedLayer> layers() const = 0;
  virtual std::size_t profile_dim() const = 0;
  virtual std::size_t user_count() const = 0;  // users are 0 .. user_count() - 1
  virtual std::vector<float> profile(std::size_t user) const = 0;  // [profile_dim()]
  virtual std::unique_ptr<Workspace> make_workspace() const { return std::make_unique<Workspace>(); }

  // w_eff: one pointer per personalized layer, [channels, fan_in]; dw_eff: null, or one pointer per layer
  // (+= dL/dW_eff). Returns the user's mean loss over the requested split.
  virtual double loss_and_weight_grads(const UserLossRequest& request, const std::vector<const float*>& w_eff,
                                       const std::vector<float*>* dw_eff, Workspace& ws) const = 0;
};

// The fingerprint a device running this backbone computes (core/strategy.hpp model_fingerprint).
inline std::uint64_t backbone_fingerprint(const PersonalizableBackbone& backbone) {
  return model_fingerprint(layer_shapes(backbone.layers()), backbone.architecture());
}

}  // namespace chord::personalize
