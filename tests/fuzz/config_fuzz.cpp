// libFuzzer target: any byte string given as config.json must either give a ModelConfig that
// validates (and survives its own JSON round trip) or raise a chronos::Error. Nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/json_text.h"
#include "chronos/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (chronos::log::set_level(chronos::log::Level::off), true);
  (void)quiet;
  chronos::ModelConfig config;
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    config = chronos::ModelConfig::from_json(chronos::parse_json(text, "config.json"), "config.json");
    config.validate();
  } catch (const chronos::Error&) {
    return 0;
  }
  if (chronos::count_parameters(config) <= 0) std::abort();
  // What was accepted must be written back in a form that reads and validates again.
  try {
    chronos::ModelConfig::from_json(config.to_json(), "round trip").validate();
  } catch (const chronos::Error&) {
    std::abort();
  }
  return 0;
}
