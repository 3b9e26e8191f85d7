// tests/test_data.cpp: the data layer: readers (every malformed-input class, the five real files),
// leave-one-out split, samplers, evaluation candidates, metrics, synthetic data.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "chord/data/candidates.hpp"
#include "chord/data/metrics.hpp"
#include "chord/data/reader.hpp"
#include "chord/data/sampler.hpp"
#include "chord/data/split.hpp"
#include "chord/data/synthetic.hpp"

using namespace chord::data;
using Seqs = std::vector<std::vector<ItemId>>;

namespace {

// The sequences in the file's item ids (the reader renumbers items densely: dataset.hpp).
Seqs raw_sequences(const Dataset& d) {
  Seqs out = d.sequences;
  for (auto& sequence : out)
    for (ItemId& item : sequence) item = raw_item_id(d, item);
  return out;
}

// The error message parsing `text` gives, or "" when it parses.
std::string error_of(const std::string& text, const std::string& source, const ReadOptions& opt = {}) {
  try {
    parse_dataset(text, source, opt);
  } catch (const chord::Error& e) {
    return e.what();
  }
  return "";
}

// Requires an error whose message names the source and contains every needle (e.g. "line 3").
void require_error(const std::string& text, const std::string& source, const std::vector<std::string>& needles,
                   const ReadOptions& opt = {}) {
  const std::string message = error_of(text, source, opt);
  INFO("input: " << text.substr(0, 80) << "\nmessage: " << message);
  REQUIRE(!message.empty());
  REQUIRE(message.find(source) != std::string::npos);
  for (const auto& needle : needles) REQUIRE(message.find(needle) != std::string::npos);
}

SyntheticData small_synthetic(std::uint64_t seed, std::int32_t users = 200, std::int32_t items = 300) {
  SyntheticOptions o;
  o.num_users = users;
  o.num_items = items;
  o.num_clusters = 6;
  o.min_length = 1;
  o.max_length = 30;
  o.seed = seed;
  return make_synthetic(o);
}

}  // namespace

TEST_CASE("Rng: SplitMix64 reference outputs and exact bounded draws", "[data][rng]") {
  // The published SplitMix64 sequence for state 0: pins the generator on every platform.
  Rng rng(0);
  CHECK(rng.next_u64() == 0xE220A8397B1DCDAFull);
  CHECK(rng.next_u64() == 0x6E789E6AA1B965F4ull);
  CHECK(rng.next_u64() == 0x06C45D188009454Full);

  // below(n) stays in range and reaches every value; a bad range is an error, not a hang.
  for (std::uint32_t n : {1u, 2u, 3u, 7u, 100u}) {
    Rng g = Rng::stream(42, n);
    std::vector<int> hits(n, 0);
    for (int i = 0; i < 2000; ++i) {
      const std::uint32_t x = g.below(n);
      REQUIRE(x < n);
      ++hits[x];
    }
    for (int h : hits) CHECK(h > 0);
  }
  CHECK_THROWS_AS(rng.below(0), chord::Error);
  for (int i = 0; i < 1000; ++i) {
    const double x = rng.uniform01();
    REQUIRE((x >= 0.0 && x < 1.0));
  }
  // Streams of neighbouring coordinates differ.
  CHECK(Rng::stream(1, 0, 0).next_u64() != Rng::stream(1, 0, 1).next_u64());
  CHECK(Rng::stream(1, 0, 0).next_u64() != Rng::stream(1, 1, 0).next_u64());
}

TEST_CASE("reader: the four formats and what they tolerate", "[data][reader]") {
  SECTION("A: user item lines, grouped by user") {
    const Dataset d = parse_dataset("1 10\n1 11\n1 10\n2 7\n", "a.txt");
    CHECK(d.name == "a.txt");
    CHECK(d.num_users == 2);
    CHECK(d.num_items == 3);  // distinct items 7, 10, 11 -> 1, 2, 3
    CHECK(d.item_ids == std::vector<std::int32_t>{7, 10, 11});
    CHECK(d.sequences == Seqs{{2, 3, 2}, {1}});
    CHECK(raw_sequences(d) == Seqs{{10, 11, 10}, {7}});
    CHECK(d.user_ids == std::vector<std::int32_t>{1, 2});
  }
  SECTION("B: one line per user; users in any order, gaps renumbered, repeats kept") {
    const Dataset d = parse_dataset("5 3 3 4\n2 9\n", "b.txt");
    CHECK(raw_sequences(d) == Seqs{{9}, {3, 3, 4}});
    CHECK(d.user_ids == std::vector<std::int32_t>{2, 5});
    CHECK(d.num_items == 3);
  }
  SECTION("CRLF, blank lines, tabs and a missing final newline read like clean LF") {
    const Dataset clean = parse_dataset("1 1\n1 2\n2 3\n", "x.txt");
    const Dataset messy = parse_dataset("\r\n1 1\r\n  \n1\t 2 \r\n\n2 3", "x.txt");
    CHECK(messy.sequences == clean.sequences);
    CHECK(messy.user_ids == clean.user_ids);
  }
  SECTION("C: u.data rows sorted per user by (timestamp, row order)") {
    const std::string text =
        "2\t5\t3\t100\n"
        "1\t7\t4\t300\n"
        "1\t8\t1\t200\n"
        "1\t9\t5\t300\n"  // same time as item 7: row order decides
        "2\t6\t2\t50\n";
    const Dataset d = parse_dataset(text, "ml/u.data");
    CHECK(raw_sequences(d) == Seqs{{8, 7, 9}, {6, 5}});
    // The same rows in another file order change only the tie order.
    const Dataset by_content = parse_dataset(text, "no-hint.txt");
    CHECK(by_content.sequences == d.sequences);
  }
  SECTION("D: ratings.dat with '::' and fractional ratings") {
    const Dataset d = parse_dataset("1::20::3.5::978300760\r\n1::10::5::978300700\r\n3::10::1::1\r\n", "ratings.dat");
    CHECK(raw_sequences(d) == Seqs{{10, 20}, {10}});
    CHECK(d.user_ids == std::vector<std::int32_t>{1, 3});
  }
  SECTION("repeated ratings are refused unless allowed") {
    const std::string text = "1\t5\t3\t10\n1\t6\t3\t11\n1\t5\t4\t12\n";
    require_error(text, "rep.data", {"line 3", "again", "line 1"});
    ReadOptions allow;
    allow.allow_repeated_ratings = true;
    CHECK(raw_sequences(parse_dataset(text, "rep.data", allow)) == Seqs{{5, 6, 5}});
  }
  SECTION("a very long B line") {
    std::string line = "1";
    std::vector<ItemId> expected;
    for (int i = 0; i < 200000; ++i) {
      const ItemId item = 1 + (i * 7919) % 50000;
      line += " " + std::to_string(item);
      expected.push_back(item);
    }
    const Dataset d = parse_dataset(line + "\n", "long.txt");
    REQUIRE(d.num_users == 1);
    CHECK(d.sequences[0] == expected);
  }
  SECTION("format detection") {
    CHECK(detect_format("1 2\n", "x.txt") == Format::automatic);
    CHECK(detect_format("\n1\t2\t3\t4\n", "x.txt") == Format::movielens_udata);
    CHECK(detect_format("1::2::3::4\n", "x") == Format::ratings_dat);
    CHECK(detect_format("1 2\n", "u.data") == Format::movielens_udata);  // the name asks for C
    CHECK(detect_format("1 2\n", "ratings.dat") == Format::ratings_dat);
  }
}

TEST_CASE("reader: every malformed input is an error naming the file, line and field", "[data][reader]") {
  SECTION("malformed lines") {
    require_error("1 1\n1\n", "a.txt", {"line 2", "no item"});
    require_error("1 1\n1 2 3\n", "a.txt", {"line 2", "field 3", "exactly 2"}, ReadOptions{Format::user_item});
    require_error("1\t2\t3\t4\n1\t3\t3\n", "u.data", {"line 2", "found 3"});
    require_error("1::2::3::4\n1::2:3::5\n", "r.dat", {"line 2", "found 3"});
    require_error("1\t\t3\t4\n", "u.data", {"line 1", "field 2", "empty"});
  }
  SECTION("non-numeric tokens and trailing garbage") {
    require_error("1 1\n1 x\n", "a.txt", {"line 2", "field 2", "column 3", "not a number"});
    require_error("1 1\n1 2x\n", "a.txt", {"line 2", "field 2", "trailing"});
    require_error("1 1\n1 +2\n", "a.txt", {"line 2", "field 2"});
    require_error("1 1\r2\n", "a.txt", {"line 1", "field 2", "\\x0d"});
    require_error(std::string("1 1\n1 \0 2\n", 10), "a.txt", {"line 2", "field 2", "\\x00"});
    require_error("1\t2\t3\t4\t5\n", "u.data", {"line 1", "found 5"});
    require_error("1\t2\t3\t4x\n", "u.data", {"line 1", "field 4", "timestamp"});
    require_error("1\t2\tgood\t4\n", "u.data", {"line 1", "field 3", "rating"});
    require_error("1\t2\t3.\t4\n", "u.data", {"line 1", "field 3", "rating"});
    require_error("1\t2\t3\t-4\n", "u.data", {"line 1", "field 4", "timestamp"});
    require_error("1\t2\t3\t99999999999999999999\n", "u.data", {"line 1", "field 4", "64 bits"});
  }
  SECTION("negative and zero ids") {
    require_error("1 1\n-1 2\n", "a.txt", {"line 2", "field 1", "negative"});
    require_error("1 1\n1 -7\n", "a.txt", {"line 2", "field 2", "negative"});
    require_error("1 1\n1 0\n", "a.txt", {"line 2", "field 2", "padding"});
    require_error("0 1\n", "a.txt", {"line 1", "field 1", "user id 0"});
    require_error("1\t0\t3\t4\n", "u.data", {"line 1", "field 2"});
  }
  SECTION("ids that overflow int32 or pass a limit") {
    require_error("1 1\n1 99999999999\n", "a.txt", {"line 2", "field 2", "too large"});
    require_error("1 2147483647\n", "a.txt", {"line 1", "field 2", "too large"});  // kMaxId + 1
    CHECK(parse_dataset("1 2147483646\n", "a.txt").item_ids == std::vector<std::int32_t>{kMaxId});
    const std::string huge(400, '9');
    const std::string message = error_of("1 " + huge + "\n", "a.txt");
    CHECK(message.find("too large") != std::string::npos);
    CHECK(message.size() < 300);  // the token is quoted shortened
    ReadOptions limits;
    limits.max_item_id = 5;
    limits.max_user_id = 3;
    require_error("1 1\n1 6\n", "a.txt", {"line 2", "field 2", "limit 5", "max_item_id"}, limits);
    require_error("1 1\n4 2\n", "a.txt", {"line 2", "field 1", "limit 3", "max_user_id"}, limits);
    CHECK(parse_dataset("3 5\n", "a.txt", limits).item_ids == std::vector<std::int32_t>{5});
    ReadOptions bad;
    bad.max_item_id = 0;
    require_error("1 1\n", "a.txt", {"limits"}, bad);
  }
  SECTION("empty files") {
    require_error("", "empty.txt", {"empty"});
    require_error("\n \t\n\r\n", "blank.txt", {"empty", "3 line"});
    require_error("", "u.data", {"empty"});
  }
  SECTION("format mixing") {
    require_error("1 1\n1 2\n2 3 4\n", "mix.txt", {"line 3", "mixes", "line 2"});  // B line in an A file
    require_error("1 5 6\n2 7\n2 8\n", "mix.txt", {"line 3", "mixes"});           // A lines in a B file
    require_error("1 5 6\n2 7 8\n2 9 9\n", "b.txt", {"line 3", "one line per user"},
                  ReadOptions{Format::user_sequence});
    require_error("1 1\n1 2\n1\t2\t3\t4\n", "mix.txt", {"line 3"}, ReadOptions{Format::user_item});
  }
  SECTION("users not grouped, or twice") {
    require_error("1 1\n2 2\n1 3\n", "a.txt", {"line 3", "user 1", "line 1", "consecutive"});
    require_error("1 1 2\n2 3 4\n1 5 6\n", "b.txt", {"line 3", "user 1", "line 1", "one line per user"});
  }
  SECTION("no input ever escapes as anything but chord::Error") {
    // A small in-test fuzz: byte edits of valid text of each format either parse or throw chord::Error.
    const std::vector<std::pair<std::string, std::string>> seeds = {
        {"1 1\n1 2\n2 3\n", "a.txt"},
        {"1 1 2 3\n2 4 5\n", "b.txt"},
        {"1\t2\t3\t4\n2\t3\t4\t5\n", "u.data"},
        {"1::2::3::4\n2::3::4::5\n", "ratings.dat"}};
    const std::string alphabet = std::string("0123456789 \t\n\r:-.x", 19) + std::string(1, '\0');
    Rng rng(7);
    for (const auto& [seed, name] : seeds)
      for (int trial = 0; trial < 3000; ++trial) {
        std::string text = seed;
        const int edits = 1 + int(rng.below(4));
        for (int e = 0; e < edits; ++e) {
          const std::size_t at = rng.below(std::uint32_t(text.size() + 1));
          const char c = alphabet[rng.below(std::uint32_t(alphabet.size()))];
          switch (rng.below(3)) {
            case 0: text.insert(text.begin() + std::ptrdiff_t(at), c); break;
            case 1: if (at < text.size()) text.erase(at, 1); break;
            default: if (at < text.size()) text[at] = c; break;
          }
        }
        try {
          const Dataset d = parse_dataset(text, name);
          REQUIRE_NOTHROW(check_dataset(d));
          for (const auto& s : d.sequences) REQUIRE(!s.empty());
        } catch (const chord::Error& e) {
          REQUIRE(std::string(e.what()).find(name) != std::string::npos);
        }
      }
  }
}

namespace {

// Reference reader for the real-data test: iostreams and std::stable_sort, written independently of
// the fast reader (one user per line for B, "user item" for A, rows then sort for u.data).
Seqs reference_sequences(const std::string& path, bool udata) {
  std::ifstream in(path);
  std::map<int, std::vector<std::pair<long long, int>>> rows;  // user -> (timestamp or order, item)
  std::string line;
  long long order = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    int user = 0, item = 0;
    fields >> user;
    if (udata) {
      double rating = 0;
      long long time = 0;
      fields >> item >> rating >> time;
      rows[user].push_back({time, item});
    } else {
      while (fields >> item) rows[user].push_back({order++, item});
    }
  }
  Seqs seqs;
  for (auto& [user, r] : rows) {
    std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    seqs.emplace_back();
    for (const auto& p : r) seqs.back().push_back(p.second);
  }
  return seqs;
}

std::string data_dir() {
  if (const char* env = std::getenv("CHORD_DATA_DIR")) return env;
#ifdef CHORD_SHARED_DATA_DIR
  return CHORD_SHARED_DATA_DIR;
#else
  return "";
#endif
}

}  // namespace

TEST_CASE("reader: the five real files match SOURCES.md", "[data][reader][real]") {
  const std::string dir = data_dir();
  if (dir.empty() || !std::ifstream(dir + "/ml-1m/ml-1m.txt").good()) {
    WARN("real-data checks skipped: no dataset directory (set CHORD_DATA_DIR; looked at '" << dir << "')");
    return;
  }
  struct Expected {
    const char* file;
    std::int64_t users, items, interactions, min_len, max_len;
    double mean_len, mean_tolerance;  // SOURCES.md rounds the mean: half a unit of its last digit
    std::int64_t repeats;
  };
  const Expected table[] = {{"ml-1m/ml-1m.txt", 6040, 3416, 999611, 18, 2277, 165.5, 0.05, 0},
                            {"ml-100k/u.data", 943, 1682, 100000, 20, 737, 106.0, 0.05, 0},
                            {"Beauty/Beauty.txt", 22363, 12101, 198502, 5, 204, 8.88, 0.005, 0},
                            {"Yelp/Yelp.txt", 30431, 20033, 316354, 5, 350, 10.40, 0.005, 11830},
                            {"LastFM/LastFM.txt", 1090, 3646, 52551, 5, 899, 48.2, 0.05, 0}};
  for (const Expected& e : table) {
    const std::string path = dir + "/" + e.file;
    INFO(path);
    const Dataset d = read_dataset(path);
    const DatasetStats s = compute_stats(d);
    CHECK(d.name == path);
    CHECK(s.users == e.users);
    CHECK(s.items == e.items);
    CHECK(s.distinct_items == e.items);  // ids are contiguous: every id up to the largest occurs
    CHECK(s.interactions == e.interactions);
    CHECK(s.min_length == e.min_len);
    CHECK(s.max_length == e.max_len);
    CHECK(s.mean_length == Approx(e.mean_len).margin(e.mean_tolerance));
    CHECK(s.repeats == e.repeats);
    for (std::int32_t u = 0; u < d.num_users; ++u) REQUIRE(d.user_ids[std::size_t(u)] == u + 1);
    CHECK(raw_sequences(d) == reference_sequences(path, std::string(e.file).find("u.data") != std::string::npos));
  }
}

TEST_CASE("split: leave-one-out", "[data][split]") {
  Dataset d;
  d.name = "hand";
  d.num_users = 4;
  d.num_items = 9;
  d.sequences = {{4}, {4, 5}, {1, 2, 3}, {9, 8, 7, 6, 5}};
  d.user_ids = {1, 2, 3, 4};
  const LeaveOneOutSplit s = leave_one_out(d);
  CHECK(s.train == Seqs{{4}, {4, 5}, {1}, {9, 8, 7}});
  CHECK(s.valid == std::vector<ItemId>{0, 0, 2, 6});
  CHECK(s.test == std::vector<ItemId>{0, 0, 3, 5});
  CHECK(s.evaluated_users() == std::vector<std::int32_t>{2, 3});
  CHECK(s.history(3, Phase::validation) == std::vector<ItemId>{9, 8, 7});
  CHECK(s.history(3, Phase::test) == std::vector<ItemId>{9, 8, 7, 6});
  CHECK(s.all_items(3) == d.sequences[3]);
  CHECK(s.all_items(1) == d.sequences[1]);

  // On generated data: train + valid + test is the sequence, for every user.
  const SyntheticData syn = small_synthetic(3);
  const LeaveOneOutSplit t = leave_one_out(syn.dataset);
  for (std::int32_t u = 0; u < t.num_users; ++u) {
    REQUIRE(t.all_items(u) == syn.dataset.sequences[std::size_t(u)]);
    REQUIRE(t.evaluated(u) == (syn.dataset.sequences[std::size_t(u)].size() >= 3));
  }
  Dataset broken = d;
  broken.sequences[0] = {10};
  CHECK_THROWS_AS(leave_one_out(broken), chord::Error);
}

TEST_CASE("ItemSet: the k-th missing id and negative sampling", "[data][sampler]") {
  Rng rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const auto n = std::int32_t(1 + rng.below(40));
    std::vector<ItemId> items;
    const auto picks = rng.below(std::uint32_t(n) + 1);
    for (std::uint32_t i = 0; i < picks; ++i) items.push_back(ItemId(1 + rng.below(std::uint32_t(n))));
    const ItemSet set(items, n);
    std::vector<ItemId> missing;  // brute force
    for (ItemId i = 1; i <= n; ++i)
      if (std::find(items.begin(), items.end(), i) == items.end()) missing.push_back(i);
    REQUIRE(set.missing_count() == std::int64_t(missing.size()));
    for (std::size_t k = 0; k < missing.size(); ++k) REQUIRE(set.nth_missing(std::int64_t(k)) == missing[k]);
    // Asking for all missing items gives exactly the complement.
    REQUIRE(sample_distinct_negatives(set, std::int32_t(missing.size()), rng) == missing);
    if (missing.empty()) REQUIRE_THROWS_AS(sample_negative(set, rng), chord::Error);
  }
  CHECK_THROWS_AS(ItemSet({0, 1}, 5), chord::Error);
  CHECK_THROWS_AS(ItemSet({6}, 5), chord::Error);
  CHECK_THROWS_AS(sample_distinct_negatives(ItemSet({1, 2}, 5), 4, rng), chord::Error);
}

TEST_CASE("SasrecSampler: left padding, shifted positives, negatives outside train", "[data][sampler]") {
  const SyntheticData syn = small_synthetic(5);
  const LeaveOneOutSplit split = leave_one_out(syn.dataset);
  for (std::int32_t max_len : {1, 4, 50}) {
    const SasrecSampler sampler(split, max_len, 99);
    for (std::int32_t u : sampler.trainable_users()) REQUIRE(split.train[std::size_t(u)].size() >= 2);
    const std::vector<std::int32_t> order = sampler.epoch_order(0);
    REQUIRE(std::is_permutation(order.begin(), order.end(), sampler.trainable_users().begin()));
    SasrecBatch batch;
    sampler.fill(order, 0, batch);
    REQUIRE(batch.inputs.size() == order.size() * std::size_t(max_len));
    for (std::size_t r = 0; r < order.size(); ++r) {
      const auto& t = split.train[std::size_t(order[r])];
      const ItemSet seen(t, split.num_items);
      const ItemId* in = &batch.inputs[r * std::size_t(max_len)];
      const ItemId* pos = &batch.positives[r * std::size_t(max_len)];
      const ItemId* neg = &batch.negatives[r * std::size_t(max_len)];
      const std::size_t pairs = std::min(t.size() - 1, std::size_t(max_len));
      for (std::int32_t p = 0; p < max_len; ++p) {
        const bool padded = std::size_t(p) < std::size_t(max_len) - pairs;
        REQUIRE((in[p] == 0) == padded);
        REQUIRE((pos[p] == 0) == padded);
        REQUIRE((neg[p] == 0) == padded);
        if (padded) continue;
        const std::size_t next = t.size() - (std::size_t(max_len) - std::size_t(p));  // index of pos[p] in t
        REQUIRE(pos[p] == t[next]);
        REQUIRE(in[p] == t[next - 1]);
        REQUIRE(!seen.contains(neg[p]));
        REQUIRE((neg[p] >= 1 && neg[p] <= split.num_items));
      }
    }
    // Seeded and independent of batch composition: one user's row alone equals its row in the batch.
    SasrecBatch again, single, other_epoch, other_seed;
    sampler.fill(order, 0, again);
    CHECK(again.negatives == batch.negatives);
    sampler.fill({order[3]}, 0, single);
    CHECK(std::equal(single.negatives.begin(), single.negatives.end(), batch.negatives.begin() + 3 * max_len));
    if (max_len == 50) {
      sampler.fill(order, 1, other_epoch);
      CHECK(other_epoch.negatives != batch.negatives);
      SasrecSampler(split, max_len, 100).fill(order, 0, other_seed);
      CHECK(other_seed.negatives != batch.negatives);
      CHECK(sampler.epoch_order(1) != order);
    }
  }
  // Hand example: train [1 2 3 4 5], L = 8 -> inputs 0 0 0 0 1 2 3 4, positives 0 0 0 0 2 3 4 5.
  Dataset d{"hand", 1, 9, {{1, 2, 3, 4, 5, 6, 7}}, {1}, {}};
  const LeaveOneOutSplit s = leave_one_out(d);
  SasrecBatch b;
  SasrecSampler(s, 8, 1).fill({0}, 0, b);
  CHECK(b.inputs == std::vector<ItemId>{0, 0, 0, 0, 1, 2, 3, 4});
  CHECK(b.positives == std::vector<ItemId>{0, 0, 0, 0, 2, 3, 4, 5});
  for (std::size_t p = 4; p < 8; ++p) CHECK(b.negatives[p] >= 6);
  CHECK_THROWS_AS(SasrecSampler(s, 0, 1), chord::Error);
}

TEST_CASE("CaserSampler: windows of L inputs and T targets", "[data][sampler]") {
  const SyntheticData syn = small_synthetic(8);
  const LeaveOneOutSplit split = leave_one_out(syn.dataset);
  CaserOptions opt;  // L = 5, T = 3, N = 3
  const CaserSampler sampler(split, opt, 5);
  // Expected windows from the definition: pad the sequence with L zeros in front and T behind; the
  // window of split point e is padded[e .. e+L-1] (inputs) and padded[e+L .. e+L+T-1] (targets).
  std::vector<std::int32_t> exp_users;
  std::vector<ItemId> exp_inputs, exp_targets;
  for (std::int32_t u = 0; u < split.num_users; ++u) {
    const auto& t = split.train[std::size_t(u)];
    std::vector<ItemId> padded(5, 0);
    padded.insert(padded.end(), t.begin(), t.end());
    padded.insert(padded.end(), 3, 0);
    for (std::size_t e = 1; e + 1 <= t.size(); ++e) {
      exp_users.push_back(u);
      exp_inputs.insert(exp_inputs.end(), padded.begin() + std::ptrdiff_t(e), padded.begin() + std::ptrdiff_t(e + 5));
      exp_targets.insert(exp_targets.end(), padded.begin() + std::ptrdiff_t(e + 5),
                         padded.begin() + std::ptrdiff_t(e + 8));
    }
  }
  REQUIRE(sampler.num_windows() == exp_users.size());
  std::vector<std::size_t> all(sampler.num_windows());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  CaserBatch batch;
  sampler.fill(all, 2, batch);
  CHECK(batch.users == exp_users);
  CHECK(batch.inputs == exp_inputs);
  CHECK(batch.targets == exp_targets);
  for (std::size_t r = 0; r < all.size(); ++r) {
    const ItemSet seen(split.train[std::size_t(batch.users[r])], split.num_items);
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t k = 0; k < 3; ++k) {
        const ItemId neg = batch.negatives[(r * 3 + j) * 3 + k];
        if (batch.targets[r * 3 + j] == 0) {
          REQUIRE(neg == 0);
        } else {
          REQUIRE(neg >= 1);
          REQUIRE(!seen.contains(neg));
        }
      }
  }
  // Shuffled order, seeded; a window's row does not depend on the batch it is in.
  const std::vector<std::size_t> order = sampler.epoch_order(2);
  CHECK(std::is_permutation(order.begin(), order.end(), all.begin()));
  CHECK(order == sampler.epoch_order(2));
  CHECK(order != sampler.epoch_order(3));
  CaserBatch one;
  sampler.fill({order[7]}, 2, one);
  CHECK(std::equal(one.negatives.begin(), one.negatives.end(), batch.negatives.begin() + std::ptrdiff_t(order[7] * 9)));
  CHECK(one.inputs == std::vector<ItemId>(exp_inputs.begin() + std::ptrdiff_t(order[7] * 5),
                                          exp_inputs.begin() + std::ptrdiff_t(order[7] * 5 + 5)));
  CHECK_THROWS_AS(sampler.window(sampler.num_windows()), chord::Error);
}

TEST_CASE("evaluation candidates: 100 sampled negatives and the full-ranking exclusions", "[data][candidates]") {
  const SyntheticData syn = small_synthetic(21, 300, 400);
  const LeaveOneOutSplit split = leave_one_out(syn.dataset);
  const std::vector<std::int32_t> users = split.evaluated_users();
  REQUIRE(users.size() > 100);
  bool phases_differ = false, seeds_differ = false;
  for (std::int32_t u : users) {
    const std::vector<ItemId> negs = sampled_negatives(split, u, Phase::test, 1234);
    REQUIRE(negs.size() == 100);
    REQUIRE(std::adjacent_find(negs.begin(), negs.end(), std::greater_equal<ItemId>()) == negs.end());  // distinct
    const std::vector<ItemId> seen = split.all_items(u);
    for (ItemId n : negs) {
      REQUIRE((n >= 1 && n <= split.num_items));
      REQUIRE(std::find(seen.begin(), seen.end(), n) == seen.end());
    }
    REQUIRE(sampled_negatives(split, u, Phase::test, 1234) == negs);  // per-user seeded
    phases_differ |= sampled_negatives(split, u, Phase::validation, 1234) != negs;
    seeds_differ |= sampled_negatives(split, u, Phase::test, 1235) != negs;
  }
  CHECK(phases_differ);
  CHECK(seeds_differ);
  CHECK_THROWS_AS(sampled_negatives(split, users[0], Phase::test, 1, 400), chord::Error);  // not enough items

  // Full ranking: padding and history excluded; the target stays even when it is also in the history.
  Dataset d{"hand", 1, 8, {{2, 3, 2, 5, 2}}, {1}, {}};
  const LeaveOneOutSplit s = leave_one_out(d);  // train {2 3 2}, valid 5, test 2
  CHECK(full_ranking_exclusions(s, 0, Phase::validation) == std::vector<std::uint8_t>{1, 0, 1, 1, 0, 0, 0, 0, 0});
  CHECK(full_ranking_exclusions(s, 0, Phase::test) == std::vector<std::uint8_t>{1, 0, 0, 1, 0, 1, 0, 0, 0});
}

TEST_CASE("metrics: ranks, HR@K and NDCG@K on hand-computable rankings", "[data][metrics]") {
  // 2 negatives strictly above, 1 tie (counted against the model): rank 3.
  const std::vector<float> negatives = {0.9f, 0.1f, 0.5f, 0.7f, -1.0f};
  CHECK(rank_among(0.5f, negatives) == 3);
  CHECK(rank_among(1.0f, negatives) == 0);
  CHECK(rank_among(-2.0f, negatives) == 5);
  CHECK(rank_among(0.0f, std::vector<float>(7, 0.0f)) == 7);  // a constant model ranks last
  CHECK(hit_at(3, 5) == 1.0);
  CHECK(hit_at(5, 5) == 0.0);
  CHECK(ndcg_at(0, 10) == 1.0);
  CHECK(ndcg_at(3, 5) == Approx(1.0 / std::log2(5.0)));
  CHECK(ndcg_at(10, 10) == 0.0);
  CHECK_THROWS_AS(rank_among(std::nanf(""), negatives), chord::Error);
  CHECK_THROWS_AS(rank_among(0.5f, std::vector<float>{0.1f, std::nanf("")}), chord::Error);
  CHECK(rank_among(0.5f, std::vector<float>{-std::numeric_limits<float>::infinity()}) == 0);

  // Full ranking over items 1..6; item 0 (padding) is ignored whatever its score.
  const std::vector<float> scores = {100.f, 0.3f, 0.9f, 0.8f, 0.3f, 0.1f, 0.95f};
  CHECK(rank_full(scores.data(), 6, 1, nullptr) == 4);  // 0.9, 0.8, 0.95 above; item 4 ties
  const std::vector<std::uint8_t> excluded = {1, 0, 1, 0, 0, 0, 1};
  CHECK(rank_full(scores.data(), 6, 1, excluded.data()) == 2);  // items 3 and 4 remain above or tied
  CHECK(rank_full(scores.data(), 6, 6, nullptr) == 0);
  CHECK_THROWS_AS(rank_full(scores.data(), 6, 2, excluded.data()), chord::Error);  // target excluded
  CHECK_THROWS_AS(rank_full(scores.data(), 6, 7, nullptr), chord::Error);
  std::vector<float> with_nan = scores;
  with_nan[5] = std::nanf("");
  CHECK_THROWS_AS(rank_full(with_nan.data(), 6, 1, nullptr), chord::Error);

  // Aggregation: ranks 0, 3, 7, 12 -> HR@5 = 2/4, HR@10 = 3/4, NDCG from the definition.
  RankingAccumulator a, b, all;
  for (std::int64_t r : {0, 3}) a.add(r);
  for (std::int64_t r : {7, 12}) b.add(r);
  for (std::int64_t r : {12, 7, 3, 0}) all.add(r);
  RankingAccumulator ab = a, ba = b;
  ab.merge(b);
  ba.merge(a);
  const RankingMetrics m = ab.result();
  CHECK(m.users == 4);
  CHECK(m.hr_5 == 0.5);
  CHECK(m.hr_10 == 0.75);
  CHECK(m.ndcg_5 == Approx((1.0 + 1.0 / std::log2(5.0)) / 4.0));
  CHECK(m.ndcg_10 == Approx((1.0 + 1.0 / std::log2(5.0) + 1.0 / std::log2(9.0)) / 4.0));
  // Merge order never changes a bit.
  CHECK(ba.result().ndcg_10 == m.ndcg_10);
  CHECK(all.result().ndcg_10 == m.ndcg_10);
  CHECK(RankingAccumulator().result().hr_10 == 0.0);
  CHECK_THROWS_AS(a.add(-1), chord::Error);
}

namespace {

// Full-ranking metrics (test phase, history excluded) of a scoring rule score(user, history, scores).
template <typename Score>
RankingAccumulator full_ranking(const LeaveOneOutSplit& split, Score score) {
  RankingAccumulator acc;
  std::vector<float> scores(std::size_t(split.num_items) + 1);
  std::vector<std::uint8_t> excluded;
  for (std::int32_t u : split.evaluated_users()) {
    score(u, split.history(u, Phase::test), scores);
    full_ranking_exclusions(split, u, Phase::test, excluded);
    acc.add(rank_full(scores.data(), split.num_items, split.test[std::size_t(u)], excluded.data()));
  }
  return acc;
}

}  // namespace

TEST_CASE("synthetic: seeded, well-formed, and its transitions are learnable", "[data][synthetic]") {
  SyntheticOptions o;
  o.num_users = 1500;
  o.num_items = 400;
  o.num_clusters = 8;
  o.min_length = 20;
  o.max_length = 40;
  o.seed = 17;
  const SyntheticData syn = make_synthetic(o);
  const Dataset& d = syn.dataset;
  check_dataset(d);
  CHECK(d.num_users == 1500);
  for (const auto& s : d.sequences) REQUIRE((s.size() >= 20 && s.size() <= 40));
  for (std::int32_t c : syn.cluster) REQUIRE((c >= 0 && c < 8));
  CHECK(make_synthetic(o).dataset.sequences == d.sequences);  // deterministic
  SyntheticOptions other = o;
  other.seed = 18;
  CHECK(make_synthetic(other).dataset.sequences != d.sequences);
  other = o;
  other.num_clusters = 0;
  CHECK_THROWS_AS(make_synthetic(other), chord::Error);

  const LeaveOneOutSplit split = leave_one_out(d);
  const auto n = std::size_t(d.num_items) + 1;
  // Popularity and first-order transition counts from training data only, globally and per cluster.
  std::vector<float> popularity(n, 0.f);
  std::vector<float> transitions(n * n, 0.f);
  std::vector<float> cluster_transitions(8 * n * n, 0.f);
  for (std::int32_t u = 0; u < split.num_users; ++u) {
    const auto& t = split.train[std::size_t(u)];
    const auto c = std::size_t(syn.cluster[std::size_t(u)]);
    for (std::size_t i = 0; i < t.size(); ++i) {
      popularity[std::size_t(t[i])] += 1.f;
      if (i + 1 < t.size()) {
        transitions[std::size_t(t[i]) * n + std::size_t(t[i + 1])] += 1.f;
        cluster_transitions[(c * n + std::size_t(t[i])) * n + std::size_t(t[i + 1])] += 1.f;
      }
    }
  }
  const float max_pop = *std::max_element(popularity.begin(), popularity.end());
  const RankingAccumulator pop = full_ranking(split, [&](std::int32_t, const std::vector<ItemId>&, std::vector<float>& s) {
    s = popularity;
  });
  // Counts of the last item's successors; popularity only breaks ties.
  const RankingAccumulator markov = full_ranking(split, [&](std::int32_t, const std::vector<ItemId>& h,
                                                        std::vector<float>& s) {
    const std::size_t row = std::size_t(h.back()) * n;
    for (std::size_t i = 0; i < n; ++i) s[i] = transitions[row + i] + 0.5f * popularity[i] / max_pop;
  });
  const RankingAccumulator cluster = full_ranking(split, [&](std::int32_t u, const std::vector<ItemId>& h,
                                                         std::vector<float>& s) {
    const std::size_t row = (std::size_t(syn.cluster[std::size_t(u)]) * n + std::size_t(h.back())) * n;
    for (std::size_t i = 0; i < n; ++i) s[i] = cluster_transitions[row + i] + 0.5f * popularity[i] / max_pop;
  });
  INFO("HR@10 / NDCG@10: popularity " << pop.hit_rate(10) << " / " << pop.ndcg(10) << ", first-order Markov "
                                      << markov.hit_rate(10) << " / " << markov.ndcg(10) << ", per-cluster Markov "
                                      << cluster.hit_rate(10) << " / " << cluster.ndcg(10));
  CHECK(markov.hit_rate(10) > pop.hit_rate(10) + 0.3);
  // The planted user-specific structure: knowing the user's cluster ranks the true successor higher.
  CHECK(cluster.ndcg(10) > markov.ndcg(10) + 0.05);
}
