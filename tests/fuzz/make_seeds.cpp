// tests/fuzz/make_seeds.cpp: writes the seed corpora of the file-reader fuzz targets (tiny valid files
// built by the library's own writers, with the mode byte of fuzz_common.hpp in front), so that the
// corpora follow the formats when they change:
//   build/<cfg>/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "chord/io/profile_message.hpp"
#include "chord/io/strategy_packet.hpp"
#include "chord/models/model_file.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/experiment/report_json.hpp"

namespace {

void write(const std::string& path, std::uint8_t mode, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.put(char(mode));
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size() + 1);
}

std::vector<std::uint8_t> model_bytes(const chord::nn::Parameters& params, const chord::models::Metadata& metadata) {
  return chord::encode_safetensors(chord::models::detail::parameters_file(params, metadata), "seed");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds <corpus dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  namespace m = chord::models;
  namespace p = chord::personalize;

  m::SasrecConfig sasrec;
  sasrec.num_items = 6, sasrec.d = 4, sasrec.blocks = 1, sasrec.heads = 2, sasrec.max_len = 3, sasrec.hidden = 4;
  m::SasrecModel s(sasrec);
  s.init(1);
  m::Metadata bound = m::to_metadata(sasrec);  // with a data binding (models/data_binding.hpp): 6 items
  bound["data.fingerprint"] = "0x0123456789abcdef", bound["data.item_ids"] = "1-3,7,9-10", bound["data.user_ids"] = "2,4-5";
  write(dir + "/model_file/sasrec.bin", 1, model_bytes(s.params(), bound));
  m::CaserConfig caser;
  caser.num_items = 5, caser.num_users = 3, caser.d = 4, caser.L = 2, caser.T = 1, caser.nh = 2, caser.nv = 1;
  m::CaserModel c(caser);
  c.init(1);
  write(dir + "/model_file/caser.bin", 0, model_bytes(c.params(), m::to_metadata(caser)));

  p::Hypernetworks nets({{"a", 4, 3}, {"b", 2, 5}}, p::HypernetConfig{3, 2, 1});
  write(dir + "/hypernet_file/nets.bin", 1, chord::encode_safetensors(p::hypernetworks_file(nets, 0x1234), "seed"));

  chord::StrategyPacket packet;
  packet.fingerprint = 0x1234, packet.budget = 4.0f;
  packet.strategy.levels = {{0, 1, 2, 3, 1}, std::vector<std::uint8_t>(16, 2), {3, 0, 1}};
  write(dir + "/strategy_packet/packet.bin", 1, chord::encode_strategy(packet));

  chord::ProfileMessage profile;
  profile.fingerprint = 0x1234, profile.budget = 3.0f, profile.profile = {0.5f, -1, 2, 0, 1e3f, -1e-3f, 7, 8};
  write(dir + "/profile_message/profile.bin", 1, chord::encode_profile(profile));

  p::ExperimentReport report;
  report.architecture = "sasrec", report.fingerprint = "0000000000001234", report.hypernetworks = "given";
  report.budgets = {2, 4};
  p::MethodResult r;
  r.method = "chord", r.budget = 2, r.available = true, r.users = 3;
  report.results = {r};
  const std::string json = p::experiment_json_text(report);
  std::ofstream(dir + "/experiment_json/report.json") << json;
  std::printf("%s/experiment_json/report.json: %zu bytes\n", dir.c_str(), json.size());
  return 0;
}
