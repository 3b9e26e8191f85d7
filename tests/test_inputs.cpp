// Bounded, checked inputs (label io): the limits of core/limits.hpp before allocation, non-finite
// values, sparse ids, id maps and data fingerprints, bounded reads, atomic writes that refuse special
// files and clean up after themselves, and numbers that ignore the process's locale.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/data/reader.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/profile_message.hpp"
#include "chord/io/safetensors.hpp"
#include "chord/models/data_binding.hpp"
#include "chord/models/model_file.hpp"
#include "chord/personalize/cloud/hypernet_file.hpp"
#include "chord/personalize/experiment/report_json.hpp"

using namespace chord;
using Catch::Contains;

namespace {

// A fresh directory under the build tree's temp, removed (with its files) at the end of the test.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    char templ[] = "/tmp/chord-test-inputs.XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    path = templ;
  }
  ~ScratchDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

models::SasrecConfig tiny_sasrec() {
  models::SasrecConfig c;
  c.num_items = 6, c.d = 4, c.blocks = 1, c.heads = 2, c.max_len = 3, c.hidden = 4;
  return c;
}

// The tiny model's file with metadata[key] = value (checksum recomputed: a crafted, valid-looking file).
std::vector<std::uint8_t> crafted_model(const std::string& key, const std::string& value) {
  models::SasrecModel model(tiny_sasrec());
  model.init(1);
  SafetensorsFile file = models::detail::parameters_file(model.params(), models::to_metadata(model.config()));
  file.metadata[key] = value;
  return encode_safetensors(file, "crafted");
}

std::string decode_error(const std::vector<std::uint8_t>& bytes) {
  try {
    models::decode_model(bytes.data(), bytes.size(), "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("inputs: model metadata past the limits is refused before the model is built", "[io]") {
  const std::string items = decode_error(crafted_model("sasrec.num_items", "2147483646"));
  CHECK_THAT(items, Contains("m.safetensors") && Contains("sasrec.num_items") && Contains("InputLimits::max_items"));
  const std::string blocks = decode_error(crafted_model("sasrec.blocks", "100000000"));
  CHECK_THAT(blocks, Contains("sasrec.blocks") && Contains("InputLimits::max_blocks"));
  // within every per-field limit, but far more parameters than the file holds
  const std::string more = decode_error(crafted_model("sasrec.blocks", "200"));
  CHECK_THAT(more, Contains("m.safetensors") && Contains("the file holds"));
  CHECK_THAT(decode_error(crafted_model("sasrec.d", " 16")), Contains("'sasrec.d' = ' 16' is not an integer"));
  CHECK_THAT(decode_error(crafted_model("sasrec.d", "+4")), Contains("is not an integer"));
  CHECK_THAT(decode_error(crafted_model("sasrec.heads", "8")), Contains("sasrec.heads") && Contains("at most d"));
  CHECK_THAT(decode_error(crafted_model("sasrec.dropout", "0,5")), Contains("'sasrec.dropout' = '0,5'"));
  // item_emb's shape is checked against the metadata before anything is allocated
  CHECK_THAT(decode_error(crafted_model("sasrec.num_items", "7")), Contains("'item_emb.weight' has another shape"));
}

TEST_CASE("inputs: Caser's convolution features are computed without int32 overflow", "[io]") {
  models::CaserConfig c;
  c.num_items = 3, c.num_users = 2, c.d = 46341, c.nv = 46341;
  CHECK_THROWS_WITH(c.validate(), Contains("overflow an int32"));
  models::Metadata m = models::to_metadata(c);
  CHECK_THROWS_WITH(models::caser_config_from(m, "model 'c.safetensors'"),
                    Contains("c.safetensors") && Contains("caser.d") && Contains("InputLimits::max_width"));
  InputLimits generous;
  generous.max_width = 1 << 20, generous.max_parameters = std::numeric_limits<std::int64_t>::max();
  CHECK_THROWS_WITH(models::caser_config_from(m, "model 'c.safetensors'", generous), Contains("overflow an int32"));
}

TEST_CASE("inputs: non-finite and huge tensor values are refused, naming the tensor and index", "[io]") {
  models::SasrecModel model(tiny_sasrec());
  model.init(1);
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 3.4e38f}) {
    SafetensorsFile file = models::detail::parameters_file(model.params(), models::to_metadata(model.config()));
    for (SafeTensor& t : file.tensors)
      if (t.name == "blocks.0.attn.q.weight") t.values[5] = bad;
    const std::vector<std::uint8_t> bytes = encode_safetensors(file, "nan");
    CHECK_THROWS_WITH(models::decode_model(bytes.data(), bytes.size(), "nan.safetensors"),
                      Contains("nan.safetensors") && Contains("'blocks.0.attn.q.weight': value 5"));
  }
}

TEST_CASE("inputs: hypernetwork widths are bounded before the nets are built", "[io]") {
  personalize::Hypernetworks nets({{"a", 4, 3}}, personalize::HypernetConfig{3, 2, 1});
  SafetensorsFile file = personalize::hypernetworks_file(nets, 7);
  CHECK(personalize::hypernet_config_from(file, 3, "h.safetensors").hidden == 2);
  file.metadata["chord.hidden"] = "100000000";
  CHECK_THROWS_WITH(personalize::hypernet_config_from(file, 3, "h.safetensors"),
                    Contains("h.safetensors") && Contains("chord.hidden") && Contains("max_hypernet_width"));
  file.metadata["chord.hidden"] = "2", file.metadata["chord.rank"] = "-1";
  CHECK_THROWS_WITH(personalize::hypernet_config_from(file, 3, "h.safetensors"), Contains("chord.rank"));
}

TEST_CASE("inputs: a profile value whose square overflows is refused", "[io]") {
  chord::ProfileMessage m;
  m.fingerprint = 1, m.budget = 2.0f, m.profile = {1.0f, 2.0f};
  std::vector<std::uint8_t> bytes = chord::encode_profile(m);
  const float huge = 3.4e38f;
  std::uint32_t bits = 0;
  std::memcpy(&bits, &huge, 4);
  for (int i = 0; i < 4; ++i) bytes[28 + 4 + std::size_t(i)] = std::uint8_t(bits >> (8 * i));
  const std::uint32_t crc = crc32(bytes.data(), bytes.size() - 4);
  for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + std::size_t(i)] = std::uint8_t(crc >> (8 * i));
  CHECK_THROWS_WITH(chord::decode_profile(bytes, {1, 2}, "p.chrp"),
                    Contains("p.chrp") && Contains("profile value 1") && Contains("max_magnitude"));
}

TEST_CASE("inputs: experiment report counts must be non-negative integers", "[io]") {
  personalize::ExperimentReport r;
  r.architecture = "sasrec", r.budgets = {2};
  std::string text = personalize::experiment_json_text(r);
  const std::string key = "\"evaluation_users\": 0";
  REQUIRE(text.find(key) != std::string::npos);
  text.replace(text.find(key), key.size(), "\"evaluation_users\": -3");
  CHECK_THROWS_WITH(personalize::parse_experiment_report(text, "r.json"),
                    Contains("r.json") && Contains("'evaluation_users' has the wrong type (-3 is not a non-negative integer)"));
}

TEST_CASE("inputs: sparse item ids are mapped to dense indices", "[io][data]") {
  const data::Dataset d = data::parse_dataset("1 30000000 5\n2 5 2147483646\n", "sparse.txt");
  CHECK(d.num_items == 3);
  CHECK(d.item_ids == std::vector<std::int32_t>{5, 30000000, 2147483646});
  CHECK(d.sequences[0] == std::vector<data::ItemId>{2, 1});
  CHECK(d.sequences[1] == std::vector<data::ItemId>{1, 3});
  CHECK(data::raw_item_id(d, 2) == 30000000);
  data::ReadOptions o;
  o.max_distinct_ids = 2;
  CHECK_THROWS_WITH(data::parse_dataset("1 30000000 5\n2 5 2147483646\n", "sparse.txt", o),
                    Contains("sparse.txt") && Contains("3 distinct item ids") && Contains("max_distinct_ids"));
}

TEST_CASE("inputs: id maps and data fingerprints", "[io][data]") {
  const std::vector<std::int32_t> ids{1, 2, 3, 7, 9, 10};
  CHECK(models::id_map_text(ids) == "1-3,7,9-10");
  CHECK(models::parse_id_map("1-3,7,9-10", 6, "m", "data.item_ids") == ids);
  for (const char* bad : {"", "3-1", "1,1", "1,", "0", "1-3,2", "a", "1;2", "2147483647"})
    CHECK_THROWS_WITH(models::parse_id_map(bad, 100, "model 'm'", "data.item_ids"),
                      Contains("model 'm'") && Contains("data.item_ids"));
  CHECK_THROWS_WITH(models::parse_id_map("1-1000000000", 10, "m", "data.item_ids"), Contains("more than 10 ids"));

  const data::Dataset a = data::parse_dataset("1 1 2 3\n2 2 3 1\n", "a.txt");
  const data::Dataset b = data::parse_dataset("1 1 2 3\n2 2 1 3\n", "b.txt");
  const data::Dataset a_again = data::parse_dataset("1 1 2 3\n2 2 3 1\n", "elsewhere/a.txt");
  CHECK(models::data_fingerprint(a) == models::data_fingerprint(a_again));  // content, not path
  CHECK(models::data_fingerprint(a) != models::data_fingerprint(b));

  const models::Metadata bound = models::binding_metadata(a);
  const models::DataBinding binding = models::binding_from(bound, "model 'm.safetensors'", 3, -1);
  CHECK(binding.known());
  CHECK_NOTHROW(models::check_model_data(binding, "m.safetensors", a, false));
  CHECK_THROWS_WITH(models::check_model_data(binding, "m.safetensors", b, false),
                    Contains("m.safetensors") && Contains("b.txt") && Contains("--allow-other-data"));
  CHECK_NOTHROW(models::check_model_data(binding, "m.safetensors", b, true));
  CHECK_THROWS_WITH(models::binding_from(bound, "model 'm'", 4, -1), Contains("maps 3 items, the model has 4"));
  models::Metadata bad = bound;
  bad[models::kDataFingerprintKey] = "xyz";
  CHECK_THROWS_WITH(models::binding_from(bad, "model 'm'", 3, -1), Contains("data.fingerprint"));
  CHECK_FALSE(models::binding_from({}, "model 'm'", 3, -1).known());  // old files: unknown, identity

  // an imported model whose item map differs: the data is renumbered to the model's indices
  models::DataBinding imported;
  imported.item_ids = {1, 2, 3, 4};
  const data::Dataset sparse = data::parse_dataset("1 4 2\n2 2 4 1\n", "s.txt");  // items {1, 2, 4} -> 1, 2, 3
  const data::Dataset renumbered = models::renumber_for_model(sparse, imported, "imported.safetensors");
  CHECK(renumbered.num_items == 4);
  CHECK(renumbered.sequences[0] == std::vector<data::ItemId>{4, 2});
  imported.item_ids = {1, 2};
  CHECK_THROWS_WITH(models::renumber_for_model(sparse, imported, "imported.safetensors"),
                    Contains("s.txt") && Contains("item id 4") && Contains("imported.safetensors"));
}

TEST_CASE("inputs: reads refuse FIFOs, devices, directories and files past the size limit", "[io]") {
  ScratchDir dir;
  CHECK_THROWS_WITH(read_file("/dev/zero"), Contains("/dev/zero") && Contains("not a regular file"));
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(read_file(dir / "fifo"), Contains("fifo") && Contains("not a regular file"));  // no hang
  CHECK_THROWS_WITH(data::read_dataset(dir / "fifo"), Contains("not a regular file"));
  CHECK_THROWS_WITH(read_file(dir.path), Contains("directory"));
  write_file_atomic(dir / "f", "12345", 5);
  InputLimits small;
  small.max_input_bytes = 4;
  CHECK_THROWS_WITH(read_file(dir / "f", small), Contains("5 bytes exceed the limit of 4"));
  CHECK(read_file(dir / "f").size() == 5);
}

TEST_CASE("inputs: atomic writes replace only regular files, keep the mode, remove stale temporaries", "[io]") {
  ScratchDir dir;
  const std::string target = dir / "model.safetensors";
  write_file_atomic(target, "old", 3);
  REQUIRE(::chmod(target.c_str(), 0600) == 0);
  write_file_atomic(target, "new!", 4);
  struct stat info {};
  REQUIRE(::stat(target.c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0600);
  CHECK(read_file(target).size() == 4);

  REQUIRE(::symlink(target.c_str(), (dir / "link").c_str()) == 0);
  CHECK_THROWS_WITH(write_file_atomic(dir / "link", "x", 1), Contains("symbolic link"));
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(write_file_atomic(dir / "fifo", "x", 1), Contains("not a regular file"));
  CHECK_THROWS_WITH(check_output_path(dir / "fifo"), Contains("not a regular file"));
  REQUIRE(::link(target.c_str(), (dir / "hard").c_str()) == 0);
  CHECK_THROWS_WITH(write_file_atomic(dir / "hard", "x", 1), Contains("2 hard links"));
  REQUIRE(::unlink((dir / "hard").c_str()) == 0);
  CHECK_THROWS_WITH(check_output_path(dir / "missing/model.safetensors"), Contains("does not exist"));
  CHECK_NOTHROW(check_output_path(dir / "fresh.safetensors"));

  // a temporary of a process that no longer runs (a SIGKILL during a save) goes at the next save. The
  // dead process: pid_max, which Linux never assigns (pids run below it). Not a forked child: under
  // qemu-user that fork hung until ctest's timeout (the aarch64 configuration).
  long dead = 0;
  {
    std::FILE* f = std::fopen("/proc/sys/kernel/pid_max", "r");
    REQUIRE(f != nullptr);
    REQUIRE(std::fscanf(f, "%ld", &dead) == 1);
    std::fclose(f);
  }
  REQUIRE(::kill(pid_t(dead), 0) != 0);
  const std::string stale = target + ".chord-tmp." + std::to_string(dead) + ".0";
  const std::string mine = target + ".chord-tmp." + std::to_string(::getpid()) + ".999";  // another thread's
  write_file_atomic(stale, "partial", 7);
  write_file_atomic(mine, "partial", 7);
  CHECK(stale_temporaries_of(target) == std::vector<std::string>{stale});
  write_file_atomic(target, "newer", 5);
  CHECK(::access(stale.c_str(), F_OK) != 0);
  CHECK(::access(mine.c_str(), F_OK) == 0);
}

TEST_CASE("inputs: model files are written and read the same under a ',' decimal-point locale", "[io]") {
  // tests/CMakeLists.txt compiles de_DE.UTF-8 into the build tree (LOCPATH) where localedef exists.
  const char* names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
  const char* chosen = nullptr;
  for (const char* name : names)
    if (std::setlocale(LC_ALL, name) != nullptr && std::strcmp(std::localeconv()->decimal_point, ",") == 0) {
      chosen = name;
      break;
    }
  if (chosen == nullptr) {
    std::setlocale(LC_ALL, "C");
    WARN("no locale with a ',' decimal point can be set (install Debian's locales; see scripts/lib.sh): skipped");
    return;
  }
  models::SasrecConfig c = tiny_sasrec();
  c.dropout = 0.25f, c.layernorm_eps = 1e-8f;
  const models::Metadata m = models::to_metadata(c);
  CHECK(m.at("sasrec.dropout") == "0.25");
  models::SasrecModel model(c);
  model.init(1);
  ScratchDir dir;
  models::save_model(dir / "m.safetensors", model);
  const models::LoadedModel loaded = models::load_model(dir / "m.safetensors");
  std::setlocale(LC_ALL, "C");
  INFO("locale " << chosen);
  REQUIRE(loaded.sasrec.has_value());
  CHECK(loaded.sasrec->config().dropout == 0.25f);
  CHECK(loaded.sasrec->config().layernorm_eps == 1e-8f);
}
