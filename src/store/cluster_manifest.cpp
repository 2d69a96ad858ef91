#include "chronos/store/cluster_manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/json_file.h"
#include "chronos/io/regular_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/io/safetensors_header.h"
#include "chronos/model/config.h"
#include "chronos/store/cluster_file.h"

namespace chronos {
namespace {

constexpr const char* kManifestName = "cluster_manifest.json";
// Bounds that keep every count and product of sizes read from a manifest far from overflow: at most
// 2^20 experts in all (the largest MoEs have ~10^4), widths up to 2^20, so one expert's bytes
// (3 x H x I x 4) stay below 2^45 and a file offset plus a range below 2^63.
constexpr int64_t kMaxManifestCount = int64_t{1} << 20;
constexpr int64_t kMaxManifestWidth = int64_t{1} << 20;

std::string manifest_path(const std::string& dir) { return dir + "/" + kManifestName; }

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// Field access with errors naming the manifest and the JSON path of the field.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& rule) const {
    throw FormatError(cat(path_, ": field '", field, "' ", rule));
  }
  const nlohmann::json& member(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const std::string field = where.empty() ? key : where + "." + key;
    if (!object.is_object()) fail(where, "must be an object");
    auto it = object.find(key);
    if (it == object.end()) fail(field, "is missing");
    return *it;
  }
  // An integer in [min_value, max_value], checked before any narrowing.
  int64_t integer(const nlohmann::json& object, const std::string& key, const std::string& where, int64_t min_value,
                  int64_t max_value = std::numeric_limits<int64_t>::max()) const {
    const nlohmann::json& v = member(object, key, where);
    const std::string field = where.empty() ? key : where + "." + key;
    if (!v.is_number_integer()) fail(field, "must be an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max_value))
      fail(field, cat("must be in [", min_value, ", ", max_value, "] (got ", v.get<uint64_t>(), ")"));
    const int64_t value = v.get<int64_t>();
    if (value < min_value || value > max_value) fail(field, cat("must be in [", min_value, ", ", max_value, "] (got ", value, ")"));
    return value;
  }
  std::string string(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const nlohmann::json& v = member(object, key, where);
    if (!v.is_string()) fail(where.empty() ? key : where + "." + key, "must be a string");
    return v.get<std::string>();
  }
  uint64_t checksum(const nlohmann::json& object, const std::string& key, const std::string& where) const {
    const std::string text = string(object, key, where);
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(text.c_str(), &end, 16);
    if (text.size() != 16 || errno != 0 || *end != '\0') fail(where + "." + key, "must be 16 hex digits");
    return value;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool safe_file_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." && name != "..";
}

ExpertRange read_range(const Reader& r, const nlohmann::json& j, const std::string& where) {
  ExpertRange range;
  range.key.layer = static_cast<int32_t>(r.integer(j, "layer", where, 0, kMaxManifestCount - 1));
  range.key.expert = static_cast<int32_t>(r.integer(j, "expert", where, 0, kMaxManifestCount - 1));
  range.offset = static_cast<uint64_t>(r.integer(j, "offset", where, 0, int64_t{1} << 60));
  range.length = static_cast<uint64_t>(r.integer(j, "length", where, 1, int64_t{1} << 50));
  range.checksum = r.checksum(j, "checksum", where);
  return range;
}

// Reads a whole file through XXH3 in large chunks.
uint64_t file_checksum(const std::string& path) {
  const int fd = open_regular_file(path);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> buffer(8 << 20);
  while (true) {
    const ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw IoError(cat("cannot read cluster file ", path, ": ", std::strerror(err)));
    }
    if (got == 0) break;
    XXH3_64bits_update(state.get(), buffer.data(), static_cast<size_t>(got));
  }
  ::close(fd);
  return XXH3_64bits_digest(state.get());
}

}  // namespace

uint64_t ClusterManifest::expert_bytes() const {
  return storage.expert_bytes(hidden_size, moe_intermediate_size);
}

uint64_t ClusterManifest::compute_expert_bytes(c10::ScalarType compute_dtype) const {
  return storage.is_quantized() ? expert_bytes() : ExpertStorage::dense(compute_dtype).expert_bytes(hidden_size, moe_intermediate_size);
}

std::vector<ExpertLocation> index_experts(const ClusterManifest& manifest) {
  std::vector<ExpertLocation> where(static_cast<size_t>(manifest.num_layers * manifest.num_experts));
  for (size_t c = 0; c < manifest.clusters.size(); ++c) {
    const auto& members = manifest.clusters[c].experts;
    for (size_t m = 0; m < members.size(); ++m)
      where[static_cast<size_t>(members[m].key.index(manifest.num_experts))] = {static_cast<int32_t>(c), static_cast<int32_t>(m)};
  }
  return where;
}

ClusterManifest read_cluster_manifest(const std::string& dir) {
  const std::string path = manifest_path(dir);
  return parse_cluster_manifest(read_json_file(path), path);
}

ClusterManifest parse_cluster_manifest(const nlohmann::json& j, const std::string& path) {
  const Reader r(path);
  if (!j.is_object()) r.fail("(top level)", "must be an object");

  ClusterManifest m;
  m.version = r.integer(j, "version", "", 1);
  if (m.version == 1)
    r.fail("version", "is 1: that is the Python reference's layout (one id per expert across layers, no byte ranges); repack with chronos-pack");
  if (m.version != 2) r.fail("version", cat("must be 2 (got ", m.version, ")"));
  const std::string storage = r.string(j, "storage_format", "");
  if (storage != "safetensors") r.fail("storage_format", cat("must be \"safetensors\" (got \"", storage, "\")"));
  m.num_layers = r.integer(j, "num_layers", "", 1, kMaxManifestCount);
  m.num_experts = r.integer(j, "num_experts", "", 1, kMaxManifestCount);
  if (m.num_layers * m.num_experts > kMaxManifestCount)
    r.fail("num_experts", cat("times num_layers must be <= ", kMaxManifestCount, " experts (got ", m.num_layers, " x ", m.num_experts, ")"));
  m.hidden_size = r.integer(j, "hidden_size", "", 1, kMaxManifestWidth);
  m.moe_intermediate_size = r.integer(j, "moe_intermediate_size", "", 1, kMaxManifestWidth);
  const std::string dtype = r.string(j, "dtype", "");
  try {
    m.storage = ExpertStorage::from_manifest_name(dtype);
  } catch (const InvalidArgument& e) {
    r.fail("dtype", e.what());
  }
  if (auto it = j.find("model_fingerprint"); it != j.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) r.fail("model_fingerprint", "must be a non-empty string");
    m.model_fingerprint = it->get<std::string>();
  }
  const int64_t alignment = r.integer(j, "alignment", "", 1);
  if (static_cast<uint64_t>(alignment) != kExpertAlignment) r.fail("alignment", cat("must be ", kExpertAlignment, " (got ", alignment, ")"));

  const nlohmann::json& clusters = r.member(j, "clusters", "");
  if (!clusters.is_array() || clusters.empty()) r.fail("clusters", "must be a non-empty array");
  const int64_t units = m.num_layers * m.num_experts;
  std::vector<int> seen(static_cast<size_t>(units), 0);
  std::set<std::string> files;
  for (size_t c = 0; c < clusters.size(); ++c) {
    const std::string where = cat("clusters[", c, "]");
    ClusterFile cluster;
    cluster.cluster_id = r.integer(clusters[c], "cluster_id", where, 0, kMaxManifestCount);
    if (!m.clusters.empty() && cluster.cluster_id <= m.clusters.back().cluster_id)
      r.fail(where + ".cluster_id", "must be unique and ascending");
    cluster.file = r.string(clusters[c], "file", where);
    if (!safe_file_name(cluster.file)) r.fail(where + ".file", cat("must be a plain file name (got \"", cluster.file, "\")"));
    if (!files.insert(cluster.file).second) r.fail(where + ".file", cat("names ", cluster.file, " twice"));
    cluster.size_bytes = static_cast<uint64_t>(r.integer(clusters[c], "size_bytes", where, 1, int64_t{1} << 60));
    cluster.checksum = r.checksum(clusters[c], "checksum", where);
    const nlohmann::json& experts = r.member(clusters[c], "experts", where);
    if (!experts.is_array() || experts.empty()) r.fail(where + ".experts", "must be a non-empty array");
    uint64_t end = 0;
    for (size_t e = 0; e < experts.size(); ++e) {
      const std::string at = cat(where, ".experts[", e, "]");
      const ExpertRange range = read_range(r, experts[e], at);
      if (range.key.layer >= m.num_layers) r.fail(at + ".layer", cat("must be < num_layers ", m.num_layers, " (got ", range.key.layer, ")"));
      if (range.key.expert >= m.num_experts) r.fail(at + ".expert", cat("must be < num_experts ", m.num_experts, " (got ", range.key.expert, ")"));
      if (range.length != m.expert_bytes())
        r.fail(at + ".length", cat("must be ", m.expert_bytes(), " bytes (gate, up and down of ", m.moe_intermediate_size, " x ", m.hidden_size, " in ", dtype, "; got ", range.length, ")"));
      if (range.offset % kExpertAlignment != 0) r.fail(at + ".offset", cat("must be a multiple of ", kExpertAlignment, " (got ", range.offset, ")"));
      if (range.offset < end) r.fail(at + ".offset", "overlaps the previous expert (members must be in file order)");
      end = range.offset + range.read_length();
      if (end > cluster.size_bytes) r.fail(at + ".offset", cat("range ends at ", end, ", past the file size ", cluster.size_bytes));
      if (seen[static_cast<size_t>(range.key.index(m.num_experts))]++)
        r.fail(at, cat("expert ", range.key.name(), " appears in more than one place"));
      cluster.experts.push_back(range);
    }
    m.clusters.push_back(std::move(cluster));
  }
  for (int64_t u = 0; u < units; ++u)
    if (!seen[static_cast<size_t>(u)]) r.fail("clusters", cat("holds no entry for expert ", ExpertKey::from_index(u, m.num_experts).name()));

  // expert_to_cluster is redundant (kept for the spec's readers); when present it must agree.
  if (auto it = j.find("expert_to_cluster"); it != j.end()) {
    if (!it->is_object()) r.fail("expert_to_cluster", "must be an object");
    for (const auto& cluster : m.clusters)
      for (const auto& range : cluster.experts) {
        auto entry = it->find(range.key.name());
        if (entry == it->end() || !entry->is_number_integer() || entry->get<int64_t>() != cluster.cluster_id)
          r.fail("expert_to_cluster." + range.key.name(), cat("must be ", cluster.cluster_id, ", the cluster that lists it"));
      }
  }
  return m;
}

void write_cluster_manifest(const ClusterManifest& m, const std::string& dir) {
  nlohmann::json clusters = nlohmann::json::array();
  nlohmann::json expert_to_cluster = nlohmann::json::object();
  for (const auto& cluster : m.clusters) {
    nlohmann::json experts = nlohmann::json::array();
    for (const auto& range : cluster.experts) {
      experts.push_back({{"layer", range.key.layer},
                         {"expert", range.key.expert},
                         {"offset", range.offset},
                         {"length", range.length},
                         {"checksum", hex64(range.checksum)}});
      expert_to_cluster[range.key.name()] = cluster.cluster_id;
    }
    clusters.push_back({{"cluster_id", cluster.cluster_id},
                        {"file", cluster.file},
                        {"size_bytes", cluster.size_bytes},
                        {"checksum", hex64(cluster.checksum)},
                        {"experts", std::move(experts)}});
  }
  nlohmann::json j = {{"version", m.version},
                      {"storage_format", "safetensors"},
                      {"num_layers", m.num_layers},
                      {"num_experts", m.num_experts},
                      {"hidden_size", m.hidden_size},
                      {"moe_intermediate_size", m.moe_intermediate_size},
                      {"dtype", m.storage.manifest_name()},
                      {"alignment", kExpertAlignment},
                      {"checksum_algorithm", "xxh3_64"},
                      {"clusters", std::move(clusters)},
                      {"expert_to_cluster", std::move(expert_to_cluster)}};
  if (!m.model_fingerprint.empty()) j["model_fingerprint"] = m.model_fingerprint;
  write_json_file(manifest_path(dir), j);
}

void check_manifest_matches(const ClusterManifest& m, const ModelConfig& config, const std::string& dir) {
  const auto mismatch = [&](const char* field, int64_t cache, int64_t model) {
    if (cache != model)
      throw ConfigError(cat(manifest_path(dir), ": ", field, " is ", cache, " but the model has ", model,
                            " (the expert cache was packed from another model; rerun chronos-pack)"));
  };
  mismatch("num_layers", m.num_layers, config.num_hidden_layers);
  mismatch("num_experts", m.num_experts, config.num_experts);
  mismatch("hidden_size", m.hidden_size, config.hidden_size);
  mismatch("moe_intermediate_size", m.moe_intermediate_size, config.resolved_moe_intermediate_size());
}

void check_manifest_fingerprint(const ClusterManifest& m, const std::string& model_fingerprint, const std::string& dir) {
  if (m.model_fingerprint.empty()) {
    log::warn(cat(manifest_path(dir), ": no model_fingerprint (packed by an older chronos-pack), so nothing shows that the cache "
                  "holds this model's experts; rerun chronos-pack to add one"));
    return;
  }
  if (m.model_fingerprint != model_fingerprint)
    throw ConfigError(cat(manifest_path(dir), ": model_fingerprint is ", m.model_fingerprint, " but the model's expert weights give ",
                          model_fingerprint, " (the expert cache was packed from another checkpoint; rerun chronos-pack)"));
}

void verify_cluster_files(const ClusterManifest& m, const std::string& dir, VerifyLevel level) {
  const safetensors::DType dtype = from_scalar_type(m.storage.dtype);
  const int64_t H = m.hidden_size, I = m.moe_intermediate_size;
  const std::vector<int64_t> in_shape = m.storage.stored_shape(I, H), out_shape = m.storage.stored_shape(H, I);
  for (const auto& cluster : m.clusters) {
    const std::string path = dir + "/" + cluster.file;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw IoError(cat("missing cluster file ", path, " (listed in ", manifest_path(dir), ")"));
    if (static_cast<uint64_t>(st.st_size) != cluster.size_bytes)
      throw FormatError(cat(path, ": ", st.st_size, " bytes, but the manifest says ", cluster.size_bytes,
                            st.st_size < static_cast<off_t>(cluster.size_bytes) ? " (truncated)" : " (changed since packing)"));
    const SafetensorsFile file(path);
    const uint64_t data = file.header().data_offset;
    for (const auto& range : cluster.experts) {
      uint64_t expected = range.offset;
      for (const char* param : {"gate_proj", "up_proj", "down_proj"}) {
        const std::string name = expert_tensor_name(range.key, param);
        if (!file.contains(name)) throw FormatError(cat(path, ": tensor ", name, " is missing (the manifest places it here)"));
        const auto& entry = file.entry(name);
        const auto& shape = std::string(param) == "down_proj" ? out_shape : in_shape;
        if (entry.dtype != dtype || entry.shape != shape || data + entry.begin != expected)
          throw FormatError(cat(path, ": tensor ", name, " does not match the manifest (dtype, shape or offset)"));
        expected += entry.end - entry.begin;
      }
    }
    if (level == VerifyLevel::checksum && file_checksum(path) != cluster.checksum)
      throw FormatError(cat(path, ": checksum mismatch (the file is damaged or was changed after packing)"));
  }
}

}  // namespace chronos
