// Private to the tokenizer: the regular expressions of tokenizer.json (Split, Replace) on PCRE2 with
// UTF-8, Unicode properties (\p{L}, \p{N}, ...) and the JIT. HF tokenizers runs Oniguruma; the two
// agree on the syntax these files use (classes, \p{..}, lookahead, (?i:..)), and the compat tests
// compare the splits code point by code point. Invalid UTF-8 never matches: those bytes are left to
// the text between matches.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chronos::tokenizer_detail {

class Regex {
 public:
  Regex() = default;
  // Throws FormatError "where: ..." naming the pattern and PCRE2's message with its offset.
  Regex(const std::string& pattern, const std::string& where);

  bool empty() const { return !code_; }
  const std::string& pattern() const { return pattern_; }

  // Calls on_match(start, end) (byte offsets) for each match, left to right, without overlap, as
  // Oniguruma's find_iter in HF: an empty match that ends where the previous match ended is skipped
  // and the search resumes one character further on.
  template <class OnMatch>
  void for_each_match(std::string_view text, OnMatch&& on_match) const {
    size_t from = 0, start = 0, end = 0, last_end = 0;
    bool have_last = false;
    while (from <= text.size() && next_match(text, from, start, end)) {
      if (start == end && have_last && end == last_end) {
        from = next_char(text, end);
        continue;
      }
      on_match(start, end);
      have_last = true;
      last_end = end;
      from = end;
    }
  }

  // The first match at or after byte `from`; false when there is none. Thread-safe.
  bool next_match(std::string_view text, size_t from, size_t& start, size_t& end) const;

 // The byte after the character at `at` (past the end when at is the end).
  static size_t next_char(std::string_view text, size_t at);

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

class JsonReader;

// The {"String": ...} or {"Regex": ...} of a Split or a Replace: literal text or a regular
// expression (HF compiles both with Oniguruma, the literal escaped).
class Pattern {
 public:
  Pattern() = default;
  // Throws FormatError naming `where` for another form or a regex that does not compile.
  static Pattern parse(const nlohmann::json& pattern, const JsonReader& reader, const std::string& where);
  static Pattern literal(std::string text);

  // The matches, left to right and disjoint (an empty literal matches at every character boundary).
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  // The JSON form, for writing the file back.
  nlohmann::ordered_json to_json() const;

 private:
  bool is_regex_ = false;
  std::string literal_;
  Regex regex_;
};

}  // namespace chronos::tokenizer_detail
