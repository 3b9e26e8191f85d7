// chord/personalize/profile_message.hpp: the profile message, what the device sends the cloud.
//
// The device encodes its user's recent interactions into a profile vector u with the frozen backbone
// (DESIGN section 7.2) and asks for a strategy: it sends u, the average bits per weight it can afford and
// the palette it will decode with. The cloud answers with a strategy packet (io/strategy_packet.hpp).
// Neither the interactions nor a user id leave the device: only d floats.
//
// Layout (little-endian, byte exact):
//
//   offset   size   field
//   0        4      magic "CHRP"
//   4        2      version u16 = 1
//   6        2      reserved u16 = 0
//   8        8      model fingerprint u64 (io/strategy_packet.hpp model_fingerprint): the backbone the
//                   profile was computed with; the cloud refuses a profile of another model
//   16       4      budget f32: average bits per weight the device can afford, finite, in [0, 8]
//   20       4      palette u8[4]: the device's palette (non-decreasing, widths from {0, 2, 4, 8})
//   24       4      profile dimension d u32
//   28       4 d    profile f32[d], every value finite, |value| <= InputLimits::max_magnitude (2^50)
//   28 + 4d  4      CRC-32 u32 of all preceding bytes (core/checksum.hpp)
//
// The decoder is strict in the order of decode_strategy (framing, then checksum, then contents), so
// that every single-byte corruption and every truncation is rejected, and a corrupted byte is reported
// as corruption rather than as a misleading field error. Every problem is a chord::Error of the form
//   profile message '<source>': byte <offset> (<field>): <what is wrong>
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/core/error.hpp"
#include "chord/core/limits.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/bytes.hpp"
#include "chord/io/strategy_packet.hpp"

namespace chord::personalize {

inline constexpr char kProfileMagic[4] = {'C', 'H', 'R', 'P'};
inline constexpr std::uint16_t kProfileVersion = 1;
inline constexpr std::size_t kProfileHeaderBytes = 28;  // magic .. profile dimension
// A profile is a hidden state (d = 50..512 in the models): 1 << 20 floats is far beyond any real one
// and keeps a corrupted dimension from asking for gigabytes before the bounds check.
inline constexpr std::uint32_t kMaxProfileDim = 1u << 20;

struct ProfileMessage {
  std::uint64_t fingerprint = 0;
  float budget = 0.0f;  // average bits per weight under `palette`
  Palette palette = kStandardPalette;
  std::vector<float> profile;  // u: [d]
};

// What the cloud knows before it reads a profile: the backbone it serves and its profile dimension.
struct ProfileExpectation {
  std::uint64_t fingerprint = 0;
  std::size_t profile_dim = 0;
};

inline std::size_t profile_message_size(std::size_t profile_dim) {
  return kProfileHeaderBytes + 4 * profile_dim + 4;
}

inline std::vector<std::uint8_t> encode_profile(const ProfileMessage& message) {
  check_palette(message.palette, "encode_profile");
  CHORD_CHECK(std::isfinite(message.budget) && message.budget >= 0.0f && message.budget <= kMaxStrategyBudget,
              "encode_profile: budget ", message.budget, " bits per weight is not a finite number in [0, 8]");
  CHORD_CHECK(message.profile.size() <= kMaxProfileDim, "encode_profile: profile of ", message.profile.size(),
              " values exceeds the limit of ", kMaxProfileDim);
  for (std::size_t i = 0; i < message.profile.size(); ++i)
    CHORD_CHECK(std::isfinite(message.profile[i]), "encode_profile: profile value ", i, " is not finite (",
                message.profile[i], ")");
  std::vector<std::uint8_t> out;
  out.reserve(profile_message_size(message.profile.size()));
  for (char c : kProfileMagic) out.push_back(std::uint8_t(c));
  bytes::put_u16(out, kProfileVersion);
  bytes::put_u16(out, 0);  // reserved
  bytes::put_u64(out, message.fingerprint);
  bytes::put_f32(out, message.budget);
  for (std::uint8_t width : message.palette) out.push_back(width);
  bytes::put_u32(out, std::uint32_t(message.profile.size()));
  for (float v : message.profile) bytes::put_f32(out, v);
  bytes::put_u32(out, crc32(out.data(), out.size()));
  return out;
}

// Reads a profile message strictly against what the cloud expects (see the header comment).
inline ProfileMessage decode_profile(const std::uint8_t* data, std::size_t size, const ProfileExpectation& expect,
                                     const std::string& source, const InputLimits& limits = default_limits()) {
  CHORD_CHECK(data != nullptr || size == 0, "profile message '", source, "': null data");
  bytes::Reader in(data, size, "profile message", source);

  // --- 1. framing: magic, version, dimension, values, checksum, nothing after it -----------------
  const std::uint8_t* magic = in.take(4, "magic");
  if (std::memcmp(magic, kProfileMagic, 4) != 0)
    in.fail(0, "magic", "bad magic: expected \"CHRP\", found bytes ", bytes::hex_bytes(magic, 4),
            " (not a profile message)");
  const std::size_t version_at = in.offset();
  const auto version = std::uint16_t(in.read_le(2, "version"));
  if (version != kProfileVersion)
    in.fail(version_at, "version", "unsupported version ", version, " (this reader understands version ",
            kProfileVersion, ")");
  const std::size_t reserved_at = in.offset();
  const auto reserved = std::uint16_t(in.read_le(2, "reserved"));
  const std::size_t fingerprint_at = in.offset();
  const std::uint64_t fingerprint = in.read_le(8, "model fingerprint");
  const std::size_t budget_at = in.offset();
  const float budget = in.read_f32("budget");
  const std::size_t palette_at = in.offset();
  const std::uint8_t* palette_bytes = in.take(4, "palette");
  const std::size_t dim_at = in.offset();
  const auto dim = std::uint32_t(in.read_le(4, "profile dimension"));
  if (dim > kMaxProfileDim)
    in.fail(dim_at, "profile dimension", "profile dimension ", dim, " exceeds the limit of ", kMaxProfileDim);
  const std::size_t values_at = in.offset();
  if (4 * std::size_t(dim) > in.left())
    in.fail(values_at, "profile", "truncated: ", dim, " values need ", 4 * std::size_t(dim),
            " bytes, the message has ", in.left(), " left (message size ", in.size(), ")");
  const std::uint8_t* values = in.take(4 * std::size_t(dim), "profile");
  const std::size_t checksum_at = in.offset();
  const auto stored_crc = std::uint32_t(in.read_le(4, "checksum"));
  if (in.left() != 0)
    in.fail(in.offset(), "end", in.left(), " trailing bytes after the checksum (a message of ", dim,
            " profile values is ", in.offset(), " bytes)");

  // --- 2. checksum, before any field is interpreted ---------------------------------------------
  const std::uint32_t computed_crc = crc32(data, checksum_at);
  if (stored_crc != computed_crc)
    in.fail(checksum_at, "checksum", "checksum mismatch: stored ", bytes::hex32(stored_crc), ", computed ",
            bytes::hex32(computed_crc), " (the message is corrupted)");

  // --- 3. contents -------------------------------------------------------------------------------
  if (reserved != 0)
    in.fail(reserved_at, "reserved", "reserved field is ", reserved, ", must be 0 in version ", kProfileVersion);
  if (fingerprint != expect.fingerprint)
    in.fail(fingerprint_at, "model fingerprint", "profile is for model ", bytes::hex64(fingerprint),
            ", this cloud serves model ", bytes::hex64(expect.fingerprint));
  if (dim != expect.profile_dim)
    in.fail(dim_at, "profile dimension", "profile dimension mismatch: the message has ", dim,
            " values, the hypernetworks take ", expect.profile_dim);
  ProfileMessage message;
  message.fingerprint = fingerprint;
  std::memcpy(message.palette.data(), palette_bytes, kLevels);
  if (!is_valid_palette(message.palette))
    in.fail(palette_at, "palette", "palette {", int(message.palette[0]), ", ", int(message.palette[1]), ", ",
            int(message.palette[2]), ", ", int(message.palette[3]),
            "} is invalid: it must be a non-decreasing list of widths from {0, 2, 4, 8}");
  if (!(std::isfinite(budget) && budget >= 0.0f && budget <= kMaxStrategyBudget))
    in.fail(budget_at, "budget", "budget ", budget, " bits per weight is not a finite number in [0, ",
            kMaxStrategyBudget, "]");
  message.budget = budget;
  message.profile.resize(dim);
  for (std::size_t i = 0; i < dim; ++i) {
    const std::uint8_t* p = values + 4 * i;
    const float v = bytes::bits_float(std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                                      std::uint32_t(p[3]) << 24);
    if (!std::isfinite(v)) in.fail(values_at + 4 * i, "profile", "profile value ", i, " is not finite (", v, ")");
    if (std::fabs(v) > limits.max_magnitude)  // the importance squares it (core/limits.hpp)
      in.fail(values_at + 4 * i, "profile", "profile value ", i, " (", v, ") is beyond ", limits.max_magnitude,
              " in magnitude (InputLimits::max_magnitude)");
    message.profile[i] = v;
  }
  return message;
}

inline ProfileMessage decode_profile(const std::vector<std::uint8_t>& message, const ProfileExpectation& expect,
                                     const std::string& source) {
  return decode_profile(message.data(), message.size(), expect, source);
}

// File forms (a device that queues its request on disk, tests): atomic writes, errors name the file.
inline void save_profile(const std::string& path, const ProfileMessage& message) {
  std::vector<std::uint8_t> out;
  try {
    out = encode_profile(message);
  } catch (const Error& e) {
    throw Error(chord::detail::error_message("cannot save profile '", path, "': ", e.what()));
  }
  write_file_atomic(path, out);
}
inline ProfileMessage load_profile(const std::string& path, const ProfileExpectation& expect) {
  const std::vector<std::uint8_t> message = read_file(path);
  return decode_profile(message.data(), message.size(), expect, path);
}

}  // namespace chord::personalize
