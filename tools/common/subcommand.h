// A subcommand of a multi-mode tool: the CLI11 node its flags live on, and what runs when it is chosen.
// Each mode lives in its own file and returns one of these from an add_*_mode(app) function.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

namespace chronos::tools {

struct Subcommand {
  CLI::App* command = nullptr;
  std::function<int()> run;
};

// Runs the chosen subcommand; 1 when none was parsed (cannot happen with require_subcommand).
inline int run_chosen(const std::vector<Subcommand>& modes) {
  for (const auto& mode : modes)
    if (mode.command->parsed()) return mode.run();
  return 1;
}

}  // namespace chronos::tools
