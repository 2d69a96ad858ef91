// Runs another program and collects what it prints: chronos-tune drives Optuna's command line this
// way. No shell is involved: arguments reach the program as they are.
#pragma once

#include <string>
#include <vector>

namespace chronos {

struct ProcessResult {
  int exit_code = -1;  // the program's exit status; 128 + N when signal N ended it
  std::string out, err;
};

// Runs argv[0] (searched on PATH) with argv, standard input closed, and waits for it. Throws
// IoError when the program cannot be started (not found, not executable).
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace chronos
