// The process's resident memory, from /proc/self/status: what bounded-memory work (packing a
// checkpoint larger than RAM, offloaded decode) reports and is checked against.
#pragma once

#include <cstdint>

namespace chronos {

// Peak resident memory in bytes (VmHWM), 0 where unknown.
int64_t peak_rss_bytes();

// Resident memory now in bytes (VmRSS), 0 where unknown.
int64_t resident_bytes();

}  // namespace chronos
