// The chronos-bench modes, one file each.
#pragma once

#include "common/subcommand.h"

namespace chronos::bench {

tools::Subcommand add_forward_mode(CLI::App& app);
tools::Subcommand add_decode_mode(CLI::App& app);
tools::Subcommand add_train_mode(CLI::App& app);
tools::Subcommand add_tokenizer_mode(CLI::App& app);
tools::Subcommand add_io_mode(CLI::App& app);
tools::Subcommand add_offload_mode(CLI::App& app);
tools::Subcommand add_checkpoint_mode(CLI::App& app);
tools::Subcommand add_weights_mode(CLI::App& app);

}  // namespace chronos::bench
