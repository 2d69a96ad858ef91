// chronos-bench: benchmarks as executables. Each mode warms up, repeats, and reports medians and
// ratios measured in the same run; --json prints one object with the same figures.
#include "chronos-bench/modes.h"
#include "common/tool_main.h"

int main(int argc, char** argv) {
  using namespace chronos;
  tools::configure_openmp_waiting(argv);
  return tools::run_tool("chronos-bench", [&] {
    CLI::App app{"chronos-bench: Chronos benchmarks (medians and ratios from one run)"};
    app.require_subcommand(1);
    const std::vector<tools::Subcommand> modes = {bench::add_forward_mode(app), bench::add_decode_mode(app), bench::add_train_mode(app),
                                                  bench::add_tokenizer_mode(app), bench::add_io_mode(app), bench::add_offload_mode(app),
                                                  bench::add_checkpoint_mode(app), bench::add_weights_mode(app)};
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-bench")) return *code;
    return tools::run_chosen(modes);
  });
}
