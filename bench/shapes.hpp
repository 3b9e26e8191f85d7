// bench/shapes.hpp: the shapes every area and every peer runs, from the real layers (docs/design.md#benchmarks).
// y[M, N] = x[M, K] * W[N, K]^T.
#pragma once

#include <algorithm>
#include <array>
#include <vector>

#include "common.hpp"

namespace chord::bench {

// SASRec layers: d = 64 (MovieLens, L = 200) and d = 50; one token (M = 1, incremental inference)
// and a whole sequence (M = 200).
inline const std::vector<Shape> kSasrecShapes = {{1, 64, 64}, {200, 64, 64}, {1, 50, 50}, {200, 50, 50}};

// Item scoring: one user's hidden state against the whole catalogue (ML-100K: 3,416 items in the
// paper's setting; Beauty: 12,101), d = 64.
inline const std::vector<Shape> kItemScoringShapes = {{1, 3416, 64}, {1, 12101, 64}};

// The oneDNN comparison grid: M in {1, 16, 200} x N = K in {64, 256, 1024}.
inline std::vector<Shape> peer_grid_shapes() {
  std::vector<Shape> shapes;
  for (std::size_t m : {1, 16, 200})
    for (std::size_t nk : {64, 256, 1024}) shapes.push_back({m, nk, nk});
  return shapes;
}

// Large square gemm: compute-bound at every width.
inline const Shape kSquareShape = {1024, 1024, 1024};

// A gemv whose packed weights are at least twice a 32 MiB LLC at every width: 2-bit is 64 MiB,
// 8-bit 256 MiB. Its time is the time to stream the weights from DRAM.
inline const Shape kBeyondLlcGemv = {1, 65536, 4096};

// Every gemm/gemv shape, without duplicates, in the order above.
inline std::vector<Shape> all_gemm_shapes() {
  std::vector<Shape> all;
  auto add = [&](const Shape& s) {
    const bool seen = std::any_of(all.begin(), all.end(),
                                  [&](const Shape& t) { return t.m == s.m && t.n == s.n && t.k == s.k; });
    if (!seen) all.push_back(s);
  };
  for (const auto& s : kSasrecShapes) add(s);
  for (const auto& s : kItemScoringShapes) add(s);
  for (const auto& s : peer_grid_shapes()) add(s);
  add(kSquareShape);
  add(kBeyondLlcGemv);
  return all;
}

// Mixed-precision matrices averaging exactly 3 bits per weight (when N divides evenly), with the
// fraction of channels at 8, 4, 2 and 0 bits.
struct Mix {
  const char* name;
  std::array<double, 4> fraction;  // of channels at {8, 4, 2, 0} bits
};
inline const std::vector<Mix> kMixes = {
    {"w42", {0.0, 0.5, 0.5, 0.0}},            // half 4-bit, half 2-bit:           4/2 + 2/2 = 3
    {"w8420", {0.125, 0.375, 0.25, 0.25}},    // 1/8 at 8, 3/8 at 4, 1/4 at 2, 1/4 pruned: 1 + 1.5 + 0.5 = 3
};

// Where the mixed matrices run: the bandwidth-bound gemv, a compute-bound gemm, and the real layers.
inline const std::vector<Shape> kMixedShapes = {kBeyondLlcGemv, {200, 1024, 1024}, {200, 64, 64}, {1, 12101, 64}};

}  // namespace chord::bench
