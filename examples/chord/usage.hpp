// examples/chord/usage.hpp: CLI11 checks for the `chord` program's list options, so that a bad value is
// a usage error (exit 2, CLI11's "--bits: ..." message naming the option and the value) before anything
// runs, rather than a runtime error half-way through.
#pragma once

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "chord/core/error.hpp"
#include "common.hpp"
#include "personalize_common.hpp"

namespace chord::cli {

// Every comma-separated item of the value is one of `allowed` (e.g. --bits 8,4,2).
inline CLI::Validator list_of(const std::vector<std::string>& allowed) {
  std::string names;
  for (const std::string& a : allowed) names += (names.empty() ? "" : ", ") + a;
  return CLI::Validator(
      [allowed, names](std::string& value) -> std::string {
        std::stringstream in(value);
        std::string item;
        bool any = false;
        while (std::getline(in, item, ',')) {
          any = true;
          bool ok = false;
          for (const std::string& a : allowed) ok = ok || item == a;
          if (!ok) return "'" + item + "' is not one of " + names;
        }
        return any ? "" : "empty list (expected items of " + names + ")";
      },
      "LIST of " + names);
}

// An error message without its leading "<prefix>: " (CLI11 names the option itself).
inline std::string without_prefix(const std::string& message, const std::string& prefix) {
  return message.rfind(prefix + ": ", 0) == 0 ? message.substr(prefix.size() + 2) : message;
}

// A list of numbers in [low, high] (e.g. --budgets 2,3,4,6); parse_numbers says what is wrong.
inline CLI::Validator numbers_in(double low, double high) {
  const std::string range = "[" + number_text(low) + ", " + number_text(high) + "]";
  return CLI::Validator(
      [low, high, range](std::string& value) -> std::string {
        try {
          for (double v : parse_numbers(value, "list"))
            if (!(v >= low && v <= high)) return number_text(v) + " is not in " + range;
        } catch (const Error& e) {
          return without_prefix(e.what(), "list");
        }
        return "";
      },
      "NUMBERS in " + range);
}

// A palette "0,2,4,8" (parse_palette's rules).
inline CLI::Validator palette_check() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          parse_palette(value);
        } catch (const Error& e) {
          return without_prefix(e.what(), "--palette");
        }
        return "";
      },
      "PALETTE");
}

}  // namespace chord::cli
