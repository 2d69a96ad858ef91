#include "chronos/train/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <mutex>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/pretrained.h"
#include "chronos/routing/router_control.h"
#include "chronos/train/optimizer.h"

namespace chronos {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "step_";

// Rank 0's generator is "cpu" (as in a one-process checkpoint), rank R's "cpu.rankR".
std::string rng_key(int64_t rank) { return rank == 0 ? "cpu" : cat("cpu.rank", rank); }

std::vector<fs::path> checkpoints_in(const fs::path& folder) {
  std::vector<fs::path> out;
  if (!fs::is_directory(folder)) return out;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind(kPrefix, 0) == 0 && name.find('.') == std::string::npos &&
        fs::exists(entry.path() / "trainer_state.json"))
      out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());  // zero-padded step numbers sort in step order
  return out;
}

}  // namespace

std::string save_checkpoint(const std::string& out_dir, ChronosForCausalLMImpl& model, torch::optim::AdamW& optimizer,
                            const TrainerState& state, int64_t keep) {
  const fs::path folder = fs::path(out_dir) / "checkpoints";
  std::ostringstream name;
  name << kPrefix << std::setw(8) << std::setfill('0') << state.step;
  const fs::path final_path = folder / name.str();
  const fs::path temp_path = folder / (name.str() + ".tmp");
  std::error_code ec;
  fs::remove_all(temp_path, ec);
  save_pretrained(model, temp_path.string());
  save_adamw_state(optimizer, model, (temp_path / "optimizer.safetensors").string());
  std::vector<std::pair<std::string, at::Tensor>> rng;
  if (state.rank_rng.empty()) rng.emplace_back("cpu", at::detail::getDefaultCPUGenerator().get_state());
  for (size_t r = 0; r < state.rank_rng.size(); ++r) rng.emplace_back(rng_key(static_cast<int64_t>(r)), state.rank_rng[r]);
  save_safetensors((temp_path / "rng.safetensors").string(), rng);
  nlohmann::json trainer_state = {{"stage", state.stage}, {"step", state.step}, {"total_steps", state.total_steps}, {"seed", state.seed},
                                  {"data", state.data}, {"metrics", state.metrics}};
  if (state.world_size > 1) {
    trainer_state["world_size"] = state.world_size;
    trainer_state["rank_data"] = state.rank_data;
  }
  write_json_file((temp_path / "trainer_state.json").string(), trainer_state);
  if (!state.router_control.is_null()) write_json_file((temp_path / kRouterControlFile).string(), state.router_control);
  fs::remove_all(final_path, ec);
  fs::rename(temp_path, final_path, ec);
  if (ec) throw IoError(cat(final_path.string(), ": cannot move the checkpoint into place (", ec.message(), ")"));
  auto all = checkpoints_in(folder);
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i], ec);
  return final_path.string();
}

std::optional<std::string> latest_checkpoint(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "trainer_state.json")) return dir;
  auto all = checkpoints_in(fs::path(dir) / "checkpoints");
  if (all.empty()) return std::nullopt;
  return all.back().string();
}

TrainerState read_trainer_state(const std::string& checkpoint) {
  const std::string path = (fs::path(checkpoint) / "trainer_state.json").string();
  const nlohmann::json json = read_json_file(path);
  const auto field = [&](const char* key) -> const nlohmann::json& {
    if (!json.is_object()) throw FormatError(cat(path, ": expected a JSON object"));
    const auto it = json.find(key);
    if (it == json.end()) throw FormatError(cat(path, ": field '", key, "' is missing"));
    return *it;
  };
  const auto count = [&](const char* key, int64_t min_value) {
    const nlohmann::json& v = field(key);
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > (uint64_t{1} << 62)) || v.get<int64_t>() < min_value)
      throw FormatError(cat(path, ": field '", key, "' must be an integer >= ", min_value, " (got ", describe_json(v), ")"));
    return v.get<int64_t>();
  };
  TrainerState s;
  const nlohmann::json& stage = field("stage");
  if (!stage.is_string() || stage.get_ref<const std::string&>().empty())
    throw FormatError(cat(path, ": field 'stage' must be a stage name (got ", describe_json(stage), ")"));
  s.stage = stage.get<std::string>();
  s.step = count("step", 0);
  s.total_steps = count("total_steps", 1);
  if (s.step > s.total_steps)
    throw FormatError(cat(path, ": step ", s.step, " is past total_steps ", s.total_steps, " (the file was changed by hand?)"));
  const nlohmann::json& seed = field("seed");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0))
    throw FormatError(cat(path, ": field 'seed' must be a non-negative integer (got ", describe_json(seed), ")"));
  s.seed = seed.get<uint64_t>();
  s.data = field("data");
  if (!s.data.is_object()) throw FormatError(cat(path, ": field 'data' must be an object (got ", describe_json(s.data), ")"));
  s.metrics = json.contains("metrics") ? json.at("metrics") : nlohmann::json::object();
  if (json.contains("world_size")) {
    s.world_size = count("world_size", 1);
    s.rank_data = field("rank_data");
    if (!s.rank_data.is_array() || static_cast<int64_t>(s.rank_data.size()) != s.world_size ||
        !std::all_of(s.rank_data.begin(), s.rank_data.end(), [](const nlohmann::json& d) { return d.is_object(); }))
      throw FormatError(cat(path, ": field 'rank_data' must hold one data object per rank (", s.world_size, ")"));
  }
  const fs::path control = fs::path(checkpoint) / kRouterControlFile;
  if (fs::exists(control)) s.router_control = read_json_file(control.string());
  return s;
}

bool restore_optimizer_and_rng(const std::string& checkpoint, ChronosForCausalLMImpl& model, torch::optim::AdamW& optimizer,
                               int64_t rank) {
  load_adamw_state(optimizer, model, (fs::path(checkpoint) / "optimizer.safetensors").string());
  const SafetensorsFile file((fs::path(checkpoint) / "rng.safetensors").string());
  if (!file.contains(rng_key(rank))) return false;
  const at::Tensor rng = file.tensor(rng_key(rank)).clone();
  at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(rng);
  return true;
}

}  // namespace chronos
