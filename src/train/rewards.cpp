#include "chronos/train/rewards.h"

#include <algorithm>
#include <cstdint>
#include <unordered_set>

#include "chronos/core/error.h"

namespace chronos {

namespace {

// Code points Python's str.isspace() accepts beyond ASCII (str.split() splits on all of them).
bool is_unicode_space(uint32_t c) {
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_ascii_space(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F); }

// Byte length of a whitespace character starting at text[i], or 0 when it is none. Invalid UTF-8
// is never whitespace (it stays part of a word, as its replacement character would in Python).
size_t whitespace_length(const std::string& text, size_t i) {
  const auto byte = [&](size_t j) { return static_cast<unsigned char>(text[j]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return is_ascii_space(lead) ? 1 : 0;
  size_t length = 0;
  uint32_t c = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    c = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    c = lead & 0x0F;
  } else {
    return 0;  // 4-byte sequences hold no whitespace
  }
  if (i + length > text.size()) return 0;
  for (size_t j = 1; j < length; ++j) {
    if ((byte(i + j) & 0xC0) != 0x80) return 0;
    c = (c << 6) | (byte(i + j) & 0x3F);
  }
  return is_unicode_space(c) ? length : 0;
}

// The vocabulary is ASCII, so ASCII lower-casing decides membership exactly as Python's lower()
// does (the one exception, U+212A KELVIN SIGN -> 'k', does not occur in decoded fixture text).
std::string ascii_lower(std::string word) {
  for (char& c : word)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return word;
}

}  // namespace

std::vector<float> RewardFunction::score_group(const std::string& prompt, const std::vector<std::string>& responses) {
  std::vector<float> scores;
  scores.reserve(responses.size());
  for (const std::string& response : responses) scores.push_back(score(prompt, response));
  return scores;
}

ToyReward::ToyReward(int64_t target_length) : target_length_(target_length) {
  if (target_length < 1) throw InvalidArgument(cat("ToyReward: target_length must be >= 1 (got ", target_length, ")"));
}

const std::vector<std::string>& ToyReward::vocabulary() {
  static const std::vector<std::string> words = {
      "the",      "quick",     "brown",    "fox",       "machine",   "learning", "model",    "expert",
      "router",   "cluster",   "memory",   "cache",     "prefetch",  "latency",  "throughput", "tensor",
      "training", "inference", "decode",   "weight",    "gradient",  "softmax",  "attention", "layer",
      "embedding", "vocab",    "sequence", "loss",      "optimizer", "epoch",    "batch",    "step",
      "token",    "logit",     "minimind", "chronos",   "hybrid",    "mixture",  "of",       "experts",
      "sparse",   "dense",     "neural",   "network",   "transformer", "rope",   "rotary",   "kv"};
  return words;
}

std::vector<std::string> ToyReward::split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string current;
  for (size_t i = 0; i < text.size();) {
    if (const size_t space = whitespace_length(text, i)) {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
      i += space;
    } else {
      current.push_back(text[i++]);
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

float ToyReward::score(const std::string& /*prompt*/, const std::string& response) {
  static const std::unordered_set<std::string> known(vocabulary().begin(), vocabulary().end());
  const std::vector<std::string> words = split_words(response);
  if (words.empty()) return -1.0f;
  const double n = static_cast<double>(words.size());
  int64_t hits = 0, repeats = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    hits += known.count(ascii_lower(words[i])) ? 1 : 0;
    repeats += i > 0 && words[i] == words[i - 1] ? 1 : 0;
  }
  const double length_term = std::min(n / static_cast<double>(target_length_), 1.0);
  return static_cast<float>(length_term + static_cast<double>(hits) / n - static_cast<double>(repeats) / n);
}

}  // namespace chronos
