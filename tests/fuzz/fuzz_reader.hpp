// tests/fuzz/fuzz_reader.hpp: the body every reader fuzz target shares.
//
// Contract under test: any bytes either parse into a dataset that keeps the conventions of
// dataset.hpp, or throw chord::Error naming the source. Anything else (a crash, a sanitizer report,
// another exception type escaping, a parsed dataset that breaks the conventions) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chord/data/reader.hpp"
#include "fuzz_common.hpp"  // require()

namespace chord::fuzz {

inline int read_one(const std::uint8_t* data, std::size_t size, data::Format format, const char* source) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  data::ReadOptions options;
  options.format = format;
  try {
    const data::Dataset d = data::parse_dataset(text, source, options);
    try {
      data::check_dataset(d);
    } catch (const chord::Error&) {
      require(false, "a parsed dataset fails check_dataset");
    }
    require(d.num_users >= 1, "a parsed dataset has no user");
    std::size_t events = 0;
    for (std::size_t u = 0; u < d.sequences.size(); ++u) {
      require(!d.sequences[u].empty(), "a user without items");
      require(u == 0 || d.user_ids[u - 1] < d.user_ids[u], "user ids not strictly increasing");
      events += d.sequences[u].size();
    }
    require(events <= size / 2 + 1, "more events than the input can hold");
  } catch (const chord::Error& e) {
    require(std::string(e.what()).find(source) != std::string::npos, "an error that does not name the source");
  }
  return 0;
}

}  // namespace chord::fuzz
