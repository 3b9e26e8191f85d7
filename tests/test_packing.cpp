// Packed formats: round trip for every width and awkward shapes; panel layout; padding; code sums.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "chord/core/packed.hpp"
#include "test_helpers.hpp"

using namespace chord;

namespace {
std::vector<std::int8_t> random_codes(std::size_t count, int bits, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(code_min(bits), code_max(bits));
  std::vector<std::int8_t> codes(count);
  for (auto& c : codes) c = static_cast<std::int8_t>(dist(rng));
  return codes;
}
}  // namespace

TEST_CASE("packing round trip for every width and awkward shapes", "[packing]") {
  for (int bits : {8, 4, 2})
    for (std::size_t n : test::kAwkwardSizes)
      for (std::size_t k : {1, 2, 3, 5, 7, 9, 10, 15, 16, 17, 31, 33, 63, 65}) {
        const auto codes = random_codes(n * k, bits, std::uint32_t(bits * 10007 + n * 101 + k));
        const auto scales = test::random_normal(n, std::uint32_t(n + k));
        const PackedMatrix p(bits, codes.data(), scales.data(), n, k);
        INFO("bits " << bits << " n " << n << " k " << k);
        REQUIRE(p.rows_padded() % kTileN == 0);
        REQUIRE(p.cols_padded() % group_k(bits) == 0);
        REQUIRE(p.bytes() == p.rows_padded() * p.cols_padded() * bits / 8);
        for (std::size_t r = 0; r < p.rows_padded(); ++r) {
          std::int32_t sum = 0;
          for (std::size_t c = 0; c < p.cols_padded(); ++c) {
            const int expected = (r < n && c < k) ? codes[r * k + c] : 0;  // padding decodes to 0
            REQUIRE(p.code(r, c) == expected);
            sum += expected;
          }
          REQUIRE(p.code_sums()[r] == sum);
          REQUIRE(p.scales()[r] == (r < n ? scales[r] : 0.0f));
        }
      }
}

TEST_CASE("packed panel layout: AND + shift unpacking gives the int8 panel", "[packing]") {
  // Channel c, column j of a 16 x group_k matrix: byte 4c + j%4 of the panel, plane j/4.
  for (int bits : {8, 4, 2}) {
    const std::size_t k = group_k(bits);
    const auto codes = random_codes(kTileN * k, bits, 99u + bits);
    std::vector<float> scales(kTileN, 1.0f);
    const PackedMatrix p(bits, codes.data(), scales.data(), kTileN, k);
    REQUIRE(p.bytes() == kPanelBytes);
    const unsigned mask = (1u << bits) - 1u;
    for (std::size_t c = 0; c < kTileN; ++c)
      for (std::size_t j = 0; j < k; ++j) {
        const unsigned byte = p.data()[c * kDot + j % kDot];
        const int u = static_cast<int>((byte >> ((j / kDot) * bits)) & mask);
        REQUIRE(u - code_offset(bits) == codes[c * k + j]);
      }
  }
}

TEST_CASE("packing rejects codes out of range and bad widths", "[packing]") {
  std::vector<std::int8_t> codes = {0, 1, 2, -3};
  std::vector<float> scales = {1.0f, 1.0f};
  REQUIRE_THROWS_WITH(PackedMatrix(2, codes.data(), scales.data(), 2, 2),
                      Catch::Contains("code 2 at channel 1, column 0"));
  REQUIRE_THROWS_WITH(PackedMatrix(0, codes.data(), scales.data(), 2, 2), Catch::Contains("cannot be packed"));
  REQUIRE_NOTHROW(PackedMatrix(4, codes.data(), scales.data(), 2, 2));
}

TEST_CASE("packing empty matrices", "[packing]") {
  for (int bits : {8, 4, 2}) {
    const PackedMatrix none(bits, nullptr, nullptr, 0, 0);
    REQUIRE(none.bytes() == 0);
    REQUIRE(none.tiles() == 0);
    std::vector<float> scales(3, 1.0f);
    const PackedMatrix no_k(bits, nullptr, scales.data(), 3, 0);
    REQUIRE(no_k.groups() == 0);
    REQUIRE(no_k.tiles() == 1);
  }
}
