// chronos-train: create and train Chronos models; one subcommand per stage, one file per subcommand.
#include "chronos-train/modes.h"
#include "common/tool_main.h"

int main(int argc, char** argv) {
  using namespace chronos;
  tools::configure_openmp_waiting(argv);
  return tools::run_tool("chronos-train", [&] {
    CLI::App app{"chronos-train: create and train Chronos models"};
    app.require_subcommand(1);
    const std::vector<tools::Subcommand> modes = {train_cli::add_init_mode(app), train_cli::add_tokenizer_mode(app),
                                                   train_cli::add_pretrain_mode(app), train_cli::add_sft_mode(app),
                                                   train_cli::add_dpo_mode(app), train_cli::add_orpo_mode(app),
                                                   train_cli::add_grpo_mode(app), train_cli::add_distill_mode(app),
                                                   train_cli::add_intent_mode(app), train_cli::add_eval_mode(app),
                                                   train_cli::add_launch_mode(app)};
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-train")) return *code;
    return tools::run_chosen(modes);
  });
}
