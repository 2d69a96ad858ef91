// The router-control flags of chronos-train and chronos-generate (docs/chronovisor.md):
// --chronovisor with its settings, and (training only) --aux-free.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "chronos/routing/router_control.h"

namespace chronos::tools {

struct RouterControlFlags {
  bool chronovisor = false;     // --chronovisor
  ChronovisorConfig config;     // --pressure-scale, --micro-period, --macro-period, --gamma
  std::string bias_target = "selection";  // --bias-target selection|selection_and_weights
  bool aux_free = false;        // --aux-free
  double aux_free_step = 1e-3;  // --aux-free-step
};

// Adds --chronovisor and its settings (which need it).
void add_chronovisor_flags(CLI::App& app, RouterControlFlags& flags);
// Adds --aux-free and --aux-free-step (exclusive with --chronovisor, so add those first).
void add_aux_free_flags(CLI::App& app, RouterControlFlags& flags);

// The options the flags ask for (kind none when neither is given); throws ConfigError naming the flag.
RouterControlOptions router_control_options(const RouterControlFlags& flags);

}  // namespace chronos::tools
