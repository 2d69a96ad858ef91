// Entry-point helpers shared by every chronos-* executable: one clear line and a non-zero exit for
// any error, never an uncaught exception.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>

namespace chronos::tools {

// Runs body(); chronos::Error and other exceptions print "<tool>: error: <what>" and return 1.
int run_tool(const char* tool, const std::function<int()>& body);

// Parses the command line. Returns an exit code when the program should stop now: 0 after
// --help, or 2 after printing one "<tool>: error: ..." line for a bad command line.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* tool);

}  // namespace chronos::tools
