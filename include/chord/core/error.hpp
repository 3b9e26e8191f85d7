// chord/core/error.hpp: the one exception type of the library and the check macro.
//
// Why an exception: bad input (a corrupt strategy packet, a shape that does not match) must give a
// clear message naming the file and the place, never a crash and never silent garbage. Kernels do not
// throw: they are noexcept and rely on shapes validated by the objects that own their data.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace chord {

// What went wrong, where. `what()` reads like "strategy packet 'u7.strat': byte 12: bad magic".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
// Builds a message from any streamable pieces: error_message("row ", r, " of ", n).
template <typename... Parts>
std::string error_message(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

// Throws chord::Error with the streamed message when `cond` is false.
#define CHORD_CHECK(cond, ...)                                          \
  do {                                                                  \
    if (!(cond)) throw ::chord::Error(::chord::detail::error_message(__VA_ARGS__)); \
  } while (0)

}  // namespace chord
