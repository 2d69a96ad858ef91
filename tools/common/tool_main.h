// Entry-point helpers shared by every chronos-* executable: one clear line and a non-zero exit for
// any error, never an uncaught exception.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>

namespace chronos::tools {

// With the pthread build of OpenBLAS, makes idle OpenMP threads sleep instead of spin, by
// re-executing the program once with OMP_WAIT_POLICY=PASSIVE unless the variable is already set.
// That build runs its own threads, and LibTorch's spinning OpenMP workers took the cores they needed
// (2 cores: prefill throughput halved, decoding 2.5x slower). The OpenMP build of OpenBLAS, which
// tools/setup_deps.sh installs, shares LibTorch's threads: there the default policy is kept, because
// the decode kernels fork threads per projection and a sleeping worker takes tens of microseconds to
// wake. libgomp reads the variable in its own constructor, before any constructor of libchronos or
// of the tool runs, and a setenv from the executable's .preinit_array is lost when libc sets up
// environ (tried with glibc 2.36): re-executing is the one order-independent way (docs/cli.md).
// Call first thing in main.
void configure_openmp_waiting(char** argv);

// Runs body(); chronos::Error and other exceptions print "<tool>: error: <what>" and return 1, as
// does standard output that could not be written.
int run_tool(const char* tool, const std::function<int()>& body);

// Parses the command line. Returns an exit code when the program should stop now: 0 after
// --help, or 2 after printing one "<tool>: error: ..." line for a bad command line.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* tool);

}  // namespace chronos::tools
