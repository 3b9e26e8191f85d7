// tests/crafted_inputs.cpp: writes the crafted, valid-looking inputs of tests/cli_inputs.sh into a
// directory: files whose checksums are right but whose contents ask for too much, hold NaN, or belong
// to other data (see that script for what each must produce).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

#include "chord/core/checksum.hpp"
#include "chord/data/reader.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/models/data_binding.hpp"
#include "chord/models/model_file.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/device/device_model.hpp"

namespace {

namespace m = chord::models;

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void write_model(const std::string& path, const chord::nn::Parameters& params, const m::Metadata& metadata) {
  chord::write_file_atomic(path, chord::encode_safetensors(m::detail::parameters_file(params, metadata), path));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: crafted_inputs <dir>\n");
    return 2;
  }
  const std::string dir = std::string(argv[1]) + "/";
  // two datasets of 150 items (enough for 100 sampled negatives); b differs from a in one event
  std::string a_text, b_text, sparse_text;
  for (int u = 1; u <= 30; ++u) {
    std::string line = std::to_string(u * 10);  // sparse user ids 10, 20, ...
    for (int t = 0; t < 5; ++t) line += " " + std::to_string((u * 5 + t) % 150 + 1);
    a_text += line + "\n";
    b_text += (u == 30 ? std::to_string(u * 10) + " 5 4 3 2 1" : line) + "\n";
    // 120 distinct items, one of them 30,000,000
    sparse_text += std::to_string(u) + " " + std::to_string(u * 4 - 3) + " " + std::to_string(u * 4 - 2) + " " +
                   std::to_string(u * 4 - 1) + " " + std::to_string(u == 30 ? 30000000 : u * 4) + "\n";
  }
  write_text(dir + "a.txt", a_text);
  write_text(dir + "b.txt", b_text);
  write_text(dir + "sparse.txt", sparse_text);
  const chord::data::Dataset a = chord::data::parse_dataset(a_text, dir + "a.txt");

  m::SasrecConfig c;
  c.num_items = a.num_items, c.d = 4, c.blocks = 1, c.heads = 1, c.max_len = 5, c.hidden = 4;
  m::SasrecModel model(c);
  model.init(3);
  m::Metadata bound = m::to_metadata(c);
  for (const auto& [k, v] : m::binding_metadata(a)) bound[k] = v;
  bound["data.source"] = dir + "a.txt";
  write_model(dir + "bound.safetensors", model.params(), bound);
  write_model(dir + "unknown.safetensors", model.params(), m::to_metadata(c));  // as an old or imported file

  const auto crafted = [&](const std::string& name, const std::string& key, const std::string& value) {
    m::Metadata meta = m::to_metadata(c);
    meta[key] = value;
    write_model(dir + name, model.params(), meta);
  };
  crafted("items.safetensors", "sasrec.num_items", "2147483646");
  crafted("blocks.safetensors", "sasrec.blocks", "100000000");
  crafted("space.safetensors", "sasrec.d", " 4");
  {
    m::Metadata meta = m::to_metadata(c);
    meta["data.source"] = "synthetic", meta["data.synthetic_seed"] = "abc";
    write_model(dir + "seed.safetensors", model.params(), meta);
  }
  {
    m::CaserConfig caser;
    caser.num_items = 3, caser.num_users = 2, caser.d = 46341, caser.nv = 46341;
    m::Metadata meta = m::to_metadata(caser);
    write_model(dir + "caser_overflow.safetensors", model.params(), meta);
  }
  {
    chord::SafetensorsFile file = m::detail::parameters_file(model.params(), m::to_metadata(c));
    for (chord::SafeTensor& t : file.tensors)
      if (t.name == "blocks.0.attn.q.weight") t.values[3] = std::numeric_limits<float>::quiet_NaN();
    chord::write_file_atomic(dir + "nan.safetensors", chord::encode_safetensors(file, "nan"));
  }
  // hypernetworks whose metadata asks for a hidden width of 10^8
  {
    m::LoadedModel loaded;
    loaded.architecture = "sasrec", loaded.sasrec.emplace(model);
    chord::personalize::Hypernetworks nets(chord::personalize::personalized_layers(loaded),
                                           chord::personalize::HypernetConfig{4, 2, 1});
    const std::uint64_t fingerprint = chord::personalize::device_fingerprint(loaded);
    chord::personalize::save_hypernetworks(dir + "hyper.safetensors", nets, fingerprint);
    chord::SafetensorsFile file = chord::personalize::hypernetworks_file(nets, fingerprint);
    file.metadata["chord.hidden"] = "100000000";
    chord::write_file_atomic(dir + "hyper_huge.safetensors", chord::encode_safetensors(file, "hyper"));
    // a profile message of 4 values, one 3.4e38 (finite, its square is not), CRC recomputed
    chord::ProfileMessage p;
    p.fingerprint = fingerprint, p.budget = 2.0f, p.profile = {1, 2, 3, 4};
    std::vector<std::uint8_t> bytes = chord::encode_profile(p);
    const float huge = 3.4e38f;
    std::uint32_t bits = 0;
    std::memcpy(&bits, &huge, 4);
    for (int i = 0; i < 4; ++i) bytes[28 + 8 + std::size_t(i)] = std::uint8_t(bits >> (8 * i));
    const std::uint32_t crc = chord::crc32(bytes.data(), bytes.size() - 4);
    for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
    chord::write_file_atomic(dir + "profile_huge.chrp", bytes);
  }
  return 0;
}
