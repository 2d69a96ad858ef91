#include "chronos/tune/optuna_study.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "chronos/core/error.h"
#include "chronos/core/subprocess.h"
#include "chronos/io/json_text.h"

namespace chronos {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The last line of Optuna's stderr that says what went wrong (its log lines and warnings come first).
std::string last_error_line(const std::string& err) {
  std::istringstream in(err);
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last.empty() ? std::string("no message") : last;
}

std::string number_text(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

}  // namespace

OptunaStudy::OptunaStudy(std::string storage_file, std::string study_name, std::vector<std::string> directions, std::string program)
    : storage_file_(std::move(storage_file)), study_name_(std::move(study_name)), directions_(std::move(directions)),
      program_(std::move(program)) {
  if (storage_file_.empty() || study_name_.empty()) throw ConfigError("optuna study: the storage file and the study name must not be empty");
  if (directions_.empty()) throw ConfigError("optuna study: give at least one direction");
  for (const std::string& d : directions_)
    if (d != "minimize" && d != "maximize") throw ConfigError(cat("optuna study: direction '", d, "' (expected minimize or maximize)"));
}

std::string OptunaStudy::storage_url() const { return "sqlite:///" + storage_file_; }

std::string OptunaStudy::run(const std::string& command, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {program_};
  std::istringstream words(command);
  for (std::string w; words >> w;) argv.push_back(w);
  argv.insert(argv.end(), {"--storage", storage_url()});
  if (command != "studies") argv.insert(argv.end(), {"--study-name", study_name_});
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult r = run_process(argv);
  if (r.exit_code != 0)
    throw IoError(cat(program_, " ", command, " on ", storage_file_, " failed (exit ", r.exit_code, "): ", last_error_line(r.err)));
  return r.out;
}

void OptunaStudy::create() {
  std::vector<std::string> args = {"--skip-if-exists", "--directions"};
  args.insert(args.end(), directions_.begin(), directions_.end());
  run("create-study", args);
  const nlohmann::json studies = parse_json(run("studies", {"-f", "json"}), program_ + " studies");
  if (!studies.is_array()) throw FormatError(cat(program_, " studies: output is not a JSON list"));
  for (const nlohmann::json& s : studies) {
    if (s.value("name", std::string()) != study_name_) continue;
    std::vector<std::string> found;
    const nlohmann::json d = s.value("direction", nlohmann::json());
    for (const nlohmann::json& x : d.is_array() ? d : nlohmann::json::array({d}))
      if (x.is_string()) found.push_back(lower(x.get<std::string>()));
    if (found != directions_) {
      std::string want, have;
      for (const auto& w : directions_) want += " " + w;
      for (const auto& h : found) have += " " + h;
      throw ConfigError(cat(storage_file_, ": study '", study_name_, "' optimises", have, ", not", want,
                            " (another objective: use another output folder)"));
    }
    return;
  }
  throw FormatError(cat(program_, " studies: study '", study_name_, "' was not created in ", storage_file_));
}

OptunaTrial OptunaStudy::ask(const nlohmann::json& search_space, const std::string& sampler, const nlohmann::json& sampler_kwargs) {
  const std::string out =
      run("ask", {"--sampler", sampler, "--sampler-kwargs", sampler_kwargs.dump(), "--search-space", search_space.dump(), "-f", "json"});
  const nlohmann::json j = parse_json(out, program_ + " ask");
  if (!j.is_object() || !j.contains("number") || !j["number"].is_number_integer() || !j.contains("params") || !j["params"].is_object())
    throw FormatError(cat(program_, " ask: expected {\"number\": N, \"params\": {...}} (got \"", out.substr(0, 200), "\")"));
  OptunaTrial t;
  t.number = j["number"].get<int64_t>();
  t.params = j["params"];
  t.state = "RUNNING";
  return t;
}

void OptunaStudy::tell(int64_t number, const std::vector<double>& values) {
  if (values.size() != directions_.size())
    throw InvalidArgument(cat("optuna tell: ", values.size(), " values for ", directions_.size(), " objectives"));
  std::vector<std::string> args = {"--trial-number", std::to_string(number), "--state", "complete", "--values"};
  for (double v : values) args.push_back(number_text(v));
  run("tell", args);
}

void OptunaStudy::tell_failed(int64_t number, const std::string& reason) {
  run("tell", {"--trial-number", std::to_string(number), "--state", "fail", "--skip-if-finished"});
  run("study set-user-attr", {"--key", cat("fail_reason_", number), "--value", reason.empty() ? std::string("unknown") : reason});
}

std::vector<OptunaTrial> OptunaStudy::parse_trials(const std::string& json_text, const std::string& command) {
  // An empty study prints nothing rather than [].
  if (json_text.find_first_not_of(" \t\r\n") == std::string::npos) return {};
  const nlohmann::json j = parse_json(json_text, program_ + " " + command);
  if (!j.is_array()) throw FormatError(cat(program_, " ", command, ": output is not a JSON list"));
  std::vector<OptunaTrial> trials;
  for (const nlohmann::json& x : j) {
    if (!x.is_object() || !x.contains("number") || !x["number"].is_number_integer())
      throw FormatError(cat(program_, " ", command, ": a trial without a number"));
    OptunaTrial t;
    t.number = x["number"].get<int64_t>();
    t.params = x.value("params", nlohmann::json::object());
    t.state = x.value("state", std::string());
    const nlohmann::json values = x.contains("values") ? x["values"] : x.value("value", nlohmann::json());
    for (const nlohmann::json& v : values.is_array() ? values : nlohmann::json::array({values}))
      if (v.is_number()) t.values.push_back(v.get<double>());
    trials.push_back(std::move(t));
  }
  std::sort(trials.begin(), trials.end(), [](const OptunaTrial& a, const OptunaTrial& b) { return a.number < b.number; });
  return trials;
}

std::vector<OptunaTrial> OptunaStudy::trials() { return parse_trials(run("trials", {"-f", "json"}), "trials"); }

std::vector<OptunaTrial> OptunaStudy::best_trials() { return parse_trials(run("best-trials", {"-f", "json"}), "best-trials"); }

nlohmann::json OptunaStudy::user_attrs() {
  const nlohmann::json studies = parse_json(run("studies", {"-f", "json"}), program_ + " studies");
  if (studies.is_array())
    for (const nlohmann::json& s : studies)
      if (s.value("name", std::string()) == study_name_) return s.value("user_attrs", nlohmann::json::object());
  return nlohmann::json::object();
}

}  // namespace chronos
