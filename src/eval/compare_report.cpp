// The Markdown table of a compare.json: one row per figure, vanilla and Chronos side by side with
// their ratio.
#include <cmath>
#include <iomanip>
#include <sstream>

#include "chronos/eval/compare.h"

namespace chronos {
namespace {

std::string format(const nlohmann::json& v, int precision) {
  if (!v.is_number()) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << v.get<double>();
  return out.str();
}

std::string ratio(const nlohmann::json& chronos, const nlohmann::json& vanilla) {
  if (!chronos.is_number() || !vanilla.is_number() || vanilla.get<double>() == 0) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << chronos.get<double>() / vanilla.get<double>() << "x";
  return out.str();
}

const nlohmann::json& at_path(const nlohmann::json& j, const nlohmann::json::json_pointer& p) {
  static const nlohmann::json none;
  return j.contains(p) ? j.at(p) : none;
}

// A JSON pointer token for a key that may hold '~' or '/'.
std::string escaped(const std::string& key) {
  std::string out;
  for (char ch : key) out += ch == '~' ? std::string("~0") : ch == '/' ? std::string("~1") : std::string(1, ch);
  return out;
}

}  // namespace

std::string compare_markdown(const nlohmann::json& c) {
  const nlohmann::json& v = c.at("vanilla");
  const nlohmann::json& x = c.at("chronos");
  std::ostringstream out;
  out << "| figure | vanilla | chronos | chronos / vanilla |\n|---|---|---|---|\n";
  const auto row = [&](const std::string& name, const nlohmann::json::json_pointer& p, int precision) {
    out << "| " << name << " | " << format(at_path(v, p), precision) << " | " << format(at_path(x, p), precision) << " | "
        << ratio(at_path(x, p), at_path(v, p)) << " |\n";
  };
  using ptr = nlohmann::json::json_pointer;
  row("parameters", ptr("/params"), 0);
  row("resident parameters (without routed experts)", ptr("/resident_params"), 0);
  row("held-out perplexity", ptr("/perplexity"), 2);
  if (x.contains("perplexity_by_domain"))
    for (const auto& [domain, value] : x["perplexity_by_domain"].items()) row("perplexity, " + domain, ptr("/perplexity_by_domain/" + escaped(domain)), 2);
  const nlohmann::json kv = x.value("kv_bytes_per_token", nlohmann::json::object());
  for (const auto& [context, value] : kv.items())
    row("KV bytes/token at " + context, ptr("/kv_bytes_per_token/" + escaped(context)), 0);
  row("resident decode tokens/s", ptr("/decode_tokens_per_s"), 1);
  row("offloaded decode tokens/s", ptr("/offload_tokens_per_s"), 1);
  row("offloaded hit rate", ptr("/hit_rate"), 3);
  row("stall ms/token", ptr("/stall_ms_per_token"), 2);
  row("SSD MB/token", ptr("/ssd_mb_per_token"), 2);
  const nlohmann::json stages = x.value("stages", nlohmann::json::object());
  for (const auto& [stage, value] : stages.items())
    row(stage + " " + value.value("metric", std::string("metric")) + " (last quarter)", ptr("/stages/" + escaped(stage) + "/value"), 4);
  out << "\nOffloaded modes: vanilla " << v.value("offload_mode", std::string("-")) << ", chronos "
      << x.value("offload_mode", std::string("-")) << ".";
  if (x.contains("lookahead_recall") && x["lookahead_recall"].is_array()) {
    out << " Chronos lookahead recall (t+1, t+2, ...):";
    for (const nlohmann::json& r : x["lookahead_recall"]) out << " " << format(r, 3);
    out << ".";
  }
  if (c.contains("greedy_agreement"))
    out << " Greedy agreement between the two: " << format(c["greedy_agreement"]["rate"], 3) << " of "
        << c["greedy_agreement"].value("compared", 0) << " tokens.";
  if (c.contains("settings"))
    out << " Parameter ratio vanilla/chronos " << format(c["settings"]["parameter_ratio"], 4) << ", identical data order: "
        << (c["settings"].value("identical_data_order", false) ? "yes" : "no") << ".";
  out << "\n";
  return out.str();
}

}  // namespace chronos
