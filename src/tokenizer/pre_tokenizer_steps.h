// Private to the tokenizer: the pre_tokenizer section of tokenizer.json (Split, ByteLevel, Metaspace,
// Digits, Punctuation, WhitespaceSplit and Sequences of them), cutting normalized text into the pieces
// the model encodes one by one, each with its alignment.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tokenizer/json_reader.h"
#include "tokenizer/normalized_text.h"
#include "tokenizer/regex.h"

namespace chronos::tokenizer_detail {

// How a split keeps what the pattern matched (HF's SplitDelimiterBehavior).
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

class PreTokenizerSteps {
 public:
  PreTokenizerSteps() = default;
  // `section` is the JSON value (null: none). Throws FormatError naming the JSON path of a type or
  // option Chronos does not implement, or a ByteLevel step that is not the last one.
  PreTokenizerSteps(const nlohmann::json& section, const JsonReader& reader);

  bool empty() const { return steps_.empty(); }
  // Whether the pieces are byte-level (a ByteLevel step): the model then works on bytes.
  bool byte_level() const { return byte_level_; }
  // Appends the non-empty pieces of `text` to `out`.
  void split(NormalizedText text, std::vector<NormalizedText>& out) const;
  const nlohmann::ordered_json& json() const { return json_; }

 private:
  struct Step {
    enum class Kind { split, byte_level, metaspace, digits, punctuation, whitespace_split } kind = Kind::split;
    Pattern pattern;                            // Split
    SplitBehavior behavior = SplitBehavior::isolated;
    bool invert = false;                        // Split
    bool add_prefix_space = false;              // ByteLevel
    bool use_regex = true;                      // ByteLevel
    std::string replacement;                    // Metaspace (one character)
    Pattern space, replacement_pattern;         // Metaspace: " " and the replacement, as literal patterns
    enum class Prepend { always, first, never } prepend = Prepend::always;  // Metaspace
    bool split_pieces = true;                   // Metaspace: split at the replacement character
    bool individual_digits = false;             // Digits
  };
  void add(const nlohmann::json& section, const JsonReader& reader, const std::string& where);
  void apply(const Step& step, std::vector<NormalizedText>& pieces) const;

  std::vector<Step> steps_;
  bool byte_level_ = false;
  nlohmann::ordered_json json_;
};

// Cuts `text` at `matches` (sorted, disjoint, possibly empty ranges) as HF's NormalizedString::split:
// the matched and unmatched stretches, kept, dropped or merged per `behavior` (`invert` swaps which is
// which); empty pieces are dropped.
void split_by_matches(const NormalizedText& text, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                      bool invert, std::vector<NormalizedText>& out);

}  // namespace chronos::tokenizer_detail
