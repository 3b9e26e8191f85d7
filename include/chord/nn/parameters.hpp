// chord/nn/parameters.hpp: the registry of trainable tensors, and gradient buffers laid out like it.
//
// Every parameter (name, shape) lives in ONE flat fp32 array, each tensor starting on a 64-byte
// boundary; a GradientBuffer is a second flat array with the same offsets. Why flat:
//   - the optimizer, the gradient reduction across worker threads and a safetensors writer are each
//     one loop over a contiguous range (per tensor where they need the name or shape);
//   - a worker's gradients are just another GradientBuffer, so per-thread gradients cost one
//     allocation and reduce with a vectorizable add (see batch_parallel.hpp).
// Layers hold ParamIds (indices), never pointers: adding a tensor may move the storage.
// Names follow PyTorch's state_dict convention ("blocks.0.attn.q.weight") so saved files load there.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chord/core/aligned.hpp"
#include "chord/core/error.hpp"

namespace chord::nn {

using ParamId = std::size_t;

struct ParamInfo {
  std::string name;
  std::vector<std::size_t> shape;
  std::size_t offset = 0;     // first float of the tensor in the flat value / gradient arrays
  std::size_t size = 0;       // number of floats: the product of shape
  bool weight_decay = true;   // whether Adam's L2 / decoupled decay applies (off for biases, norms)
};

// Alignment of every tensor in the flat arrays, in floats (64 bytes: one cache line).
inline constexpr std::size_t kParamAlignFloats = kCacheLine / sizeof(float);

// One float per parameter element, at the registry's offsets (the gaps between tensors stay zero).
class GradientBuffer {
 public:
  GradientBuffer() = default;
  GradientBuffer(std::vector<std::size_t> offsets, std::size_t total)
      : offsets_(std::move(offsets)), data_(total, 0.0f) {}

  float* of(ParamId id) { return data_.data() + offsets_.at(id); }
  const float* of(ParamId id) const { return data_.data() + offsets_.at(id); }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::size_t size() const { return data_.size(); }        // floats, gaps included
  std::size_t tensors() const { return offsets_.size(); }
  void zero() { std::fill(data_.begin(), data_.end(), 0.0f); }
  // Same registry layout (tensor count and total size): the precondition of adding two buffers.
  bool same_layout(const GradientBuffer& other) const {
    return data_.size() == other.data_.size() && offsets_ == other.offsets_;
  }

 private:
  std::vector<std::size_t> offsets_;
  AlignedVector<float> data_;
};

class Parameters {
 public:
  // Registers a zero-filled tensor; names are unique. Returns its id (registration order).
  ParamId add(const std::string& name, std::vector<std::size_t> shape, bool weight_decay = true) {
    CHORD_CHECK(!name.empty(), "Parameters::add: empty parameter name");
    CHORD_CHECK(!find(name).has_value(), "Parameters::add: parameter '", name, "' is already registered");
    CHORD_CHECK(!shape.empty(), "Parameters::add: parameter '", name, "' has no dimensions");
    std::size_t size = 1;
    for (std::size_t extent : shape) {
      CHORD_CHECK(extent > 0, "Parameters::add: parameter '", name, "' has a zero extent");
      size *= extent;
    }
    ParamInfo info{name, std::move(shape), values_.size(), size, weight_decay};
    values_.resize(round_up(info.offset + size, kParamAlignFloats), 0.0f);
    infos_.push_back(std::move(info));
    index_.emplace(name, infos_.size() - 1);
    // The gradient buffer is sized at first use (gradients()): rebuilding it here made registering n
    // tensors cost O(n * total size), which a crafted model file with blocks = 1e8 turned into minutes.
    return infos_.size() - 1;
  }

  std::size_t count() const { return infos_.size(); }
  const ParamInfo& info(ParamId id) const { return infos_.at(id); }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  void set_weight_decay(ParamId id, bool decay) { infos_.at(id).weight_decay = decay; }

  float* value(ParamId id) { return values_.data() + infos_.at(id).offset; }
  const float* value(ParamId id) const { return values_.data() + infos_.at(id).offset; }
  float* grad(ParamId id) { return gradients().of(id); }
  const float* grad(ParamId id) const { return gradients().of(id); }

  // The flat arrays (floats, alignment gaps included, gaps always zero).
  float* values() { return values_.data(); }
  const float* values() const { return values_.data(); }
  std::size_t flat_size() const { return values_.size(); }
  // Number of trainable scalars (gaps excluded).
  std::size_t element_count() const {
    std::size_t n = 0;
    for (const ParamInfo& info : infos_) n += info.size;
    return n;
  }

  // The master gradients: what the optimizer reads. Workers' buffers are reduced into it.
  GradientBuffer& grads() { return gradients(); }
  const GradientBuffer& grads() const { return gradients(); }
  void zero_grad() { gradients().zero(); }

  // A fresh zeroed gradient buffer with this registry's layout (one per worker thread).
  GradientBuffer new_gradient_buffer() const {
    std::vector<std::size_t> offsets;
    offsets.reserve(infos_.size());
    for (const ParamInfo& info : infos_) offsets.push_back(info.offset);
    return GradientBuffer(std::move(offsets), values_.size());
  }

  std::optional<ParamId> find(const std::string& name) const {
    const auto found = index_.find(name);
    if (found == index_.end()) return std::nullopt;
    return found->second;
  }
  ParamId id(const std::string& name) const {
    const auto found = find(name);
    CHORD_CHECK(found.has_value(), "Parameters: no parameter named '", name, "'");
    return *found;
  }

 private:
  // The master gradients, (re)built zeroed when the registry grew since the last use: registration
  // happens before training, so gradients start at zero.
  GradientBuffer& gradients() const {
    if (grads_.tensors() != infos_.size() || grads_.size() != values_.size()) grads_ = new_gradient_buffer();
    return grads_;
  }

  std::vector<ParamInfo> infos_;
  std::unordered_map<std::string, ParamId> index_;
  AlignedVector<float> values_;
  mutable GradientBuffer grads_;
};

}  // namespace chord::nn
