// examples/chord/main.cpp: the `chord` program: train and evaluate the recommenders of CHORD kernels.
//
// Exit codes: 0 success, 1 runtime error (bad data, bad model file, ...: "chord: error: <what>" on
// stderr, no stack trace), 2 usage error (unknown option, missing argument: CLI11's message and a hint).
#include <cstdio>
#include <exception>
#include <vector>

#include <CLI/CLI.hpp>

#include "chord/core/error.hpp"
#include "command.hpp"

namespace {

// The subcommands, in --help order. A new subcommand: one file defining setup_<name>, one line here.
constexpr chord::cli::CommandSetup kCommands[] = {
    chord::cli::setup_train,
    chord::cli::setup_eval,
    chord::cli::setup_hypertrain,
    chord::cli::setup_profile,
    chord::cli::setup_strategy,
    chord::cli::setup_infer,
    chord::cli::setup_info,
#ifdef CHORD_CLI_EXPERIMENT
    chord::cli::setup_experiment,
#endif
    chord::cli::setup_demo,
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chord: sequential recommenders (SASRec, Caser) with per-channel mixed-precision inference"};
  app.footer("Run 'chord <command> --help' for a command's options and examples.");
  app.require_subcommand(1);
  std::vector<chord::cli::Action> actions;
  for (chord::cli::CommandSetup setup : kCommands) actions.push_back(setup(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help (code 0) or the usage error
    return code == 0 ? 0 : 2;
  }
  try {
    for (const chord::cli::Action& action : actions)
      if (action.command->parsed()) return action.run();
    return 2;
  } catch (const chord::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "chord: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "chord: error: %s\n", e.what());
    return 1;
  }
}
