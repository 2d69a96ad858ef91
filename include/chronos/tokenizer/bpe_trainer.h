// Byte-level BPE training. The vocabulary is: the added tokens (ids 0..n-1, in the order given), the
// 256 byte symbols (ordered by their stand-in character, as HF's trainer orders its alphabet), then
// one token per merge. Each step merges the most frequent adjacent pair; ties go to the pair of
// smaller ids (left, then right), so a corpus always gives the same tokenizer. Pair counts live in a
// max-heap with lazy invalidation and are updated only for the words that contain the merged pair,
// never recounted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chronos/tokenizer/pretokenizer.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

struct BpeTrainerConfig {
  int64_t vocab_size = 6400;             // added tokens + 256 byte symbols + merges
  int64_t min_frequency = 1;             // a pair seen fewer times than this is never merged
  std::vector<AddedToken> added_tokens;  // content and special flag; ids are assigned 0..n-1 in order
  ByteLevelPreTokenizer pre_tokenizer;   // how text is split into words (and stored in the result)

  // ConfigError naming the field, value and rule.
  void validate() const;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerConfig config);
  ~BpeTrainer();
  BpeTrainer(const BpeTrainer&) = delete;
  BpeTrainer& operator=(const BpeTrainer&) = delete;

  // Counts the words of one text. Added tokens in it are cut out first (they never take part in
  // merges); the rest goes through the pre-tokenizer.
  void add_text(std::string_view text);
  int64_t distinct_words() const;
  int64_t bytes_seen() const;

  // Called every so often during train() with the merges done and the merges wanted.
  using Progress = std::function<void(int64_t done, int64_t target)>;
  // Learns the merges (fewer than wanted when no pair is left that occurs min_frequency times) and
  // returns the tokenizer; the counts stay, so train() may be called again.
  Tokenizer train(const Progress& progress = {}) const;

 private:
  struct State;
  BpeTrainerConfig config_;
  std::unique_ptr<State> state_;
};

}  // namespace chronos
