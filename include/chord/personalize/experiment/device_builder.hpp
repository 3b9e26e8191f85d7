// chord/personalize/experiment/device_builder.hpp: what the experiment's simulated device builds for a set of widths.
//
// The experiment (experiment.hpp) times each device's adaptation and counts the bytes of what it
// would run. A DeviceBuilder is that device: build(bits) makes the personalized model for the widths
// and returns the bytes of the whole model (bits empty: the fp32 model). One builder per worker thread,
// so a builder may keep state (an installed model whose personalized layers it re-packs).
// The generic builder, pack_personalized_layers, takes the device's own path (device/adaptation.hpp):
// the frozen channels' codes cached once, each build a selection and a pack.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "chord/core/mixed_matrix.hpp"
#include "chord/personalize/cloud/quantization_cache.hpp"
#include "chord/personalize/device/adaptation.hpp"

namespace chord::personalize {

class DeviceBuilder {
 public:
  virtual ~DeviceBuilder() = default;
  virtual std::size_t build(const Widths& bits) = 0;
};
// Makes a worker's builder; called once per worker thread, concurrently.
using MakeDeviceBuilder = std::function<std::unique_ptr<DeviceBuilder>()>;

// The personalized layers' cached codes selected and packed (MixedMatrix: packed weights + scales),
// plus the rest of the model, which the strategy does not touch: other_fp32_bytes for the fp32 model,
// other_device_bytes for the quantized one (e.g. embeddings at the device's width).
class PackPersonalizedLayers : public DeviceBuilder {
 public:
  PackPersonalizedLayers(std::shared_ptr<const FrozenChannelCodes> codes, std::size_t other_fp32_bytes,
                         std::size_t other_device_bytes)
      : codes_(std::move(codes)), other_fp32_(other_fp32_bytes), other_device_(other_device_bytes) {}

  std::size_t build(const Widths& bits) override {
    std::size_t bytes = 0;
    if (bits.empty()) {
      for (const LayerShape& l : codes_->layers()) bytes += std::size_t(l.channels) * l.fan_in * sizeof(float);
      return bytes + other_fp32_;
    }
    const std::vector<QuantizedChannels> channels = codes_->select(bits);
    packed_.resize(channels.size());
    for (std::size_t l = 0; l < channels.size(); ++l) {
      packed_[l] = MixedMatrix(channels[l]);
      bytes += packed_[l].bytes();
    }
    return bytes + other_device_;
  }

 private:
  std::shared_ptr<const FrozenChannelCodes> codes_;
  std::size_t other_fp32_, other_device_;
  std::vector<MixedMatrix> packed_;  // what the device would run (kept, as a device keeps it)
};

// The frozen layers' codes are computed here, once, and shared by every worker's builder.
inline MakeDeviceBuilder pack_personalized_layers(const std::vector<PersonalizedLayer>& layers,
                                            std::size_t other_fp32_bytes = 0, std::size_t other_device_bytes = 0) {
  auto codes = std::make_shared<const FrozenChannelCodes>(layer_shapes(layers), original_weights(layers));
  return [codes, other_fp32_bytes, other_device_bytes]() -> std::unique_ptr<DeviceBuilder> {
    return std::make_unique<PackPersonalizedLayers>(codes, other_fp32_bytes, other_device_bytes);
  };
}

}  // namespace chord::personalize
