// chord/io/profile_message.hpp: the profile message, what the device sends the cloud.
//
// The device encodes its user's recent interactions into a profile vector u with the frozen backbone
// (docs/design.md#chord-profile) and asks for a strategy: it sends u, the average bits per weight it can afford and
// the palette it will decode with. The cloud answers with a strategy packet (io/strategy_packet.hpp).
// Neither the interactions nor a user id leave the device: only d floats.
//
// Layout (little-endian, byte exact):
//
//   offset   size   field
//   0        4      magic "CHRP"
//   4        2      version u16 = 1
//   6        2      reserved u16 = 0
//   8        8      model fingerprint u64 (core/strategy.hpp model_fingerprint): the backbone the
//                   profile was computed with; the cloud refuses a profile of another model
//   16       4      budget f32: average bits per weight the device can afford, finite, in [0, 8]
//   20       4      palette u8[4]: the device's palette (non-decreasing, widths from {0, 2, 4, 8})
//   24       4      profile dimension d u32
//   28       4 d    profile f32[d], every value finite, |value| <= InputLimits::max_magnitude (2^50)
//   28 + 4d  4      CRC-32 u32 of all preceding bytes (core/checksum.hpp)
//
// Bytes 0..24 and the checksum are the envelope both wire formats share (io/envelope.hpp). The decoder
// is strict in the envelope's order (framing, then checksum, then contents), so that every single-byte
// corruption and every truncation is rejected, and a corrupted byte is reported as corruption rather
// than as a misleading field error. Every problem is a chord::Error of the form
//   profile message '<source>': byte <offset> (<field>): <what is wrong>
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "chord/core/error.hpp"
#include "chord/core/limits.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/atomic_file.hpp"
#include "chord/io/bytes.hpp"
#include "chord/io/envelope.hpp"

namespace chord {

inline constexpr std::size_t kProfileHeaderBytes = kEnvelopeHeaderBytes + 4;  // the envelope + dimension
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
  return kProfileHeaderBytes + 4 * profile_dim + kEnvelopeChecksumBytes;
}

inline std::vector<std::uint8_t> encode_profile(const ProfileMessage& message) {
  check_envelope({message.fingerprint, message.budget, message.palette}, "encode_profile");
  CHORD_CHECK(message.profile.size() <= kMaxProfileDim, "encode_profile: profile of ", message.profile.size(),
              " values exceeds the limit of ", kMaxProfileDim);
  for (std::size_t i = 0; i < message.profile.size(); ++i)
    CHORD_CHECK(std::isfinite(message.profile[i]), "encode_profile: profile value ", i, " is not finite (",
                message.profile[i], ")");
  std::vector<std::uint8_t> out;
  out.reserve(profile_message_size(message.profile.size()));
  put_envelope_header(out, kProfileFormat, {message.fingerprint, message.budget, message.palette});
  bytes::put_u32(out, std::uint32_t(message.profile.size()));
  for (float v : message.profile) bytes::put_f32(out, v);
  put_envelope_checksum(out);
  return out;
}

// Reads a profile message strictly against what the cloud expects (see the header comment).
inline ProfileMessage decode_profile(const std::uint8_t* data, std::size_t size, const ProfileExpectation& expect,
                                     const std::string& source, const InputLimits& limits = default_limits()) {
  CHORD_CHECK(data != nullptr || size == 0, "profile message '", source, "': null data");
  bytes::Reader in(data, size, "profile message", source);

  // --- 1. framing: the envelope's header, dimension, values ---------------------------------------
  const EnvelopeHeader header = read_envelope_header(in, kProfileFormat);
  const std::size_t dim_at = in.offset();
  const auto dim = std::uint32_t(in.read_le(4, "profile dimension"));
  if (dim > kMaxProfileDim)
    in.fail(dim_at, "profile dimension", "profile dimension ", dim, " exceeds the limit of ", kMaxProfileDim);
  const std::size_t values_at = in.offset();
  if (4 * std::size_t(dim) > in.left())
    in.fail(values_at, "profile", "truncated: ", dim, " values need ", 4 * std::size_t(dim),
            " bytes, the message has ", in.left(), " left (message size ", in.size(), ")");
  const std::uint8_t* values = in.take(4 * std::size_t(dim), "profile");

  // --- 2. checksum, before any field is interpreted ---------------------------------------------
  read_envelope_checksum(in, data, "a message of ", dim, " profile values");

  // --- 3. contents -------------------------------------------------------------------------------
  const Envelope envelope = check_envelope_header(in, header, kProfileFormat.version, expect.fingerprint,
                                                  "profile is for model ", ", this cloud serves model ");
  if (dim != expect.profile_dim)
    in.fail(dim_at, "profile dimension", "profile dimension mismatch: the message has ", dim,
            " values, the hypernetworks take ", expect.profile_dim);
  ProfileMessage message;
  message.fingerprint = envelope.fingerprint, message.budget = envelope.budget, message.palette = envelope.palette;
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

}  // namespace chord
