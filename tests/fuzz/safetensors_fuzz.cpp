// libFuzzer target: any byte string given as a whole safetensors file must either parse into a
// header whose entries all lie inside the file, or raise chronos::FormatError. Nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "chronos/core/error.h"
#include "chronos/io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace st = chronos::safetensors;
  try {
    const uint64_t n = st::parse_header_length(data, size, size, "fuzz");
    const st::Header header = st::parse_header(reinterpret_cast<const char*>(data + 8), n, size, "fuzz");
    for (const auto& t : header.tensors) {
      // The invariants a reader relies on before touching tensor bytes.
      if (t.end < t.begin || header.data_offset + t.end > size) std::abort();
      if (t.numel() * st::dtype_size(t.dtype) != t.end - t.begin) std::abort();
    }
  } catch (const chronos::FormatError&) {
  }
  return 0;
}
