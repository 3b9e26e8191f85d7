// tests/test_file_kind.cpp: io/file_kind.hpp names every file the programs read from its first bytes,
// from the real writers' output (model and hypernetwork safetensors, CHRS, CHRP) and from text.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "chord/io/file_kind.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/io/safetensors.hpp"
#include "chord/io/strategy_packet.hpp"

namespace {

chord::FileKind kind_of(const std::vector<std::uint8_t>& bytes) {
  return chord::sniff_file_kind(bytes.data(), bytes.size(), bytes.size());
}
chord::FileKind kind_of(const std::string& text) {
  return kind_of(std::vector<std::uint8_t>(text.begin(), text.end()));
}

std::vector<std::uint8_t> safetensors_with(const std::map<std::string, std::string>& metadata) {
  chord::SafetensorsFile file;
  file.metadata = metadata;
  file.tensors.push_back({"w", {2, 2}, {1.0f, 2.0f, 3.0f, 4.0f}});
  return chord::encode_safetensors(file);
}

}  // namespace

TEST_CASE("file kinds from the writers' own bytes", "[io][file_kind]") {
  using chord::FileKind;
  CHECK(kind_of(safetensors_with({{"format", "chord-model"}, {"architecture", "sasrec"}})) == FileKind::model);
  CHECK(kind_of(safetensors_with({{"chord.kind", "hypernetworks"}})) == FileKind::hypernetworks);
  CHECK(kind_of(safetensors_with({{"producer", "torch"}})) == FileKind::safetensors);

  chord::StrategyPacket packet;
  packet.fingerprint = 7;
  packet.budget = 3.0f;
  packet.strategy.levels = {{0, 1, 2, 3, 1}};
  CHECK(kind_of(chord::encode_strategy(packet)) == FileKind::strategy_packet);
  chord::ProfileMessage profile;
  profile.fingerprint = 7;
  profile.budget = 3.0f;
  profile.profile = {0.5f, -0.25f};
  CHECK(kind_of(chord::encode_profile(profile)) == FileKind::profile_message);

  CHECK(kind_of(std::string("1 10\n1 11\n2 10\n")) == FileKind::text_dataset);
  CHECK(kind_of(std::string("1::1193::5::978300760\r\n")) == FileKind::text_dataset);
  CHECK(kind_of(std::string("  {\"kind\": \"chord-experiment\"}\n")) == FileKind::json_report);
  CHECK(kind_of(std::string("")) == FileKind::empty);
  CHECK(kind_of(std::string(" \n\t")) == FileKind::empty);
  CHECK(kind_of(std::vector<std::uint8_t>{0x7f, 'E', 'L', 'F', 0, 1, 2}) == FileKind::unknown);
}

TEST_CASE("a text file is not taken for safetensors, whatever its first 8 bytes say", "[io][file_kind]") {
  using chord::FileKind;
  // "1\t1\t5\t{" reads as a header length of about 10^17: longer than the file, so not safetensors.
  CHECK(kind_of(std::string("1\t1\t5\t87{ 874965758\n")) == FileKind::text_dataset);
  // A safetensors header whose length points past the end of the file (a truncated file) is not
  // named a model: its own reader reports the truncation.
  std::vector<std::uint8_t> model = safetensors_with({{"format", "chord-model"}});
  CHECK(chord::sniff_file_kind(model.data(), model.size(), 20) != FileKind::model);
  // Only the first bytes are needed: a prefix of a large file is enough.
  REQUIRE(model.size() > 100);
  CHECK(chord::sniff_file_kind(model.data(), 100, model.size()) == FileKind::model);
}

TEST_CASE("expect_file_kind says what the file is instead", "[io][file_kind]") {
  const std::string path = "test_file_kind_dataset.txt";
  const std::string text = "1 10\n1 11\n";
  chord::write_file_atomic(path, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  CHECK_NOTHROW(chord::expect_file_kind(path, chord::FileKind::text_dataset, "--data"));
  CHECK_THROWS_WITH(chord::expect_file_kind(path, chord::FileKind::model, "--model"),
                    "--model 'test_file_kind_dataset.txt': this is not a model file (it looks like a text dataset)");
  CHECK_THROWS_WITH(chord::expect_file_kind("no-such-file.bin", chord::FileKind::model, "--model"),
                    Catch::Matchers::StartsWith("cannot open 'no-such-file.bin'"));
  std::remove(path.c_str());
}
