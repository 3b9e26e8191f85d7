// chord/core/precision.hpp: the weight bit-widths of the library and their integer ranges.
//
// Weights are quantized per output channel, symmetrically (zero-point 0), to signed codes
//   q in [-2^(b-1), 2^(b-1) - 1]      for b in {2, 4, 8},
// and b = 0 prunes the channel (its output is 0). fp32 stays available as the unquantized reference and
// is not a `bits` value. Packed storage keeps codes with an unsigned offset u = q + 2^(b-1) (see
// packed.hpp), so that an unsigned-by-signed dot-product instruction (vpdpbusd) takes them as they are.
#pragma once

#include <array>
#include <cstdint>

#include "chord/core/error.hpp"

namespace chord {

// The bit-widths a channel can have, in increasing order.
inline constexpr std::array<int, 4> kWeightBits = {0, 2, 4, 8};
// The widths that are stored and run by a kernel (0 is pruned and costs nothing).
inline constexpr std::array<int, 3> kPackedBits = {8, 4, 2};

constexpr bool is_weight_bits(int bits) { return bits == 0 || bits == 2 || bits == 4 || bits == 8; }
constexpr bool is_packed_bits(int bits) { return bits == 2 || bits == 4 || bits == 8; }

// Largest code of a b-bit signed symmetric quantizer: 1, 7, 127 for b = 2, 4, 8 (0 for b = 0).
constexpr int code_max(int bits) { return bits == 0 ? 0 : (1 << (bits - 1)) - 1; }
// Smallest code: -2, -8, -128 (0 for b = 0).
constexpr int code_min(int bits) { return bits == 0 ? 0 : -(1 << (bits - 1)); }
// Offset added to a code for unsigned storage: u = q + code_offset(b) is in [0, 2^b - 1].
constexpr int code_offset(int bits) { return bits == 0 ? 0 : 1 << (bits - 1); }

inline void check_weight_bits(int bits, const char* where) {
  CHORD_CHECK(is_weight_bits(bits), where, ": bit-width ", bits, " is not one of 0, 2, 4, 8");
}

}  // namespace chord
