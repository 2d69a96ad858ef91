// Rewards of the GRPO stage (docs/training_losses.md). A reward scores decoded text, so it does not
// depend on the tokenizer: the training loop decodes the response (skipping special tokens) and
// passes strings. Model-based rewards implement the same interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  // Score of one response to one prompt. prompt: the user text; response: the decoded response
  // with special tokens skipped. Must be finite.
  virtual float score(const std::string& prompt, const std::string& response) = 0;
  // The G responses of one group; the default scores them one by one (a model reward batches).
  virtual std::vector<float> score_group(const std::string& prompt, const std::vector<std::string>& responses);
  // Short name for logs ("toy", ...).
  virtual std::string name() const = 0;
};

// The fixture reward: split the response on whitespace into n words; n = 0 gives -1; otherwise
//   min(n / target_length, 1) + (#words whose lower case is in the 48-word toy vocabulary) / n
//                             - (#adjacent identical word pairs) / n,
// which lies in [-1, 2]. The prompt is not used.
class ToyReward final : public RewardFunction {
 public:
  explicit ToyReward(int64_t target_length = 24);  // InvalidArgument unless target_length >= 1
  float score(const std::string& prompt, const std::string& response) override;
  std::string name() const override { return "toy"; }

  // The toy vocabulary of the reference's tests (the 54 pretrain words minus jumps, over, lazy, dog, prefill, adam).
  static const std::vector<std::string>& vocabulary();
  // Python str.split(): runs of whitespace (ASCII and the Unicode spaces Python counts) separate
  // words; no empty words.
  static std::vector<std::string> split_words(const std::string& text);

 private:
  int64_t target_length_;
};

}  // namespace chronos
