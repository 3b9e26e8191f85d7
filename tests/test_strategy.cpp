// Strategy packet: byte layout, round trip, rejection of every corruption and truncation, the messages
// of the strict decoder, model fingerprints, device-side palettes, atomic file writes and reads.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/strategy_packet.hpp"

using namespace chord;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// The packet layout written out from the spec, independently of the implementation's constants.
constexpr std::size_t kHeaderBytes = 4 + 2 + 2 + 8 + 4 + 4 + 4;  // magic .. layer count
constexpr std::size_t kCrcBytes = 4;

std::size_t expected_packet_size(const std::vector<LayerShape>& layers) {
  std::size_t channels = 0;
  for (const auto& l : layers) channels += l.channels;
  return kHeaderBytes + 4 * layers.size() + (channels + 3) / 4 + kCrcBytes;
}

std::vector<LayerShape> make_layers(const std::vector<std::uint32_t>& channels, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::uint32_t> fan_in(1, 300);
  std::vector<LayerShape> layers;
  for (std::size_t l = 0; l < channels.size(); ++l)
    layers.push_back({"block" + std::to_string(l) + ".proj", channels[l], fan_in(rng)});
  return layers;
}

Strategy random_strategy(const std::vector<LayerShape>& layers, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> level(0, kLevels - 1);
  Strategy s;
  for (const auto& l : layers) {
    s.levels.emplace_back(l.channels);
    for (auto& v : s.levels.back()) v = std::uint8_t(level(rng));
  }
  return s;
}

StrategyPacket make_packet(const std::vector<LayerShape>& layers, std::uint32_t seed,
                           const Palette& palette = kStandardPalette) {
  StrategyPacket p;
  p.fingerprint = model_fingerprint(layers, "sasrec");
  p.palette = palette;
  p.strategy = random_strategy(layers, seed);
  p.budget = float(average_bits(p.strategy, layers, palette));
  return p;
}

PacketExpectation expect_for(const std::vector<LayerShape>& layers, std::string_view arch = "sasrec") {
  return {model_fingerprint(layers, arch), layers};
}

// After a test edits a field on purpose, re-stamp the CRC so the decoder gets past the checksum to the
// field check under test.
void restamp_crc(std::vector<std::uint8_t>& bytes) {
  const std::size_t at = bytes.size() - kCrcBytes;
  const std::uint32_t crc = crc32(bytes.data(), at);
  for (int i = 0; i < 4; ++i) bytes[at + i] = std::uint8_t(crc >> (8 * i));
}

void put_le(std::vector<std::uint8_t>& bytes, std::size_t at, std::uint64_t value, int size) {
  for (int i = 0; i < size; ++i) bytes[at + i] = std::uint8_t(value >> (8 * i));
}

std::string hex16(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
  return buf;
}

// The message of the chord::Error `fn` throws ("" when it does not throw, which the caller then fails).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The layer layouts every property is checked on: single layers, channel counts that are and are not
// multiples of 4, an empty layer, many layers, no layers at all.
std::vector<std::vector<LayerShape>> layouts() {
  std::vector<std::vector<LayerShape>> all = {
      make_layers({1}, 1),          make_layers({4}, 2),           make_layers({5}, 3),
      make_layers({3, 7, 13}, 4),   make_layers({64, 0, 65}, 5),   make_layers({}, 6),
      make_layers({128, 256}, 7),
  };
  std::mt19937 rng(8);
  std::uniform_int_distribution<std::uint32_t> channels(0, 70);
  std::vector<std::uint32_t> many(50);
  for (auto& c : many) c = channels(rng);
  all.push_back(make_layers(many, 9));
  return all;
}

// A directory of its own under the system temp directory, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "chord-test-strategy-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    return names;
  }
};

}  // namespace

TEST_CASE("strategy packet: byte layout follows the spec", "[strategy]") {
  const auto layers = make_layers({5, 2}, 11);
  StrategyPacket p;
  p.fingerprint = 0x0123456789ABCDEFull;
  p.budget = 3.5f;  // 0x40600000
  p.palette = {2, 2, 4, 8};
  p.strategy.levels = {{1, 2, 3, 0, 3}, {2, 1}};
  const auto b = encode_strategy(p);

  REQUIRE(b.size() == kHeaderBytes + 2 * 4 + 2 + kCrcBytes);
  CHECK(std::string(b.begin(), b.begin() + 4) == "CHRS");
  CHECK((b[4] == 1 && b[5] == 0));  // version 1
  CHECK((b[6] == 0 && b[7] == 0));  // reserved
  for (int i = 0; i < 8; ++i) CHECK(b[8 + i] == std::uint8_t(p.fingerprint >> (8 * i)));
  CHECK((b[16] == 0x00 && b[17] == 0x00 && b[18] == 0x60 && b[19] == 0x40));
  CHECK((b[20] == 2 && b[21] == 2 && b[22] == 4 && b[23] == 8));
  CHECK((b[24] == 2 && b[25] == 0 && b[26] == 0 && b[27] == 0));  // 2 layers
  CHECK((b[28] == 5 && b[29] == 0 && b[30] == 0 && b[31] == 0));  // layer 0: 5 channels
  CHECK((b[32] == 2 && b[33] == 0 && b[34] == 0 && b[35] == 0));  // layer 1: 2 channels
  // Flattened levels 1 2 3 0 | 3 2 1: byte 0 = 1 | 2<<2 | 3<<4 | 0<<6, byte 1 = 3 | 2<<2 | 1<<4.
  CHECK(b[36] == 0x39);
  CHECK(b[37] == 0x1B);
  const std::uint32_t crc = crc32(b.data(), 38);
  for (int i = 0; i < 4; ++i) CHECK(b[38 + i] == std::uint8_t(crc >> (8 * i)));
}

TEST_CASE("strategy packet: round trip over many layouts and seeds", "[strategy]") {
  const auto all = layouts();
  for (std::size_t li = 0; li < all.size(); ++li)
    for (std::uint32_t seed = 0; seed < 5; ++seed) {
      const auto& layers = all[li];
      const Palette palette = seed % 2 ? Palette{0, 2, 4, 4} : kStandardPalette;
      const auto p = make_packet(layers, 1000 * std::uint32_t(li) + seed, palette);
      const auto bytes = encode_strategy(p);
      INFO("layout " << li << " seed " << seed);
      REQUIRE(bytes.size() == expected_packet_size(layers));
      REQUIRE(bytes.size() == strategy_packet_size(p.strategy));
      const auto q = decode_strategy(bytes.data(), bytes.size(), expect_for(layers), "roundtrip");
      CHECK(q.fingerprint == p.fingerprint);
      CHECK(q.budget == p.budget);  // bit exact: f32 crosses unchanged
      CHECK(q.palette == p.palette);
      REQUIRE(q.strategy.levels == p.strategy.levels);
      CHECK(encode_strategy(q) == bytes);
    }
}

TEST_CASE("strategy packet: every single-byte corruption is rejected", "[strategy]") {
  const std::uint8_t masks[] = {0x01, 0x02, 0x80, 0xFF, 0x5A, 0x30};
  std::size_t rejected = 0;
  for (const auto& layers : layouts()) {
    const auto expect = expect_for(layers);
    const auto good = encode_strategy(make_packet(layers, 77));
    REQUIRE_NOTHROW(decode_strategy(good, expect, "good"));
    for (std::size_t at = 0; at < good.size(); ++at)
      for (std::uint8_t mask : masks) {
        auto bad = good;
        bad[at] ^= mask;
        INFO("byte " << at << " of " << good.size() << " xor " << int(mask));
        REQUIRE_THROWS_AS(decode_strategy(bad, expect, "corrupt"), Error);
        ++rejected;
      }
  }
  CHECK(rejected > 1000);
}

TEST_CASE("strategy packet: level corruption is reported as a checksum mismatch", "[strategy]") {
  const auto layers = make_layers({9, 4}, 12);
  auto bytes = encode_strategy(make_packet(layers, 5));
  bytes[kHeaderBytes + 8] ^= 0x04;  // first level byte
  const auto msg = error_of([&] { decode_strategy(bytes, expect_for(layers), "u7.strat"); });
  CHECK_THAT(msg, Contains("u7.strat") && Contains("checksum mismatch"));
}

TEST_CASE("strategy packet: every truncation and a trailing byte are rejected", "[strategy]") {
  for (const auto& layers : layouts()) {
    const auto expect = expect_for(layers);
    const auto good = encode_strategy(make_packet(layers, 3));
    for (std::size_t len = 0; len < good.size(); ++len) {
      INFO("prefix " << len << " of " << good.size());
      const auto msg = error_of([&] { decode_strategy(good.data(), len, expect, "cut.strat"); });
      REQUIRE_THAT(msg, Contains("cut.strat") && Contains("truncated"));
    }
    auto longer = good;
    longer.push_back(0);
    CHECK_THAT(error_of([&] { decode_strategy(longer, expect, "long.strat"); }),
               Contains("long.strat") && Contains("trailing"));
  }
  // Empty input, and a null pointer with size 0, are errors too, not crashes.
  const auto layers = make_layers({4}, 1);
  CHECK_THAT(error_of([&] { decode_strategy(nullptr, 0, expect_for(layers), "empty"); }), Contains("truncated"));
}

TEST_CASE("strategy packet: mismatches name what is wrong", "[strategy]") {
  const auto layers = make_layers({6, 10, 3}, 21);
  const auto packet = make_packet(layers, 9);
  const auto bytes = encode_strategy(packet);

  SECTION("another model's fingerprint") {
    const auto other = expect_for(layers, "caser");
    const auto msg = error_of([&] { decode_strategy(bytes, other, "user42.strat"); });
    CHECK_THAT(msg, Contains("user42.strat") && Contains("strategy is for model " + hex16(packet.fingerprint)) &&
                        Contains("this model is " + hex16(other.fingerprint)));
  }
  SECTION("a channel count that differs, naming the layer") {
    auto shapes = layers;
    shapes[1].channels = 11;
    const PacketExpectation expect{packet.fingerprint, shapes};
    const auto msg = error_of([&] { decode_strategy(bytes, expect, "p"); });
    CHECK_THAT(msg, Contains("channel count mismatch") && Contains("block1.proj") && Contains("10") &&
                        Contains("11"));
  }
  SECTION("a layer count that differs") {
    auto shapes = layers;
    shapes.push_back({"extra", 4, 4});
    const PacketExpectation expect{packet.fingerprint, shapes};
    CHECK_THAT(error_of([&] { decode_strategy(bytes, expect, "p"); }), Contains("layer count mismatch"));
  }
  SECTION("an unsupported version, with and without a valid checksum") {
    auto bad = bytes;
    put_le(bad, 4, 2, 2);
    CHECK_THAT(error_of([&] { decode_strategy(bad, expect_for(layers), "p"); }), Contains("unsupported version 2"));
    restamp_crc(bad);
    CHECK_THAT(error_of([&] { decode_strategy(bad, expect_for(layers), "p"); }), Contains("unsupported version 2"));
  }
  SECTION("bad magic") {
    auto bad = bytes;
    bad[0] = 'X';
    CHECK_THAT(error_of([&] { decode_strategy(bad, expect_for(layers), "p"); }),
               Contains("byte 0") && Contains("bad magic"));
  }
  SECTION("reserved field not zero") {
    auto bad = bytes;
    put_le(bad, 6, 1, 2);
    restamp_crc(bad);
    CHECK_THAT(error_of([&] { decode_strategy(bad, expect_for(layers), "p"); }),
               Contains("byte 6") && Contains("reserved"));
  }
  SECTION("invalid palettes") {
    for (Palette bad_palette : {Palette{0, 4, 2, 8}, Palette{0, 2, 4, 3}, Palette{1, 2, 4, 8}}) {
      auto bad = bytes;
      for (int i = 0; i < 4; ++i) bad[20 + i] = bad_palette[i];
      restamp_crc(bad);
      CHECK_THAT(error_of([&] { decode_strategy(bad, expect_for(layers), "p"); }),
                 Contains("byte 20") && Contains("palette"));
    }
  }
  SECTION("budgets that are not finite or out of range") {
    for (float budget : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -0.5f,
                         8.25f}) {
      std::uint32_t u;
      std::memcpy(&u, &budget, 4);
      auto bad = bytes;
      put_le(bad, 16, u, 4);
      restamp_crc(bad);
      INFO("budget " << budget);
      CHECK_THAT(error_of([&] { decode_strategy(bad, expect_for(layers), "p"); }),
                 Contains("byte 16") && Contains("budget"));
    }
  }
  SECTION("nonzero padding bits") {
    // 19 channels: the last level byte uses 3 of its 4 slots, the top 2 bits are padding.
    auto bad = bytes;
    bad[bad.size() - kCrcBytes - 1] |= 0x40;
    restamp_crc(bad);
    CHECK_THAT(error_of([&] { decode_strategy(bad, expect_for(layers), "p"); }), Contains("padding"));
  }
}

TEST_CASE("encode_strategy validates what it writes", "[strategy]") {
  const auto layers = make_layers({5, 3}, 31);
  const auto good = make_packet(layers, 1);
  REQUIRE_NOTHROW(encode_strategy(good));

  auto bad_level = good;
  bad_level.strategy.levels[1][2] = 4;
  CHECK_THAT(error_of([&] { encode_strategy(bad_level); }), Contains("layer 1 channel 2") && Contains("level 4"));

  auto bad_palette = good;
  bad_palette.palette = {0, 4, 2, 8};
  CHECK_THAT(error_of([&] { encode_strategy(bad_palette); }), Contains("palette"));

  for (float budget : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(), -0.01f,
                       8.01f}) {
    auto bad_budget = good;
    bad_budget.budget = budget;
    CHECK_THAT(error_of([&] { encode_strategy(bad_budget); }), Contains("budget"));
  }
  for (float budget : {0.0f, 8.0f}) {
    auto edge = good;
    edge.budget = budget;
    CHECK(decode_strategy(encode_strategy(edge), expect_for(layers), "edge").budget == budget);
  }
}

TEST_CASE("strategy packet: size is header + channels/4 + checksum, far below shipping weights", "[strategy]") {
  // 4 layers x 1024 channels of fan-in 256: a SASRec-sized set of projections.
  const auto layers = [] {
    std::vector<LayerShape> l;
    for (int i = 0; i < 4; ++i) l.push_back({"layer" + std::to_string(i), 1024, 256});
    return l;
  }();
  const auto bytes = encode_strategy(make_packet(layers, 2));
  const std::size_t channels = 4 * 1024;
  REQUIRE(bytes.size() == kHeaderBytes + 4 * layers.size() + channels / 4 + kCrcBytes);
  CHECK(bytes.size() <= channels / 4 + 64);  // about channels/4: fixed overhead under 64 bytes
  const std::size_t float_weight_bytes = channels * 256 * 4;
  CHECK(bytes.size() * 1000 < float_weight_bytes);
}

TEST_CASE("model_fingerprint separates architectures, names and shapes", "[strategy]") {
  const std::vector<LayerShape> base = {{"a", 8, 16}, {"b", 4, 32}};
  const auto f = model_fingerprint(base, "sasrec");
  CHECK(f == model_fingerprint(base, "sasrec"));
  CHECK(f != model_fingerprint(base, "caser"));
  auto renamed = base;
  renamed[0].name = "c";
  CHECK(f != model_fingerprint(renamed, "sasrec"));
  auto wider = base;
  wider[1].channels = 5;
  CHECK(f != model_fingerprint(wider, "sasrec"));
  auto deeper = base;
  deeper[0].fan_in = 17;
  CHECK(f != model_fingerprint(deeper, "sasrec"));
  CHECK(f != model_fingerprint({base[0]}, "sasrec"));
  // Length-prefixed pieces: moving a character across a boundary changes the fingerprint.
  CHECK(model_fingerprint({{"ab", 1, 1}}, "x") != model_fingerprint({{"b", 1, 1}}, "xa"));
}

TEST_CASE("decoded strategies: average_bits and device palettes", "[strategy]") {
  // Layer "hot": 4 channels of fan-in 3 at level 3; layer "cold": 4 channels of fan-in 1 at level 0.
  // Standard palette: (4*3*8 + 4*1*0) / 16 = 6; palette {2,2,4,8}: (96 + 4*1*2) / 16 = 6.5.
  const std::vector<LayerShape> layers = {{"hot", 4, 3}, {"cold", 4, 1}};
  StrategyPacket p;
  p.fingerprint = model_fingerprint(layers, "caser");
  p.budget = 6.0f;
  p.strategy.levels = {{3, 3, 3, 3}, {0, 0, 0, 0}};
  const auto q = decode_strategy(encode_strategy(p), expect_for(layers, "caser"), "hand");
  CHECK(average_bits(q.strategy, layers, kStandardPalette) == Approx(6.0));
  CHECK(average_bits(q.strategy, layers, Palette{2, 2, 4, 8}) == Approx(6.5));
  CHECK(average_bits(q.strategy, layers, Palette{0, 2, 4, 4}) == Approx(3.0));

  // Random strategies: the decoded one costs what the cloud aimed at, under any palette.
  const auto all = layouts();
  for (std::size_t li = 0; li < all.size(); ++li) {
    const auto p2 = make_packet(all[li], std::uint32_t(li) + 40);
    const auto q2 = decode_strategy(encode_strategy(p2), expect_for(all[li]), "rand");
    CHECK(float(average_bits(q2.strategy, all[li], kStandardPalette)) == p2.budget);
    for (Palette palette : {Palette{2, 2, 4, 8}, Palette{0, 2, 4, 4}, Palette{2, 4, 8, 8}})
      CHECK(average_bits(q2.strategy, all[li], palette) == average_bits(p2.strategy, all[li], palette));
  }
}

TEST_CASE("strategy_bits decodes levels with the device's palette", "[strategy]") {
  const auto layers = make_layers({7, 16, 1}, 51);
  const auto q = decode_strategy(encode_strategy(make_packet(layers, 6)), expect_for(layers), "dev");
  for (Palette palette : {kStandardPalette, Palette{2, 2, 4, 8}, Palette{0, 2, 4, 4}}) {
    const auto bits = strategy_bits(q.strategy, palette);
    REQUIRE(bits.size() == layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
      REQUIRE(bits[l].size() == layers[l].channels);
      for (std::size_t c = 0; c < bits[l].size(); ++c) {
        CHECK(bits[l][c] == palette[q.strategy.levels[l][c]]);
        CHECK(bits[l][c] <= palette[3]);  // {0,2,4,4} caps every channel at 4 bits
      }
    }
  }
  CHECK_THROWS_AS(strategy_bits(q.strategy, Palette{8, 4, 2, 0}), Error);
}

TEST_CASE("write_file_atomic writes, overwrites and leaves no temporary files", "[strategy][file]") {
  TempDir dir;
  const std::string path = (dir.path / "user.strat").string();
  const std::vector<std::uint8_t> first(1000, 0xAB);
  write_file_atomic(path, first);
  CHECK(read_file(path) == first);
  const std::vector<std::uint8_t> second = {1, 2, 3};
  write_file_atomic(path, second);  // shorter: no stale tail may remain
  CHECK(read_file(path) == second);
  write_file_atomic(path, std::vector<std::uint8_t>{});
  CHECK(read_file(path).empty());
  CHECK(dir.entries() == std::vector<std::string>{"user.strat"});
}

TEST_CASE("write_file_atomic failures throw, name the path and keep the old file", "[strategy][file]") {
  TempDir dir;
  const std::vector<std::uint8_t> old_bytes(100, 0x11), new_bytes(5000, 0x22);

  SECTION("missing directory") {
    const std::string path = (dir.path / "no-such-dir" / "x.strat").string();
    CHECK_THAT(error_of([&] { write_file_atomic(path, new_bytes); }),
               Contains(path) && Contains("No such file or directory"));
    CHECK(dir.entries().empty());
  }
  SECTION("target is a directory") {
    const fs::path target = dir.path / "taken";
    fs::create_directory(target);
    write_file_atomic((target / "inside").string(), old_bytes);
    CHECK_THAT(error_of([&] { write_file_atomic(target.string(), new_bytes); }), Contains(target.string()));
    CHECK(read_file((target / "inside").string()) == old_bytes);
    CHECK(dir.entries() == std::vector<std::string>{"taken"});
  }
  SECTION("the write itself fails half-way (file size limit)") {
    // Tests run as root here, so a read-only directory would not stop a write; a file size limit does,
    // after part of the bytes are written, which is the case atomicity is for.
    const std::string path = (dir.path / "user.strat").string();
    write_file_atomic(path, old_bytes);
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    rlimit limited = saved;
    limited.rlim_cur = 1024;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
    const auto msg = error_of([&] { write_file_atomic(path, new_bytes); });
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    CHECK_THAT(msg, Contains(path) && Contains("File too large"));
    CHECK(read_file(path) == old_bytes);
    CHECK(dir.entries() == std::vector<std::string>{"user.strat"});
  }
}

TEST_CASE("save_strategy / load_strategy round trip and name the file in errors", "[strategy][file]") {
  TempDir dir;
  const auto layers = make_layers({12, 5}, 61);
  const auto packet = make_packet(layers, 8);
  const std::string path = (dir.path / "u1.strat").string();
  save_strategy(path, packet);
  const auto loaded = load_strategy(path, expect_for(layers));
  CHECK(loaded.strategy.levels == packet.strategy.levels);
  CHECK(loaded.budget == packet.budget);
  CHECK(dir.entries() == std::vector<std::string>{"u1.strat"});

  const std::string missing = (dir.path / "missing.strat").string();
  CHECK_THAT(error_of([&] { load_strategy(missing, expect_for(layers)); }),
             Contains(missing) && Contains("No such file or directory"));

  auto bytes = read_file(path);
  bytes[bytes.size() / 2] ^= 0x10;
  write_file_atomic(path, bytes);
  CHECK_THAT(error_of([&] { load_strategy(path, expect_for(layers)); }), Contains(path));

  CHECK_THAT(error_of([&] { load_strategy(path, expect_for(layers, "caser")); }), Contains(path));

  auto invalid = packet;
  invalid.palette = {4, 2, 0, 0};
  const std::string never = (dir.path / "never.strat").string();
  CHECK_THAT(error_of([&] { save_strategy(never, invalid); }), Contains(never) && Contains("palette"));
  CHECK(!fs::exists(never));

  CHECK_THAT(error_of([&] { read_file(dir.path.string()); }), Contains(dir.path.string()));
}
