#include "common/router_control_flags.h"

#include "chronos/core/error.h"
#include "common/flag_checks.h"

namespace chronos::tools {

void add_chronovisor_flags(CLI::App& app, RouterControlFlags& f) {
  const ChronovisorConfig d;
  CLI::Option* on = app.add_flag("--chronovisor", f.chronovisor, "Steer the routers with the Chronovisor routing-pressure controller (docs/chronovisor.md)");
  app.add_option("--pressure-scale", f.config.pressure_scale, cat("Chronovisor: pressure = scale * (lens - usage); 0 changes nothing (default ", d.pressure_scale, ")"))
      ->check(non_negative(1e6))->needs(on);
  app.add_option("--micro-period", f.config.micro_period, cat("Chronovisor: ticks between pressure updates (default ", d.micro_period, ")"))
      ->check(positive(1e9))->needs(on);
  app.add_option("--macro-period", f.config.macro_period, cat("Chronovisor: ticks between lens moves, >= --micro-period (default ", d.macro_period, ")"))
      ->check(positive(1e9))->needs(on);
  app.add_option("--gamma", f.config.gamma, cat("Chronovisor: the lens's adaptation rate in [0, 1] (default ", d.gamma, ")"))
      ->check(number_in(0, 1, "in [0, 1]"))->needs(on);
  app.add_option("--bias-target", f.bias_target, "Chronovisor: where the pressure acts: selection (top-k only, the default) or selection_and_weights")
      ->check(CLI::IsMember({"selection", "selection_and_weights"}))->needs(on);
}

void add_aux_free_flags(CLI::App& app, RouterControlFlags& f) {
  CLI::Option* on = app.add_flag("--aux-free", f.aux_free, "Balance the experts with DeepSeek-V3's auxiliary-loss-free bias (selection only)");
  if (CLI::Option* chronovisor = app.get_option_no_throw("--chronovisor")) on->excludes(chronovisor);
  app.add_option("--aux-free-step", f.aux_free_step, "Aux-free: the bias step per training step (default 0.001)")->check(non_negative(1e6))->needs(on);
}

RouterControlOptions router_control_options(const RouterControlFlags& f) {
  RouterControlOptions options;
  if (f.chronovisor) {
    options.kind = RouterControlKind::chronovisor;
    options.chronovisor = f.config;
    options.chronovisor.target = parse_bias_target(f.bias_target);
    if (options.chronovisor.macro_period < options.chronovisor.micro_period)
      throw ConfigError(cat("--macro-period ", options.chronovisor.macro_period, " must be >= --micro-period ", options.chronovisor.micro_period));
  } else if (f.aux_free) {
    options.kind = RouterControlKind::aux_free;
    options.aux_free_step = f.aux_free_step;
  }
  options.validate();
  return options;
}

}  // namespace chronos::tools
