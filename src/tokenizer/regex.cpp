#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <new>

#include "chronos/core/error.h"
#include "tokenizer/json_reader.h"
#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread match state: one match block and a JIT stack large enough for long runs of white space
// under patterns such as \s+(?!\S) (the default 32 KiB runs out on a few thousand spaces).
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  ThreadMatchState() {
    if (!data || !stack || !context) throw std::bad_alloc();
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& thread_match_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (!code->code)
    throw FormatError(cat(where, ": the regex \"", pattern, "\" does not compile at offset ", offset, ": ", pcre2_message(error)));
  // The JIT is an optimisation: where it is unavailable the interpreter gives the same matches.
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);
  code_ = std::move(code);
}

bool Regex::next_match(std::string_view text, size_t from, size_t& start, size_t& end) const {
  if (!code_ || from > text.size()) return false;
  ThreadMatchState& state = thread_match_state();
  const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), from, 0, state.data,
                             state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw FormatError(cat("regex \"", pattern_, "\": matching failed: ", pcre2_message(rc)));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
  start = ovector[0];
  end = ovector[1];
  return true;
}

size_t Regex::next_char(std::string_view text, size_t at) {
  if (at >= text.size()) return at + 1;
  char32_t cp;
  bool ok;
  return at + utf8_step(reinterpret_cast<const unsigned char*>(text.data()) + at, text.size() - at, cp, ok);
}

Pattern Pattern::parse(const nlohmann::json& pattern, const JsonReader& reader, const std::string& where) {
  if (!pattern.is_object() || pattern.size() != 1)
    reader.fail(cat(where, " must be {\"String\": ...} or {\"Regex\": ...} (got ", describe_json(pattern), ")"));
  Pattern p;
  if (const auto it = pattern.find("String"); it != pattern.end() && it->is_string()) {
    p.literal_ = it->get<std::string>();
    return p;
  }
  if (const auto it = pattern.find("Regex"); it != pattern.end() && it->is_string()) {
    p.is_regex_ = true;
    p.regex_ = Regex(it->get<std::string>(), cat(reader.source(), ": ", where, ".Regex"));
    return p;
  }
  reader.fail(cat(where, " must be {\"String\": ...} or {\"Regex\": ...} (got ", describe_json(pattern), ")"));
}

Pattern Pattern::literal(std::string text) {
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

void Pattern::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  if (is_regex_) {
    regex_.for_each_match(text, [&](size_t start, size_t end) { out.emplace_back(start, end); });
    return;
  }
  if (literal_.empty()) {
    for (size_t at = 0; at <= text.size(); at = Regex::next_char(text, at)) out.emplace_back(at, at);
    return;
  }
  size_t from = 0;
  while (true) {
    const size_t at = text.find(literal_, from);
    if (at == std::string_view::npos) return;
    out.emplace_back(at, at + literal_.size());
    from = at + literal_.size();
  }
}

nlohmann::ordered_json Pattern::to_json() const {
  return is_regex_ ? nlohmann::ordered_json{{"Regex", regex_.pattern()}} : nlohmann::ordered_json{{"String", literal_}};
}

}  // namespace chronos::tokenizer_detail
