// examples/chord/command.hpp: how the `chord` program's subcommands plug in.
//
// Each subcommand lives in its own file (train.cpp, eval.cpp, ...) and defines one function that adds
// its CLI11 subcommand and returns the action to run once parsing succeeded. main.cpp lists them in
// kCommands; a new subcommand (hypertrain, profile, strategy, infer, experiment, info, demo) is one new
// file plus one line there.
#pragma once

#include <cmath>
#include <exception>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace chord::cli {

// A subcommand and what it runs once parsed: returns the exit code (0 ok); throws chord::Error on failure.
struct Action {
  CLI::App* command = nullptr;
  std::function<int()> run;
};

// A number option must be finite: CLI::Range lets "nan" through (every comparison with NaN is false),
// and an option like --weight-decay nan would then silently take its default. A usage error (exit 2).
inline const CLI::Validator kFinite(
    [](std::string& text) {
      double v = 0.0;
      try {
        std::size_t used = 0;
        v = std::stod(text, &used);
        if (used != text.size()) return "'" + text + "' is not a number";
      } catch (const std::exception&) {
        return "'" + text + "' is not a number";
      }
      return std::isfinite(v) ? std::string() : "'" + text + "' is not a finite number";
    },
    "FINITE");

// Adds a subcommand to `app` and returns it with its action.
using CommandSetup = Action (*)(CLI::App& app);

Action setup_train(CLI::App& app);
Action setup_eval(CLI::App& app);
Action setup_hypertrain(CLI::App& app);  // CHORD: hypertrain, strategy (cloud); profile, infer (device)
Action setup_profile(CLI::App& app);
Action setup_strategy(CLI::App& app);
Action setup_infer(CLI::App& app);
Action setup_info(CLI::App& app);
Action setup_experiment(CLI::App& app);  // built when nlohmann/json is found (CHORD_CLI_EXPERIMENT)
Action setup_demo(CLI::App& app);        // CHORD end to end on one dataset (uses experiment.hpp, not JSON)

}  // namespace chord::cli
