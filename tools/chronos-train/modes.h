// The chronos-train subcommands, one file each.
#pragma once

#include "common/subcommand.h"

namespace chronos::train_cli {

tools::Subcommand add_init_mode(CLI::App& app);
tools::Subcommand add_tokenizer_mode(CLI::App& app);
tools::Subcommand add_pretrain_mode(CLI::App& app);
tools::Subcommand add_sft_mode(CLI::App& app);
tools::Subcommand add_dpo_mode(CLI::App& app);
tools::Subcommand add_orpo_mode(CLI::App& app);
tools::Subcommand add_grpo_mode(CLI::App& app);
tools::Subcommand add_distill_mode(CLI::App& app);
tools::Subcommand add_intent_mode(CLI::App& app);
tools::Subcommand add_eval_mode(CLI::App& app);
tools::Subcommand add_launch_mode(CLI::App& app);

}  // namespace chronos::train_cli
