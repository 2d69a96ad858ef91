#include "chronos/core/memory.h"

#include <fstream>
#include <string>

namespace chronos {
namespace {

// The value of a "Key:   123 kB" line of /proc/self/status, in bytes; 0 when absent.
int64_t status_bytes(const char* key) {
  std::ifstream status("/proc/self/status");
  const std::string prefix = std::string(key) + ":";
  for (std::string line; std::getline(status, line);)
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size())) * 1024;  // reported in kB
  return 0;
}

}  // namespace

int64_t peak_rss_bytes() { return status_bytes("VmHWM"); }

int64_t resident_bytes() { return status_bytes("VmRSS"); }

}  // namespace chronos
