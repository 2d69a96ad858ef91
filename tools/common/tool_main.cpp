#include "common/tool_main.h"

#include <c10/util/Exception.h>

#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "chronos/core/backend.h"
#include "chronos/core/error.h"

namespace chronos::tools {
namespace {

// c10 errors carry a C++ backtrace after the first line; a user needs only the first line.
std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

}  // namespace

void configure_openmp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || loaded_blas() != "OpenBLAS (pthread)") return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run on as we are
}

int run_tool(const char* tool, const std::function<int()>& body) {
  try {
    const int status = body();
    // Output that did not reach its destination (a full disk, a closed pipe) is a failed run.
    std::cout.flush();
    if (!std::cout) throw IoError("cannot write to standard output (disk full or pipe closed?)");
    return status;
  } catch (const Error& e) {
    std::cerr << tool << ": error: " << e.what() << std::endl;
  } catch (const c10::Error& e) {
    std::cerr << tool << ": error: " << first_line(e.what_without_backtrace()) << std::endl;
  } catch (const std::bad_alloc&) {
    std::cerr << tool << ": error: out of memory" << std::endl;
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << first_line(e.what()) << std::endl;
  }
  return 1;
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* tool) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << tool << ": error: " << e.what() << " (see --help)" << std::endl;
    return 2;
  }
  return std::nullopt;
}

}  // namespace chronos::tools
