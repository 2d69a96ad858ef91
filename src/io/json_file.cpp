#include "chronos/io/json_file.h"

#include "chronos/io/atomic_file.h"
#include "chronos/io/regular_file.h"

namespace chronos {

nlohmann::json read_json_file(const std::string& path) { return parse_json(read_regular_file(path), path); }

void write_json_file(const std::string& path, const nlohmann::json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

}  // namespace chronos
