// chord/io/envelope.hpp: the envelope both wire formats share, written and read in one place.
//
// The strategy packet (cloud -> device, io/strategy_packet.hpp) and the profile message (device ->
// cloud, io/profile_message.hpp) are
//
//   offset   size   field
//   0        4      magic u8[4]: "CHRS" | "CHRP"
//   4        2      version u16
//   6        2      reserved u16 = 0
//   8        8      model fingerprint u64 (core/strategy.hpp model_fingerprint): whose layers these are
//   16       4      budget f32: average bits per weight, finite, in [0, 8]
//   20       4      palette u8[4]: non-decreasing widths from {0, 2, 4, 8}
//   24       ...    the format's payload
//   ...      4      CRC-32 u32 of every preceding byte (core/checksum.hpp)
//
// little-endian, no padding. Decoders are strict in one fixed order, the same for both: (1) framing
// (magic, version, the payload's sizes, the checksum's place, nothing after it), (2) the checksum,
// before any field is interpreted, so that a corrupted byte is reported as corruption, (3) the contents
// against what the reader expects. Errors read "<kind> '<source>': byte <offset> (<field>): <what>".
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "chord/core/checksum.hpp"
#include "chord/core/error.hpp"
#include "chord/core/strategy.hpp"
#include "chord/io/bytes.hpp"

namespace chord {

inline constexpr std::size_t kEnvelopeHeaderBytes = 24;  // magic .. palette
inline constexpr std::size_t kEnvelopeChecksumBytes = 4;
inline constexpr float kMaxEnvelopeBudget = 8.0f;  // the widest weight width

// Which format an envelope carries.
struct EnvelopeFormat {
  char magic[4];
  std::uint16_t version;
  const char* name;  // "strategy packet", "profile message": how a wrong magic is described
};

// The two formats (their payloads: io/strategy_packet.hpp, io/profile_message.hpp). File-type sniffing
// (io/file_kind.hpp) reads the same magics.
inline constexpr EnvelopeFormat kStrategyFormat = {{'C', 'H', 'R', 'S'}, 1, "strategy packet"};
inline constexpr EnvelopeFormat kProfileFormat = {{'C', 'H', 'R', 'P'}, 1, "profile message"};

// What every envelope says besides its payload.
struct Envelope {
  std::uint64_t fingerprint = 0;
  float budget = 0.0f;  // average bits per weight under `palette`
  Palette palette = kStandardPalette;
};

inline bool is_valid_budget(float budget) {
  return std::isfinite(budget) && budget >= 0.0f && budget <= kMaxEnvelopeBudget;
}

// Writers: what an envelope may carry is checked before a byte is written.
inline void check_envelope(const Envelope& e, const std::string& where) {
  check_palette(e.palette, where);
  CHORD_CHECK(is_valid_budget(e.budget), where, ": budget ", e.budget, " bits per weight is not a finite number in [0, ",
              kMaxEnvelopeBudget, "]");
}
inline void put_envelope_header(std::vector<std::uint8_t>& out, const EnvelopeFormat& format, const Envelope& e) {
  // Byte by byte: GCC 12 at -O3 misreads a 4-byte range insert after reserve() as an overflow.
  for (char c : format.magic) out.push_back(std::uint8_t(c));
  bytes::put_u16(out, format.version);
  bytes::put_u16(out, 0);  // reserved
  bytes::put_u64(out, e.fingerprint);
  bytes::put_f32(out, e.budget);
  for (std::uint8_t width : e.palette) out.push_back(width);
}
inline void put_envelope_checksum(std::vector<std::uint8_t>& out) { bytes::put_u32(out, crc32(out.data(), out.size())); }

// The header as read in step 1, with where each field sits (for step 3's messages).
struct EnvelopeHeader {
  std::uint16_t reserved = 0;
  std::uint64_t fingerprint = 0;
  float budget = 0.0f;
  const std::uint8_t* palette = nullptr;
  std::size_t reserved_at = 0, fingerprint_at = 0, budget_at = 0, palette_at = 0;
};

// Step 1, the header's framing: the magic and the version; the other fields are read, not yet judged.
inline EnvelopeHeader read_envelope_header(bytes::Reader& in, const EnvelopeFormat& format) {
  const std::uint8_t* magic = in.take(4, "magic");
  if (std::memcmp(magic, format.magic, 4) != 0)
    in.fail(0, "magic", "bad magic: expected \"", std::string_view(format.magic, 4), "\", found bytes ",
            bytes::hex_bytes(magic, 4), " (not a ", format.name, ")");
  const std::size_t version_at = in.offset();
  const auto version = std::uint16_t(in.read_le(2, "version"));
  if (version != format.version)
    in.fail(version_at, "version", "unsupported version ", version, " (this reader understands version ",
            format.version, ")");
  EnvelopeHeader h;
  h.reserved_at = in.offset(), h.reserved = std::uint16_t(in.read_le(2, "reserved"));
  h.fingerprint_at = in.offset(), h.fingerprint = in.read_le(8, "model fingerprint");
  h.budget_at = in.offset(), h.budget = in.read_f32("budget");
  h.palette_at = in.offset(), h.palette = in.take(4, "palette");
  return h;
}

// Steps 1 and 2 at the end of the payload: the checksum is the last 4 bytes (nothing may follow; `size`
// describes what the payload makes the whole, e.g. "a packet of 2 layers and 64 channels"), and it
// matches. Every single-byte corruption is then rejected, whatever field it hits: CRC-32 detects any
// error burst of up to 32 bits among the bytes it covers or in itself.
template <typename... Size>
inline void read_envelope_checksum(bytes::Reader& in, const std::uint8_t* data, const Size&... size) {
  const std::size_t checksum_at = in.offset();
  const auto stored = std::uint32_t(in.read_le(4, "checksum"));
  if (in.left() != 0)
    in.fail(in.offset(), "end", in.left(), " trailing bytes after the checksum (", size..., " is ", in.offset(),
            " bytes)");
  const std::uint32_t computed = crc32(data, checksum_at);
  if (stored != computed)
    in.fail(checksum_at, "checksum", "checksum mismatch: stored ", bytes::hex32(stored), ", computed ",
            bytes::hex32(computed), " (the ", in.noun(), " is corrupted)");
}

// Step 3 for the header: reserved, fingerprint (`mismatch` explains it: "strategy is for model X, this
// model is Y"), palette, budget.
inline Envelope check_envelope_header(bytes::Reader& in, const EnvelopeHeader& h, std::uint16_t version,
                                      std::uint64_t expected_fingerprint, std::string_view is_for,
                                      std::string_view expected_is) {
  if (h.reserved != 0)
    in.fail(h.reserved_at, "reserved", "reserved field is ", h.reserved, ", must be 0 in version ", version);
  if (h.fingerprint != expected_fingerprint)
    in.fail(h.fingerprint_at, "model fingerprint", is_for, bytes::hex64(h.fingerprint), expected_is,
            bytes::hex64(expected_fingerprint));
  Envelope e;
  e.fingerprint = h.fingerprint;
  std::memcpy(e.palette.data(), h.palette, kLevels);
  if (!is_valid_palette(e.palette))
    in.fail(h.palette_at, "palette", "palette {", int(e.palette[0]), ", ", int(e.palette[1]), ", ", int(e.palette[2]),
            ", ", int(e.palette[3]), "} is invalid: it must be a non-decreasing list of widths from {0, 2, 4, 8}");
  if (!is_valid_budget(h.budget))
    in.fail(h.budget_at, "budget", "budget ", h.budget, " bits per weight is not a finite number in [0, ",
            kMaxEnvelopeBudget, "]");
  e.budget = h.budget;
  return e;
}

}  // namespace chord
