// examples/chord/file_checks.hpp: the `chord` program's file loading in the user's terms: a file of the
// wrong kind is named for what it is (io/file_kind.hpp), and a strategy packet or profile message made
// for another model says which architecture each side is ("this model 'm.safetensors' is a Caser
// (L 5, d 64); this packet was made for a SASRec (2 blocks, d 64)") instead of two fingerprints in hex.
// The library's strict readers still check everything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/bytes.hpp"
#include "chord/io/envelope.hpp"
#include "chord/io/file_kind.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/model_file.hpp"
#include "chord/personalize/device/device_model.hpp"

namespace chord::cli {

// A model file given as `option` (e.g. "--model"), of architecture `expected` ("" = either).
inline models::LoadedModel load_model_file(const std::string& path, const std::string& expected = "",
                                           const char* option = "--model") {
  expect_file_kind(path, FileKind::model, option);
  return models::load_model(path, expected);
}

// What the channel counts of a model's personalized layers (personalize/device/device_model.hpp) say it is:
// "a SASRec (2 blocks, d 64)", "a Caser (L 5, d 64)"; "" when they fit neither.
inline std::string architecture_of_layer_table(const std::vector<std::uint32_t>& channels) {
  const std::size_t n = channels.size();
  // SASRec: per block q, k, v[, out] (d channels), ffn.fc1 (hidden), ffn.fc2 (d)
  std::string sasrec;
  for (std::size_t per_block : {std::size_t(6), std::size_t(5)}) {
    if (n == 0 || n % per_block != 0 || !sasrec.empty()) continue;
    const std::uint32_t d = channels[0];
    bool fits = true;
    for (std::size_t i = 0; i < n && fits; ++i)
      fits = i % per_block == per_block - 2 ? channels[i] == channels[per_block - 2] : channels[i] == d;
    if (fits)
      sasrec = "a SASRec (" + std::to_string(n / per_block) + (n / per_block == 1 ? " block" : " blocks") + ", d " +
               std::to_string(d) + ")";
  }
  // Caser: conv_v (nv), conv_h.h1..hL (nh each), fc1 (d)
  std::string caser;
  if (n >= 3) {
    bool fits = true;
    for (std::size_t i = 2; i + 1 < n && fits; ++i) fits = channels[i] == channels[1];
    if (fits) caser = "a Caser (L " + std::to_string(n - 2) + ", d " + std::to_string(channels[n - 1]) + ")";
  }
  // Both fit only for a Caser whose conv_v, conv_h and fc1 widths are all equal, far from its defaults.
  return sasrec.empty() ? caser : sasrec;
}

inline std::string describe_model(const models::LoadedModel& model) {
  std::vector<std::uint32_t> channels;
  for (const LayerShape& layer : personalize::personalized_layers(model)) channels.push_back(layer.channels);
  const std::string what = architecture_of_layer_table(channels);
  return what.empty() ? "a " + model.architecture : what;
}

// The bytes of a strategy packet given as `option`, for `model` (`model_path` names it). A packet whose
// model fingerprint is not `expect`'s is refused with both sides' architectures; every other check is
// decode_strategy's.
inline std::vector<std::uint8_t> read_packet_for(const std::string& path, const models::LoadedModel& model,
                                                 const std::string& model_path, const PacketExpectation& expect,
                                                 const char* option = "--strategy") {
  expect_file_kind(path, FileKind::strategy_packet, option);
  std::vector<std::uint8_t> bytes = read_file(path);
  if (bytes.size() < kStrategyHeaderBytes) return bytes;  // decode_strategy says what is wrong
  bytes::Reader in(bytes.data(), bytes.size(), "strategy packet", path);
  const EnvelopeHeader header = read_envelope_header(in, kStrategyFormat);
  if (header.fingerprint == expect.fingerprint) return bytes;
  const auto layers = std::uint32_t(in.read_le(4, "layer count"));
  std::string made_for;
  if (std::uint64_t(layers) * 4 <= in.left()) {
    std::vector<std::uint32_t> channels(layers);
    for (std::uint32_t& c : channels) c = std::uint32_t(in.read_le(4, "channel table"));
    made_for = architecture_of_layer_table(channels);
  }
  throw Error(std::string(option) + " '" + path + "': this packet was made for " +
              (made_for.empty() ? std::string("another model") : made_for) + ", and this model '" + model_path +
              "' is " + describe_model(model) + " (model fingerprints " + bytes::hex64(header.fingerprint) + " and " +
              bytes::hex64(expect.fingerprint) + "): run 'chord strategy' with this model");
}

// The bytes of a profile message given as `option`, for the model with fingerprint `fingerprint` whose
// profiles have `profile_dim` values. A profile of another model is refused naming this model and the
// profile's size; every other check is decode_profile's.
inline std::vector<std::uint8_t> read_profile_for(const std::string& path, const models::LoadedModel& model,
                                                  const std::string& model_path, std::uint64_t fingerprint,
                                                  std::size_t profile_dim, const char* option = "--profile") {
  expect_file_kind(path, FileKind::profile_message, option);
  std::vector<std::uint8_t> bytes = read_file(path);
  if (bytes.size() < kProfileHeaderBytes) return bytes;  // decode_profile says what is wrong
  bytes::Reader in(bytes.data(), bytes.size(), "profile message", path);
  const EnvelopeHeader header = read_envelope_header(in, kProfileFormat);
  if (header.fingerprint == fingerprint) return bytes;
  const auto values = std::uint32_t(in.read_le(4, "profile dimension"));
  throw Error(std::string(option) + " '" + path + "': this profile was made on the device by another model (" +
              std::to_string(values) + " profile values), and this model '" + model_path + "' is " +
              describe_model(model) + " (" + std::to_string(profile_dim) + " profile values; model fingerprints " +
              bytes::hex64(header.fingerprint) + " and " + bytes::hex64(fingerprint) +
              "): run 'chord profile' with this model");
}

}  // namespace chord::cli
