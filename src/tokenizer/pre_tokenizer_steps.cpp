#include "tokenizer/pre_tokenizer_steps.h"

#include <utf8proc.h>

#include <algorithm>

#include "chronos/tokenizer/pretokenizer.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace chronos::tokenizer_detail {
namespace {

struct Stretch {
  size_t start, end;
  bool match;
};

SplitBehavior parse_behavior(const nlohmann::json& section, const JsonReader& r, const std::string& where, const char* fallback) {
  const std::string name = section.contains("behavior") ? r.string(section, "behavior", where) : std::string(fallback);
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  r.fail(cat(where, ".behavior '", name, "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous"));
}

// One single-character match per character of `text` that `predicate` accepts.
template <class Predicate>
std::vector<std::pair<size_t, size_t>> char_matches(const std::string& text, Predicate predicate) {
  std::vector<std::pair<size_t, size_t>> out;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    bool ok;
    const size_t n = utf8_step(p + i, text.size() - i, cp, ok);
    if (ok && predicate(cp)) out.emplace_back(i, i + n);
    i += n;
  }
  return out;
}

int category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

// Rust's char::is_numeric: general category Nd, Nl or No.
bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  const int k = category(c);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

// HF's is_punc: ASCII punctuation or a Unicode P* category.
bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  const int k = category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

void split_by_matches(const NormalizedText& text, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                      bool invert, std::vector<NormalizedText>& out) {
  std::vector<Stretch> stretches;
  size_t previous = 0;
  for (const auto& [start, end] : matches) {
    if (previous != start) stretches.push_back({previous, start, invert});
    stretches.push_back({start, end, !invert});
    previous = end;
  }
  if (previous < text.size() || stretches.empty()) stretches.push_back({previous, text.size(), invert});

  std::vector<std::pair<size_t, size_t>> kept;
  bool prev = false;
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const Stretch& s : stretches) kept.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::removed:
      for (const Stretch& s : stretches)
        if (!s.match) kept.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::contiguous:
      for (const Stretch& s : stretches) {
        if (s.match == prev && !kept.empty()) {
          kept.back().second = s.end;
        } else {
          kept.emplace_back(s.start, s.end);
        }
        prev = s.match;
      }
      break;
    case SplitBehavior::merged_with_previous:
      for (const Stretch& s : stretches) {
        if (s.match && !prev && !kept.empty()) {
          kept.back().second = s.end;
        } else {
          kept.emplace_back(s.start, s.end);
        }
        prev = s.match;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (auto it = stretches.rbegin(); it != stretches.rend(); ++it) {
        if (it->match && !prev && !kept.empty()) {
          kept.back().first = it->start;
        } else {
          kept.emplace_back(it->start, it->end);
        }
        prev = it->match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  for (const auto& [start, end] : kept)
    if (end > start) out.push_back(text.slice(start, end));
}

PreTokenizerSteps::PreTokenizerSteps(const nlohmann::json& section, const JsonReader& reader) {
  if (section.is_null()) return;
  json_ = type_first(section);
  add(section, reader, "pre_tokenizer");
  for (size_t i = 0; i < steps_.size(); ++i)
    if (steps_[i].kind == Step::Kind::byte_level && i + 1 != steps_.size())
      reader.fail("pre_tokenizer: a ByteLevel step must be the last one (Chronos maps bytes to symbols inside the model)");
}

void PreTokenizerSteps::add(const nlohmann::json& section, const JsonReader& r, const std::string& where) {
  const std::string type = r.type_of(section, where);
  Step step;
  if (r.sequence(section, type, "pretokenizers", where, [&](const nlohmann::json& item, const std::string& path) { add(item, r, path); })) return;
  if (type == "Split") {
    r.only_keys(section, {"type", "pattern", "behavior", "invert"}, where);
    if (!section.contains("pattern")) r.fail(cat(where, ".pattern is missing"));
    step.pattern = Pattern::parse(section["pattern"], r, cat(where, ".pattern"));
    step.behavior = parse_behavior(section, r, where, "");
    step.invert = r.required_flag(section, "invert", where);
  } else if (type == "ByteLevel") {
    r.only_keys(section, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, where);
    step.kind = Step::Kind::byte_level;
    step.add_prefix_space = r.flag(section, "add_prefix_space", true, where);
    step.use_regex = r.flag(section, "use_regex", true, where);
    r.flag(section, "trim_offsets", true, where);  // offsets are trimmed by the post-processor, not here
    byte_level_ = true;
  } else if (type == "Metaspace") {
    r.only_keys(section, {"type", "replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"}, where);
    step.kind = Step::Kind::metaspace;
    step.replacement = r.string(section, "replacement", where);
    char32_t cp;
    bool ok;
    if (step.replacement.empty() ||
        utf8_step(reinterpret_cast<const unsigned char*>(step.replacement.data()), step.replacement.size(), cp, ok) != step.replacement.size() || !ok)
      r.fail(cat(where, ".replacement must be one character"));
    const std::string scheme = section.contains("prepend_scheme") ? r.string(section, "prepend_scheme", where) : "always";
    if (scheme == "always") step.prepend = Step::Prepend::always;
    else if (scheme == "first") step.prepend = Step::Prepend::first;
    else if (scheme == "never") step.prepend = Step::Prepend::never;
    else r.fail(cat(where, ".prepend_scheme '", scheme, "' is not one of always, first, never"));
    // The legacy add_prefix_space: false is valid only with an explicit "never" (HF's rule).
    if (section.contains("add_prefix_space") && !r.flag(section, "add_prefix_space", true, where) && scheme != "never")
      r.fail(cat(where, ".add_prefix_space is false but prepend_scheme is not \"never\""));
    step.split_pieces = r.flag(section, "split", true, where);
    step.space = Pattern::literal(" ");
    step.replacement_pattern = Pattern::literal(step.replacement);
  } else if (type == "Digits") {
    r.only_keys(section, {"type", "individual_digits"}, where);
    step.kind = Step::Kind::digits;
    step.individual_digits = r.required_flag(section, "individual_digits", where);
  } else if (type == "Punctuation") {
    r.only_keys(section, {"type", "behavior"}, where);
    step.kind = Step::Kind::punctuation;
    step.behavior = parse_behavior(section, r, where, "Isolated");
  } else if (type == "WhitespaceSplit") {
    r.only_keys(section, {"type"}, where);
    step.kind = Step::Kind::whitespace_split;
  } else {
    r.fail(cat(where, ".type '", type, "' is not supported (Chronos implements Split, ByteLevel, Metaspace, Digits, Punctuation, "
                                       "WhitespaceSplit and Sequence)"));
  }
  steps_.push_back(std::move(step));
}

void PreTokenizerSteps::split(NormalizedText text, std::vector<NormalizedText>& out) const {
  std::vector<NormalizedText> pieces;
  if (!text.empty()) pieces.push_back(std::move(text));
  for (const Step& step : steps_) apply(step, pieces);
  for (NormalizedText& p : pieces)
    if (!p.empty()) out.push_back(std::move(p));
}

void PreTokenizerSteps::apply(const Step& step, std::vector<NormalizedText>& pieces) const {
  std::vector<NormalizedText> next;
  next.reserve(pieces.size());
  std::vector<std::pair<size_t, size_t>> matches;
  for (NormalizedText& piece : pieces) {
    matches.clear();
    switch (step.kind) {
      case Step::Kind::split:
        step.pattern.find_all(piece.text(), matches);
        split_by_matches(piece, matches, step.behavior, step.invert, next);
        break;
      case Step::Kind::byte_level: {
        if (step.add_prefix_space && !piece.empty() && piece.text()[0] != ' ') piece.prepend(" ");
        if (!step.use_regex) {
          if (!piece.empty()) next.push_back(std::move(piece));
          break;
        }
        std::vector<std::string_view> views;
        split_gpt2(piece.text(), views);
        for (std::string_view v : views) {
          const size_t start = static_cast<size_t>(v.data() - piece.text().data());
          if (!v.empty()) next.push_back(piece.slice(start, start + v.size()));
        }
        break;
      }
      case Step::Kind::metaspace: {
        step.space.find_all(piece.text(), matches);
        piece.replace(matches, step.replacement);
        const bool prepend = step.prepend == Step::Prepend::always || (step.prepend == Step::Prepend::first && piece.original_start() == 0);
        if (prepend && !starts_with(piece.text(), step.replacement)) piece.prepend(step.replacement);
        if (!step.split_pieces) {
          if (!piece.empty()) next.push_back(std::move(piece));
          break;
        }
        matches.clear();
        step.replacement_pattern.find_all(piece.text(), matches);
        split_by_matches(piece, matches, SplitBehavior::merged_with_next, false, next);
        break;
      }
      case Step::Kind::digits:
        split_by_matches(piece, char_matches(piece.text(), is_numeric),
                         step.individual_digits ? SplitBehavior::isolated : SplitBehavior::contiguous, false, next);
        break;
      case Step::Kind::punctuation:
        split_by_matches(piece, char_matches(piece.text(), is_punctuation), step.behavior, false, next);
        break;
      case Step::Kind::whitespace_split:
        split_by_matches(piece, char_matches(piece.text(), is_unicode_space), SplitBehavior::removed, false, next);
        break;
    }
  }
  pieces = std::move(next);
}

}  // namespace chronos::tokenizer_detail
