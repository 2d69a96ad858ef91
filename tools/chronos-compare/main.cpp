// chronos-compare: a vanilla MoE and the Chronos model trained identically, then measured side by
// side (chronos/eval/compare.h); writes OUT/compare.json and OUT/compare.md, prints the table.
#include <iostream>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/eval/compare.h"
#include "common/compare_flags.h"
#include "common/progress_line.h"
#include "common/runtime_flags.h"
#include "common/tool_main.h"

using namespace chronos;

namespace {

struct Flags {
  tools::CompareFlags compare;
  bool json = false;
  tools::RuntimeFlags runtime;
};

int run(const Flags& f) {
  const tools::Runtime rt = tools::apply_runtime_flags(f.runtime);
  if (!rt.device.is_cpu()) log::warn("chronos-compare trains and measures on the CPU; --device is not used");
  CompareOptions o = tools::compare_options(f.compare);
  tools::ProgressLine progress;
  o.on_phase = [&](const std::string& phase) {
    progress.done();
    log::info(cat("compare: ", phase));
  };
  o.on_progress = [&](const TrainingProgress& p) { progress.show(describe(p)); };
  const nlohmann::json out = run_compare(o);
  progress.done();
  if (f.json) std::cout << out.dump() << std::endl;
  else
    std::cout << compare_markdown(out) << "\nwritten: " << f.compare.out << "/compare.json, " << f.compare.out
              << "/compare.md (plots: tools/plot.py compare " << f.compare.out << "/compare.json)" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::configure_openmp_waiting(argv);
  return tools::run_tool("chronos-compare", [&] {
    Flags f;
    CLI::App app{"chronos-compare: train a vanilla MoE and the Chronos model identically, then measure both on the same held-out text and prompts"};
    tools::add_compare_flags(app, f.compare, /*required=*/true);
    app.add_flag("--json", f.json, "Print compare.json instead of the table");
    tools::add_runtime_flags(app, f.runtime, /*with_dtype=*/false);
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-compare")) return *code;
    return run(f);
  });
}
