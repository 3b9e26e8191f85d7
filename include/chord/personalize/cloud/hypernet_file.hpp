// chord/personalize/cloud/hypernet_file.hpp: trained hypernetworks as a safetensors file.
//
// Every tensor of the registry (hypernetwork.hpp: "element.fc1.weight", ..., "relax.rate") under its own
// name and shape, F32, so PyTorch tooling can read them; io/safetensors.hpp adds the checksum and writes
// atomically. The metadata names what the nets belong to, and loading refuses anything else:
//   chord.kind               "hypernetworks"
//   chord.model_fingerprint  the backbone's fingerprint (hex), which covers its personalized layers
//   chord.profile_dim, chord.hidden, chord.rank   the HypernetConfig (decimal)
// Loading fills an existing Hypernetworks built with the expected layers and config: every registered
// tensor must be present with its shape, and the file may hold nothing else.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/limits.hpp"
#include "chord/io/bytes.hpp"
#include "chord/io/safetensors.hpp"
#include "chord/personalize/cloud/hypernetwork.hpp"

namespace chord::personalize {

inline SafetensorsFile hypernetworks_file(const Hypernetworks& nets, std::uint64_t fingerprint) {
  SafetensorsFile file;
  file.metadata["chord.kind"] = "hypernetworks";
  file.metadata["chord.model_fingerprint"] = bytes::hex64(fingerprint);
  file.metadata["chord.profile_dim"] = std::to_string(nets.config().profile_dim);
  file.metadata["chord.hidden"] = std::to_string(nets.config().hidden);
  file.metadata["chord.rank"] = std::to_string(nets.config().rank);
  const nn::Parameters& p = nets.params();
  for (std::size_t id = 0; id < p.count(); ++id) {
    const nn::ParamInfo& info = p.info(id);
    SafeTensor t;
    t.name = info.name;
    t.shape = info.shape;
    t.values.assign(p.value(id), p.value(id) + info.size);
    file.tensors.push_back(std::move(t));
  }
  return file;
}

// The HypernetConfig a decoded file declares, for a backbone with `profile_dim`: its kind, then
// chord.hidden and chord.rank as decimals in 1..InputLimits::max_hypernet_width, checked before the nets
// are built (allocated) from them.
inline HypernetConfig hypernet_config_from(const SafetensorsFile& file, std::size_t profile_dim, const std::string& source,
                                           const InputLimits& limits = default_limits()) {
  const auto kind = file.metadata.find("chord.kind");
  CHORD_CHECK(kind != file.metadata.end() && kind->second == "hypernetworks", "hypernetworks '", source,
              "': not a hypernetworks file (chord.kind is '", kind == file.metadata.end() ? "missing" : kind->second,
              "')");
  const auto size = [&](const char* key) {
    const auto found = file.metadata.find(key);
    CHORD_CHECK(found != file.metadata.end(), "hypernetworks '", source, "': no '", key, "' in the metadata");
    const std::string& text = found->second;
    std::uint64_t v = 0;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), v);
    CHORD_CHECK(result.ec == std::errc() && result.ptr == text.data() + text.size() && !text.empty() && v >= 1 &&
                    v <= std::uint64_t(limits.max_hypernet_width),
                "hypernetworks '", source, "': '", key, "' = '", text, "' is not a size in 1..",
                limits.max_hypernet_width, " (InputLimits::max_hypernet_width)");
    return std::size_t(v);
  };
  return HypernetConfig{profile_dim, size("chord.hidden"), size("chord.rank")};
}

// Fills nets from a decoded file; `source` names it in errors.
inline void read_hypernetworks(const SafetensorsFile& file, Hypernetworks& nets, std::uint64_t fingerprint,
                               const std::string& source) {
  const auto expect_meta = [&](const std::string& key, const std::string& value) {
    const auto found = file.metadata.find(key);
    CHORD_CHECK(found != file.metadata.end(), "hypernetworks '", source, "': no '", key, "' in the metadata");
    CHORD_CHECK(found->second == value, "hypernetworks '", source, "': ", key, " is '", found->second,
                "', expected '", value, "'");
  };
  expect_meta("chord.kind", "hypernetworks");
  expect_meta("chord.model_fingerprint", bytes::hex64(fingerprint));
  expect_meta("chord.profile_dim", std::to_string(nets.config().profile_dim));
  expect_meta("chord.hidden", std::to_string(nets.config().hidden));
  expect_meta("chord.rank", std::to_string(nets.config().rank));
  nn::Parameters& p = nets.params();
  CHORD_CHECK(file.tensors.size() == p.count(), "hypernetworks '", source, "': ", file.tensors.size(),
              " tensors, the hypernetworks have ", p.count());
  for (std::size_t id = 0; id < p.count(); ++id) {
    const nn::ParamInfo& info = p.info(id);
    const SafeTensor* t = file.find(info.name);
    CHORD_CHECK(t != nullptr, "hypernetworks '", source, "': tensor '", info.name, "' is missing");
    CHORD_CHECK(t->shape == info.shape, "hypernetworks '", source, "': tensor '", info.name,
                "' has another shape than the hypernetworks'");
  }
  for (std::size_t id = 0; id < p.count(); ++id) {  // only once everything checked: no half-loaded nets
    const SafeTensor* t = file.find(p.info(id).name);
    std::copy(t->values.begin(), t->values.end(), p.value(id));
  }
}

inline void save_hypernetworks(const std::string& path, const Hypernetworks& nets, std::uint64_t fingerprint) {
  save_safetensors(path, hypernetworks_file(nets, fingerprint));
}

inline void load_hypernetworks(const std::string& path, Hypernetworks& nets, std::uint64_t fingerprint) {
  read_hypernetworks(load_safetensors(path), nets, fingerprint, path);
}

}  // namespace chord::personalize
